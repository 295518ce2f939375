"""Datasets, a batch loader and batch transforms, in plain NumPy.

    train, test = load_dataset("mnist5k")
    loader = DataLoader(train, batch_size=128, shuffle=True, seed=0,
                        transform=Normalize(*channel_mean_std(train)))
    for images, labels in loader:   # (B, C, H, W) float32, (B,) int64
        ...

``read_image`` and ``match_input`` turn PNG, JPEG or ``.npy`` files into batches shaped like
a dataset's images, to predict their classes.  Nothing here imports the rest of tinyres;
the training loop wraps batches in tensors.
"""
from .datasets import (
    DATASET_NAMES,
    DATASET_SHAPES,
    Dataset,
    check_available,
    cifar10,
    digits,
    load_dataset,
    mnist5k,
    stratified_split,
    synthetic,
)
from .images import match_input, read_image
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
    "DATASET_SHAPES",
    "Dataset",
    "check_available",
    "cifar10",
    "digits",
    "load_dataset",
    "mnist5k",
    "stratified_split",
    "synthetic",
    "DataLoader",
    "match_input",
    "read_image",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "channel_mean_std",
]
