"""Training recipes and the experiments of the ResNet paper that fit on a CPU.

A :class:`Recipe` is everything about a run except the network: dataset, epochs,
batch size, optimizer and schedule, seed.  :func:`run` trains one named network with
a recipe (what ``tinyres train`` does); :func:`degradation` trains plain and
residual networks of two depths with one recipe and draws He et al.'s Fig. 1/6:

    the deeper *plain* network has the higher *training* error -- not overfitting,
    an optimisation difficulty -- while the deeper *residual* network has the lower.

Schedules here step once per iteration (``scheduler_interval="step"``), as in the
paper, whose milestones are iteration counts (32k and 48k of 64k); the cosine
schedule's ``T_max`` is the total number of iterations.
"""
import dataclasses
import json
import os
import time

import numpy as np

from . import backend, data
from .optim import SGD
from .optim.lr_scheduler import CosineAnnealingLR, LinearWarmup, MultiStepLR
from .train import fit, seed_everything

SCHEDULES = ("cosine", "multistep", "constant")


@dataclasses.dataclass
class Recipe:
    """How to train: the same recipe for every network of an experiment.

    schedule: ``"cosine"`` (lr_0 -> 0 over the whole run), ``"multistep"`` (lr / 10 at
    50 % and 75 % of the iterations, the paper's 32k/48k of 64k) or ``"constant"``.
    warmup_steps: iterations at lr * warmup_factor first (He et al. used 400 at 0.01
    for ResNet-110).  augment: random crops (and flips, for CIFAR-10) on the training set.
    train_subset / test_subset: use only that many images (a seeded random choice).
    """
    dataset: str = "mnist5k"
    data_root: str = None
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "cosine"
    warmup_steps: int = 0
    warmup_factor: float = 0.1
    augment: bool = False
    train_subset: int = None
    test_subset: int = None
    seed: int = 0

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Recipe: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.dataset not in data.DATASET_NAMES:
            raise ValueError(f"Recipe: dataset must be one of {data.DATASET_NAMES}, "
                             f"got {self.dataset!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"Recipe: {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self):
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- building blocks
def build_model(name, num_classes, in_channels, width=None):
    """A network of :mod:`tinyres.models` by name, adapted to the data.

    name: ``resnet20``, ``plain56``, ... (or ``resnet-20``); ``width`` (the first
    stage's channels, 16 in the paper) rebuilds a CIFAR-style network narrower or
    wider through ``cifar_resnet``, for quick CPU runs.
    """
    from . import models

    key = name.replace("-", "").lower()
    if width is not None:
        family, depth = key.rstrip("0123456789"), key[len(key.rstrip("0123456789")):]
        if family not in ("resnet", "plain") or not depth:
            raise ValueError(f"build_model: width applies to the CIFAR networks resnetN and "
                             f"plainN only, got {name!r}")
        return models.cifar_resnet(int(depth), num_classes=num_classes, in_channels=in_channels,
                                   width=width, plain=family == "plain")
    constructor = getattr(models, key, None)
    if key.startswith("_") or not callable(constructor):
        known = sorted(n for n in dir(models) if n.startswith(("resnet", "plain")))
        raise ValueError(f"build_model: unknown model {name!r}; known models: {', '.join(known)}")
    return constructor(num_classes=num_classes, in_channels=in_channels)


def _subset(dataset, size, seed):
    if size is None or size >= len(dataset):
        return dataset
    return dataset.subset(np.sort(np.random.default_rng(seed).permutation(len(dataset))[:size]))


def build_loaders(recipe):
    """``(train_loader, test_loader)`` for the recipe's dataset, normalised per channel.

    The mean and standard deviation come from the training images only.
    """
    train, test = data.load_dataset(recipe.dataset, root=recipe.data_root)
    train = _subset(train, recipe.train_subset, recipe.seed)
    test = _subset(test, recipe.test_subset, recipe.seed)
    normalize = data.Normalize(*data.channel_mean_std(train))
    train_transform = normalize
    if recipe.augment:
        _, height, width = train.image_shape
        padding = max(1, height // 8)  # 4 pixels on CIFAR-10's 32, as the paper
        steps = [data.RandomCrop((height, width), padding=padding)]
        if recipe.dataset == "cifar10":
            steps.append(data.RandomHorizontalFlip())  # never for digits: a mirrored 2 is no 2
        train_transform = data.Compose(steps + [normalize])
    train_loader = data.DataLoader(train, recipe.batch_size, shuffle=True, seed=recipe.seed,
                                   transform=train_transform)
    test_loader = data.DataLoader(test, max(recipe.batch_size, 256), transform=normalize)
    return train_loader, test_loader


def build_optimizer(model, recipe, steps_per_epoch):
    """SGD and its per-iteration schedule: ``(optimizer, scheduler or None)``."""
    optimizer = SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                    weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    total_steps = recipe.epochs * steps_per_epoch
    if recipe.schedule == "cosine":
        scheduler = CosineAnnealingLR(optimizer, T_max=total_steps)
    elif recipe.schedule == "multistep":
        scheduler = MultiStepLR(optimizer, [total_steps // 2, total_steps * 3 // 4], gamma=0.1)
    else:
        scheduler = None
    if recipe.warmup_steps > 0:
        scheduler = LinearWarmup(optimizer, recipe.warmup_steps, recipe.warmup_factor,
                                 after=scheduler, mode="constant")
    return optimizer, scheduler


def run(model_name, recipe, out_dir=None, width=None, progress=True, log=print):
    """Train ``model_name`` with ``recipe``; returns ``(model, history)``.

    The seed is set before the model is built, so the run is reproducible.
    """
    train_loader, test_loader = build_loaders(recipe)
    images = train_loader.dataset.images
    seed_everything(recipe.seed)
    model = build_model(model_name, num_classes=train_loader.dataset.num_classes,
                        in_channels=images.shape[1], width=width)
    optimizer, scheduler = build_optimizer(model, recipe, len(train_loader))
    config = dict(model=model_name, width=width, backend=backend.get_backend(),
                  train_images=len(train_loader.dataset), test_images=len(test_loader.dataset),
                  **recipe.to_dict())
    history = fit(model, train_loader, test_loader, optimizer, recipe.epochs, scheduler,
                  scheduler_interval="step", out_dir=out_dir, progress=progress, log=log,
                  config=config)
    return model, history


# ---------------------------------------------------------------------- degradation
def degradation(recipe, depths=(20, 56), width=16, out_dir="runs/degradation", progress=True,
                log=print):
    """Train plain and residual networks of each depth with one recipe; plot and save.

    Writes ``out_dir/<plain|resnet>-<depth>/`` (each run's files), ``degradation.png``
    (training error, plain vs residual panels) and ``degradation.json`` (the recipe and
    each network's final training and test error).  Returns ``{name: history}``.
    """
    from .viz import plot_degradation

    os.makedirs(out_dir, exist_ok=True)
    results, summary = {}, {}
    for family in ("plain", "resnet"):
        for depth in depths:
            name = f"{family}-{depth}"
            if log is not None:
                log(f"--- {name} (width {width}) ---")
            started = time.perf_counter()
            _, history = run(f"{family}{depth}", recipe, out_dir=os.path.join(out_dir, name),
                             width=width, progress=progress, log=log)
            results[name] = history
            summary[name] = {"final_train_error": 1 - history["train_accuracy"][-1],
                             "final_test_error": 1 - history["test_accuracy"][-1],
                             "best_test_error": 1 - max(history["test_accuracy"]),
                             "seconds": time.perf_counter() - started}
    plot_degradation(results, path=os.path.join(out_dir, "degradation.png"),
                     title=f"{recipe.dataset}, {recipe.epochs} epochs, width {width}: "
                           "training error (solid) and test error (dashed)")
    with open(os.path.join(out_dir, "degradation.json"), "w") as file:
        json.dump({"recipe": recipe.to_dict(), "width": width, "depths": list(depths),
                   "backend": backend.get_backend(), "results": summary}, file, indent=2)
    return results
