"""Datasets, a batch loader and batch transforms, in plain NumPy.

    train, test = load_dataset("mnist5k")
    loader = DataLoader(train, batch_size=128, shuffle=True, seed=0,
                        transform=Normalize(*channel_mean_std(train)))
    for images, labels in loader:   # (B, C, H, W) float32, (B,) int64
        ...

Nothing here imports the rest of tinyres; the training loop wraps batches in tensors.
"""
from .datasets import (
    DATASET_NAMES,
    Dataset,
    cifar10,
    digits,
    load_dataset,
    mnist5k,
    stratified_split,
    synthetic,
)
from .loader import DataLoader
from .transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    channel_mean_std,
)

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "cifar10",
    "digits",
    "load_dataset",
    "mnist5k",
    "stratified_split",
    "synthetic",
    "DataLoader",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "channel_mean_std",
]
