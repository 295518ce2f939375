"""Epoch time of ResNet-20 training: tinyres vs the same network and recipe in PyTorch.

Both train ResNet-20 (option A shortcuts, 1 input channel, 10 classes) on the 4,000
MNIST-5k training digits, batch 128, SGD lr 0.1 momentum 0.9 weight decay 1e-4, fed the
very same NumPy batches (two loaders with one seed), with the same number of threads
(``--threads`` applies to PyTorch, numba and NumPy's BLAS alike).  Each side first runs a
few warm-up batches (numba compiles its kernels then); then the two take whole epochs in
turn -- tinyres, PyTorch, tinyres, ... -- so that a busy spell on a shared machine slows
both, and the median epoch of each counts.  Every epoch is a fresh shuffle.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_training.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_training.py \
        --backend numpy --epochs 2

It prints the machine first (``machine.py``), then a table, and writes ``--out`` (JSON)
with the machine's description under ``"machine"``, the versions and the times.
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import idle_threads  # noqa: F401  -- before NumPy loads OpenBLAS: see its docstring
import torch

import tinyres as tr
from tinyres import data, models
from tinyres.optim import SGD
from tinyres.train import evaluate, seed_everything, train_one_epoch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import alternation  # noqa: E402  -- the benchmarks' own helpers, next to this file
from alternation import Contender  # noqa: E402
from machine import record_machine  # noqa: E402
from torch_resnet import CifarResNet  # noqa: E402  -- the PyTorch twin, shared with bench_kernels

RECIPE = dict(lr=0.1, momentum=0.9, weight_decay=1e-4)


def torch_epoch(model, loader, optimizer):
    """One training epoch of the PyTorch twin over the tinyres loader's NumPy batches."""
    model.train()
    for images, labels in loader:
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                                 torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def torch_accuracy(model, loader):
    """Fraction of the loader's images the PyTorch twin classifies correctly (eval mode)."""
    model.eval()
    correct = count = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += int((model(torch.from_numpy(images)).argmax(1).numpy() == labels).sum())
            count += len(labels)
    return correct / count


class Limited:
    """The first ``limit`` batches of a loader (the warm-up)."""

    def __init__(self, loader, limit):
        self.loader, self.limit = loader, limit

    def __len__(self):
        return min(self.limit, len(self.loader))

    def __iter__(self):
        for number, batch in enumerate(self.loader):
            if number == self.limit:
                return
            yield batch


def timed(function):
    """(seconds, result) of one ``function()`` call."""
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def spread(dataset, count):
    """``count`` samples evenly spaced over a dataset (all of them when count is None).

    Evenly spaced rather than the first ones: MNIST-5k's splits are sorted by class.
    """
    if count is None or count >= len(dataset):
        return dataset
    return dataset.subset(range(0, len(dataset), len(dataset) // count)[:count])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numba", choices=("numpy", "numba"))
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per framework (the median counts)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for both: torch.set_num_threads, numba and BLAS")
    parser.add_argument("--warmup-batches", type=int, default=3)
    parser.add_argument("--images", type=int, default=None,
                        help="use only N images of each split, spread over the classes (a quick check; "
                             "default: all)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results",
                                                      "bench_training.json"))
    args = parser.parse_args(argv)

    tr.set_backend(args.backend)
    torch.set_num_threads(args.threads)
    tr.set_num_threads(args.threads)   # numba, the BLAS and the convolution's workers
    machine = record_machine()
    train, test = (spread(split, args.images) for split in data.mnist5k())
    normalize = data.Normalize(*data.channel_mean_std(train))

    def loader():         # one per side, one seed: both see the same batches, epoch by epoch
        return data.DataLoader(train, args.batch_size, shuffle=True, seed=0, transform=normalize)
    ours_loader, theirs_loader = loader(), loader()
    test_loader = data.DataLoader(test, 256, transform=normalize)

    seed_everything(0)
    model = models.resnet20(num_classes=10, in_channels=1)
    optimizer = SGD(model.parameters(), **RECIPE)
    torch.manual_seed(0)
    twin = CifarResNet(depth=20, num_classes=10, in_channels=1)
    torch_optimizer = torch.optim.SGD(twin.parameters(), **RECIPE)

    train_one_epoch(model, Limited(ours_loader, args.warmup_batches), optimizer, epoch=0)
    torch_epoch(twin, Limited(theirs_loader, args.warmup_batches), torch_optimizer)
    contenders = [Contender("tinyres", lambda: None,
                            lambda _: train_one_epoch(model, ours_loader, optimizer, epoch=1)),
                  Contender("torch", lambda: None,
                            lambda _: torch_epoch(twin, theirs_loader, torch_optimizer))]
    epoch_ms = alternation.time_alternated(contenders, args.epochs, warmup=0)
    ours, theirs = ([ms / 1e3 for ms in epoch_ms[name]] for name in ("tinyres", "torch"))
    ours_eval, ours_metrics = timed(lambda: evaluate(model, test_loader))
    theirs_eval, theirs_accuracy = timed(lambda: torch_accuracy(twin, test_loader))
    ours_accuracy = ours_metrics["accuracy"]

    parameters = (sum(p.size for p in model.parameters()),
                  sum(p.numel() for p in twin.parameters()))
    result = {
        "machine": machine,
        "network": "ResNet-20 (option A), 1 channel, 10 classes",
        "parameters": {"tinyres": parameters[0], "torch": parameters[1]},
        "data": f"MNIST-5k train ({len(train)} images), batch {args.batch_size}",
        "recipe": RECIPE,
        "backend": args.backend,
        "threads": args.threads,
        "order": "epochs alternated: tinyres, torch, tinyres, ...",
        "epoch_seconds": {"tinyres": statistics.median(ours), "torch": statistics.median(theirs)},
        "all_epoch_seconds": {"tinyres": ours, "torch": theirs},
        "eval_seconds": {"tinyres": ours_eval, "torch": theirs_eval},
        "test_accuracy_after_timed_epochs": {"tinyres": ours_accuracy, "torch": theirs_accuracy},
        "ratio_tinyres_over_torch": statistics.median(ours) / statistics.median(theirs),
    }
    print(f"{'':>10} {'epoch (s)':>10} {'eval (s)':>9} {'test acc':>9}")
    print(f"{'tinyres':>10} {statistics.median(ours):10.2f} {ours_eval:9.2f} {100 * ours_accuracy:8.2f}%"
          f"   ({args.backend} backend)")
    print(f"{'torch':>10} {statistics.median(theirs):10.2f} {theirs_eval:9.2f} {100 * theirs_accuracy:8.2f}%"
          f"   ({args.threads} threads)")
    print(f"tinyres / torch: {result['ratio_tinyres_over_torch']:.2f}x per training epoch")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as file:
        json.dump(result, file, indent=2)
    print(f"written {args.out}")
    return result


if __name__ == "__main__":
    main()
