"""Training recipes and the experiments of the ResNet paper that fit on a CPU.

A :class:`Recipe` is everything about a run except the network: dataset, epochs,
batch size, optimizer and schedule, seed.  :func:`run` trains one named network with
a recipe (what ``tinyres train`` does), :func:`resume` continues one from its folder
(``tinyres train --resume``); :func:`degradation` trains plain and
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
from . import distributed as dist
from .backend.cpu_threads import get_num_threads
from .checkpoint import checkpoint_path, load_checkpoint
from .data.loader import last_batch_too_small
from .optim import SGD
from .optim.lr_scheduler import CosineAnnealingLR, LinearWarmup, MultiStepLR
from .train import fit, seed_everything

SCHEDULES = ("cosine", "multistep", "constant")

# The networks by name.  Any resnetN or plainN with N = 6n + 2 (resnet8, plain14, ...)
# is a CIFAR-style network as well; the ImageNet names take precedence.
CIFAR_MODELS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202",
                "plain20", "plain32", "plain44", "plain56", "plain110")
IMAGENET_MODELS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
MODEL_NAMES = CIFAR_MODELS + IMAGENET_MODELS
# Each family's natural input, the one its paper used: (C, H, W), classes, its name.
NATURAL_INPUTS = {"cifar": ((3, 32, 32), 10, "CIFAR-10"),
                  "imagenet": ((3, 224, 224), 1000, "ImageNet")}


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
        for name in ("epochs", "batch_size", "train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Recipe: {name} must be >= 1, got {value}")
        for name in ("lr", "momentum", "weight_decay", "warmup_steps", "seed"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"Recipe: {name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self):
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- building blocks
def _model_key(name):
    """``"ResNet-20"`` -> ``"resnet20"``; and its family prefix and depth digits."""
    key = name.replace("-", "").lower()
    family = key.rstrip("0123456789")
    return key, family, key[len(family):]


def model_family(name, width=None):
    """``"cifar"`` or ``"imagenet"``: which kind of network a name builds.

    Raises ValueError for an unknown name, a CIFAR depth that is not 6n + 2, or a
    ``width`` given to an ImageNet network.
    """
    key, family, depth = _model_key(name)
    if key in IMAGENET_MODELS:
        if width is not None:
            raise ValueError(f"width applies to the CIFAR networks (resnetN, plainN) only; "
                             f"{name!r} is an ImageNet network")
        return "imagenet"
    if family in ("resnet", "plain") and depth:
        if int(depth) < 8 or (int(depth) - 2) % 6:
            raise ValueError(f"{name!r}: a CIFAR network has 6n + 2 layers (8, 14, 20, 26, "
                             f"32, ...), got {depth}")
        return "cifar"
    raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}, and "
                     "resnetN or plainN for any depth N = 6n + 2 (e.g. resnet8)")


def natural_input(name):
    """``(input_shape (C, H, W), num_classes, dataset name)`` a network was designed for."""
    return NATURAL_INPUTS[model_family(name)]


def build_model(name, num_classes, in_channels, width=None):
    """A network of :mod:`tinyres.models` by name, adapted to the data.

    name: ``resnet20``, ``plain56``, ``resnet50``, ... (or ``ResNet-20``; see
    MODEL_NAMES).  ``width`` (the first stage's channels, 16 in the paper) rebuilds a
    CIFAR-style network narrower or wider through ``cifar_resnet``, for quick CPU runs.
    """
    from . import models

    if width is not None and (not isinstance(width, (int, np.integer)) or width < 1):
        raise ValueError(f"width must be a positive number of channels, got {width!r}")
    family = model_family(name, width)
    key, kind, depth = _model_key(name)
    if family == "imagenet":
        return getattr(models, key)(num_classes=num_classes, in_channels=in_channels)
    return models.cifar_resnet(int(depth), num_classes=num_classes, in_channels=in_channels,
                               width=16 if width is None else int(width), plain=kind == "plain")


def _subset(dataset, size, seed):
    if size is None or size >= len(dataset):
        return dataset
    return dataset.subset(np.sort(np.random.default_rng(seed).permutation(len(dataset))[:size]))


def build_loaders(recipe, normalization=None, rank=0, world_size=1):
    """``(train_loader, test_loader)`` for the recipe's dataset, normalised per channel.

    normalization: ``{"mean": [...], "std": [...]}`` (one value per channel), as a run
    records it; by default computed from the training images only.  Both loaders'
    ``Normalize`` is ``test_loader.transform``.  rank, world_size: the training loader
    yields this rank's share of each global batch of ``recipe.batch_size``.
    """
    train, test = data.load_dataset(recipe.dataset, root=recipe.data_root)
    train = _subset(train, recipe.train_subset, recipe.seed)
    test = _subset(test, recipe.test_subset, recipe.seed)
    if normalization is None:
        normalize = data.Normalize(*data.channel_mean_std(train))
    else:
        normalize = data.Normalize(normalization["mean"], normalization["std"])
    train_transform = normalize
    if recipe.augment:
        _, height, width = train.image_shape
        padding = max(1, height // 8)  # 4 pixels on CIFAR-10's 32, as the paper
        steps = [data.RandomCrop((height, width), padding=padding)]
        if recipe.dataset == "cifar10":
            steps.append(data.RandomHorizontalFlip())  # never for digits: a mirrored 2 is no 2
        train_transform = data.Compose(steps + [normalize])
    train_loader = data.DataLoader(train, recipe.batch_size, shuffle=True, seed=recipe.seed,
                                   transform=train_transform, rank=rank, world_size=world_size,
                                   drop_last=last_batch_too_small(
                                       len(train), recipe.batch_size, world_size))
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


def run_config(model_name, width, recipe, train_loader, test_loader):
    """What a run's ``config.json`` and checkpoints record: the recipe, the network, the data.

    model, width, in_channels, num_classes, classes, input_shape (C, H, W), normalization
    {mean, std}, backend, threads, train_images, test_images, and every Recipe field.
    """
    train_set, normalize = train_loader.dataset, test_loader.transform
    return dict(model=model_name, width=width, in_channels=int(train_set.image_shape[0]),
                num_classes=train_set.num_classes, classes=list(train_set.classes),
                input_shape=[int(size) for size in train_set.image_shape],
                normalization={"mean": normalize.mean.tolist(), "std": normalize.std.tolist()},
                backend=backend.get_backend(), threads=get_num_threads(),
                train_images=len(train_set), test_images=len(test_loader.dataset),
                **recipe.to_dict())


def recipe_of(config):
    """The :class:`Recipe` recorded in a run's config (its fields; other keys are ignored)."""
    names = [field.name for field in dataclasses.fields(Recipe)]
    return Recipe(**{name: config[name] for name in names if name in config})


def run(model_name, recipe, out_dir=None, width=None, progress=True, log=print,
        resume_from=None, sync_batch_norm=True):
    """Train ``model_name`` with ``recipe``; returns ``(model, history)``.

    The seed is set before the model is built, so the run is reproducible.
    resume_from: a checkpoint of this run (see :func:`resume`); its normalization and
    states are used and training continues after its epoch.

    Under ``mpiexec -n N`` (N > 1) every rank runs this: each trains on its share of
    every global batch, the network is wrapped in DistributedDataParallel (with
    SyncBatchNorm unless ``sync_batch_norm=False``), and rank 0 alone shows progress,
    logs, evaluates and writes ``out_dir``.  The history's training loss and accuracy
    are then rank 0's share of each batch.
    """
    rank, world_size = dist.init() if dist.launched_by_mpi() else (0, 1)
    if recipe.batch_size % world_size:
        raise ValueError(f"--batch-size {recipe.batch_size} is the global batch and must be "
                         f"a multiple of the {world_size} workers")
    normalization = None if resume_from is None else resume_from.run["normalization"]
    train_loader, test_loader = build_loaders(recipe, normalization, rank, world_size)
    images = train_loader.dataset.images
    seed_everything(recipe.seed)
    model = build_model(model_name, num_classes=train_loader.dataset.num_classes,
                        in_channels=images.shape[1], width=width)
    optimizer, scheduler = build_optimizer(model, recipe, len(train_loader))
    config = run_config(model_name, width, recipe, train_loader, test_loader)
    if world_size > 1:
        from .nn import SyncBatchNorm
        from .nn.parallel import DistributedDataParallel

        config["workers"], config["sync_batch_norm"] = world_size, bool(sync_batch_norm)
        if sync_batch_norm:
            model = SyncBatchNorm.convert_sync_batchnorm(model)
        model = DistributedDataParallel(model)
        if rank != 0:
            out_dir, progress, log, test_loader = None, False, None, None
    history = fit(model, train_loader, test_loader, optimizer, recipe.epochs, scheduler,
                  scheduler_interval="step", out_dir=out_dir, progress=progress, log=log,
                  config=config, resume_from=resume_from)
    return model, history


def load_run(run_dir):
    """The checkpoint ``run_dir/last.npz``, checked to be one :func:`resume` can continue."""
    checkpoint = load_checkpoint(checkpoint_path(run_dir))
    if not isinstance(checkpoint.run, dict) or "model" not in checkpoint.run:
        raise ValueError(f"{checkpoint.path!r} does not record its model and recipe (it was "
                         "written by fit without a config); continue it from Python with "
                         "fit(..., resume_from=load_checkpoint(path))")
    return checkpoint


def resume(run_dir, progress=True, log=print, checkpoint=None):
    """Continue the run in ``run_dir`` after the epoch its ``last.npz`` holds.

    Everything comes from the checkpoint: the network, the recipe, the normalization
    and the states, so on the same backend (and thread count) the run ends bit for bit
    as an uninterrupted one.  checkpoint: ``load_run(run_dir)`` when already read.
    Returns ``(model, history)``.
    """
    checkpoint = load_run(run_dir) if checkpoint is None else checkpoint
    config = checkpoint.run
    return run(config["model"], recipe_of(config), out_dir=os.fspath(run_dir),
               width=config.get("width"), progress=progress, log=log, resume_from=checkpoint)


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
