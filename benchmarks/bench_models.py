"""Eval-mode forward time of tinyres's ImageNet ResNets next to PyTorch's, on the CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_models.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_models.py \\
        --json benchmarks/results/models.json       # also write the numbers as JSON

Both libraries run the same architecture with the same weights (the PyTorch network
is the torch.nn reference from tests/test_models.py, loaded with tinyres's state dict,
so the outputs are compared too).  PyTorch and each tinyres backend take forward passes
in turn, one each, on a fresh random batch per call made before the clock starts
(``alternation.py``); one untimed round first pays numba's compilation.  Each sweep keeps
the median of its ``--repeats`` rounds and the median of the ``--sweeps`` sweeps counts.
PyTorch, numba and the BLAS are limited to ``--threads`` threads so both use the same
cores.  The machine is printed first and stored under ``"machine"`` in the JSON.
"""
import argparse
import json
import os
import statistics
import sys

import idle_threads  # noqa: F401  -- before NumPy loads OpenBLAS: see its docstring
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import tinyres as tr  # noqa: E402
from tinyres import models  # noqa: E402
import alternation  # noqa: E402  -- the benchmarks' own helpers, next to this file
from alternation import Contender, random_array  # noqa: E402
from machine import record_machine  # noqa: E402
from test_models import TORCHVISION_LAYOUTS, TorchResNet  # noqa: E402


def _contenders(model, reference, backends, shape, rng):
    """PyTorch's forward pass and tinyres's on each backend, each on fresh random images."""
    def images():
        return random_array(rng, shape)

    def torch_forward(batch):
        with torch.no_grad():
            return reference(batch)

    contenders = [Contender("torch", lambda: torch.from_numpy(images()), torch_forward)]
    for backend in backends:
        def forward(batch):
            with tr.no_grad():
                return model(batch)

        contenders.append(Contender(f"tinyres-{backend}", lambda: tr.tensor(images()), forward,
                                    context=lambda backend=backend: tr.use_backend(backend)))
    return contenders


def bench(name, batch, size, backends, repeats, sweeps=1):
    """Time one network in every requested tinyres backend and in PyTorch; returns a dict.

    {"model", "input_shape", "torch": {...}, "tinyres-<backend>": {...}}, each timing
    {"median_s", "sweeps_s", "times_s"}; a tinyres entry adds ``max_abs_diff_vs_torch`` (on
    one fixed batch) and ``ratio_to_torch``.
    """
    tr.nn.init.manual_seed(0)
    model = getattr(models, name)().eval()
    block, layers = TORCHVISION_LAYOUTS[name]
    reference = TorchResNet(block, layers, 1000, 64).eval()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    shape = (batch, 3, size, size)
    images = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()

    contenders = _contenders(model, reference, backends, shape, np.random.default_rng(1))
    times = {contender.name: [] for contender in contenders}
    sweep_medians = {contender.name: [] for contender in contenders}
    for _ in range(sweeps):
        for contender_name, calls in alternation.time_alternated(contenders, repeats).items():
            times[contender_name] += [ms / 1e3 for ms in calls]
            sweep_medians[contender_name].append(statistics.median(calls) / 1e3)
    result = {"model": name, "input_shape": list(shape)}
    for contender_name in times:
        result[contender_name] = {"median_s": statistics.median(sweep_medians[contender_name]),
                                  "sweeps_s": sweep_medians[contender_name],
                                  "times_s": times[contender_name]}
    for backend in backends:
        with tr.use_backend(backend), tr.no_grad():
            output = model(tr.tensor(images)).numpy()
        entry = result[f"tinyres-{backend}"]
        entry["max_abs_diff_vs_torch"] = float(np.abs(output - expected).max())
        entry["ratio_to_torch"] = entry["median_s"] / result["torch"]["median_s"]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--backends", nargs="+", default=[b for b in ("numpy", "numba")
                                                         if b in tr.available_backends()])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per sweep (their median counts)")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps per model (the median of their medians counts)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch, numba and the BLAS")
    parser.add_argument("--json", help="write the results to this path")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    tr.set_num_threads(args.threads)
    results = {"machine": record_machine(), "threads": args.threads, "repeats": args.repeats,
               "sweeps": args.sweeps, "order": "alternated call by call on fresh random batches",
               "runs": []}
    print(f"eval-mode forward, float32, median of {args.sweeps} sweeps x {args.repeats} alternated "
          f"rounds (seconds); threads = {args.threads}")
    for name in args.models:
        run = bench(name, args.batch, args.size, args.backends, args.repeats, args.sweeps)
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
