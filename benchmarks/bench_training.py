"""Epoch time of ResNet-20 training: tinyres vs the same network and recipe in PyTorch.

Both train ResNet-20 (option A shortcuts, 1 input channel, 10 classes) on the 4,000
MNIST-5k training digits, batch 128, SGD lr 0.1 momentum 0.9 weight decay 1e-4, fed the
very same NumPy batches, with the same number of threads (``--threads`` applies to PyTorch,
numba and NumPy's BLAS alike).  Each side first runs a few warm-up batches (numba
compiles its kernels then), then whole epochs are timed; the median epoch counts.

    python benchmarks/bench_training.py                 # numba backend, 3 timed epochs
    python benchmarks/bench_training.py --backend numpy --epochs 2

Prints a table and writes ``--out`` (JSON) with the machine, the versions and the times.
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np
import torch

import tinyres as tr
from tinyres import data, models
from tinyres.optim import SGD
from tinyres.train import evaluate, seed_everything, train_one_epoch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_resnet import CifarResNet  # noqa: E402  -- the PyTorch twin, shared with bench_kernels

RECIPE = dict(lr=0.1, momentum=0.9, weight_decay=1e-4)


def torch_epoch(model, loader, optimizer):
    model.train()
    for images, labels in loader:
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(images)),
                                                 torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def torch_accuracy(model, loader):
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


def timed(function, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numba", choices=("numpy", "numba"))
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per framework (the median counts)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for both: torch.set_num_threads, numba and BLAS")
    parser.add_argument("--warmup-batches", type=int, default=3)
    parser.add_argument("--out", default=os.path.join("benchmarks", "results",
                                                      "bench_training.json"))
    args = parser.parse_args()

    tr.set_backend(args.backend)
    torch.set_num_threads(args.threads)
    tr.set_num_threads(args.threads)   # numba, the BLAS and the convolution's workers
    train, test = data.mnist5k()
    normalize = data.Normalize(*data.channel_mean_std(train))
    loader = data.DataLoader(train, args.batch_size, shuffle=True, seed=0, transform=normalize)
    test_loader = data.DataLoader(test, 256, transform=normalize)

    seed_everything(0)
    model = models.resnet20(num_classes=10, in_channels=1)
    optimizer = SGD(model.parameters(), **RECIPE)
    train_one_epoch(model, Limited(loader, args.warmup_batches), optimizer, epoch=0)
    ours = timed(lambda: train_one_epoch(model, loader, optimizer, epoch=1), args.epochs)
    ours_eval = timed(lambda: evaluate(model, test_loader), 1)[0]
    ours_accuracy = evaluate(model, test_loader)["accuracy"]

    torch.manual_seed(0)
    twin = CifarResNet(depth=20, num_classes=10, in_channels=1)
    torch_optimizer = torch.optim.SGD(twin.parameters(), **RECIPE)
    torch_epoch(twin, Limited(loader, args.warmup_batches), torch_optimizer)
    theirs = timed(lambda: torch_epoch(twin, loader, torch_optimizer), args.epochs)
    theirs_eval = timed(lambda: torch_accuracy(twin, test_loader), 1)[0]
    theirs_accuracy = torch_accuracy(twin, test_loader)

    parameters = (sum(p.size for p in model.parameters()),
                  sum(p.numel() for p in twin.parameters()))
    result = {
        "network": "ResNet-20 (option A), 1 channel, 10 classes",
        "parameters": {"tinyres": parameters[0], "torch": parameters[1]},
        "data": f"MNIST-5k train ({len(train)} images), batch {args.batch_size}",
        "recipe": RECIPE,
        "backend": args.backend,
        "threads": args.threads,
        "epoch_seconds": {"tinyres": statistics.median(ours), "torch": statistics.median(theirs)},
        "all_epoch_seconds": {"tinyres": ours, "torch": theirs},
        "eval_seconds": {"tinyres": ours_eval, "torch": theirs_eval},
        "test_accuracy_after_timed_epochs": {"tinyres": ours_accuracy, "torch": theirs_accuracy},
        "ratio_tinyres_over_torch": statistics.median(ours) / statistics.median(theirs),
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "torch": torch.__version__},
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


if __name__ == "__main__":
    main()
