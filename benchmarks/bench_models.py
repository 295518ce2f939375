"""Eval-mode forward time of tinyres's ImageNet ResNets next to PyTorch's, on the CPU.

    python benchmarks/bench_models.py                       # resnet18 and resnet50, batch 8
    python benchmarks/bench_models.py --json results.json   # also write the numbers as JSON

Both libraries run the same architecture with the same weights (the PyTorch network
is the torch.nn reference from tests/test_models.py, loaded with tinyres's state dict,
so the outputs are compared too).  Each timing is the median of ``--repeats`` runs
after one warm-up run (which also pays numba's compilation); PyTorch is limited to
``--threads`` threads so both use the same cores.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import tinyres as tr  # noqa: E402
from tinyres import models  # noqa: E402
from test_models import TORCHVISION_LAYOUTS, TorchResNet  # noqa: E402


def median_seconds(run, repeats):
    """Median wall time of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench(name, batch, size, backends, repeats):
    """Time one network in every requested tinyres backend and in PyTorch; returns a dict."""
    tr.nn.init.manual_seed(0)
    model = getattr(models, name)().eval()
    block, layers = TORCHVISION_LAYOUTS[name]
    reference = TorchResNet(block, layers, 1000, 64).eval()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    images = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)

    result = {"model": name, "input_shape": [batch, 3, size, size]}
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
        seconds, times = median_seconds(lambda: reference(torch.from_numpy(images)), repeats)
    result["torch"] = {"median_s": seconds, "times_s": times}
    for backend in backends:
        with tr.use_backend(backend), tr.no_grad():
            output = model(tr.tensor(images)).numpy()
            seconds, times = median_seconds(lambda: model(tr.tensor(images)), repeats)
        result[f"tinyres-{backend}"] = {
            "median_s": seconds, "times_s": times,
            "max_abs_diff_vs_torch": float(np.abs(output - expected).max()),
            "ratio_to_torch": seconds / result["torch"]["median_s"]}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--backends", nargs="+", default=[b for b in ("numpy", "numba")
                                                         if b in tr.available_backends()])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results to this path")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "torch": torch.__version__, "numpy": np.__version__,
                           "torch_threads": torch.get_num_threads()},
               "runs": []}
    print(f"eval-mode forward, float32, median of {args.repeats} (seconds); torch threads = {args.threads}")
    for name in args.models:
        run = bench(name, args.batch, args.size, args.backends, args.repeats)
        results["runs"].append(run)
        line = f"{name:<10} {tuple(run['input_shape'])}  torch {run['torch']['median_s']:.3f}"
        for backend in args.backends:
            entry = run[f"tinyres-{backend}"]
            line += (f"  tinyres-{backend} {entry['median_s']:.3f} ({entry['ratio_to_torch']:.1f}x, "
                     f"max |diff| {entry['max_abs_diff_vs_torch']:.1e})")
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
