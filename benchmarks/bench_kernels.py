"""Time tinyres's kernels on every backend against PyTorch and the NumPy reference, in one run.

    python benchmarks/bench_kernels.py [--repeats 7] [--sweeps 3] [--out benchmarks/results]

For each ResNet layer shape it times conv2d forward and forward+backward, and
max-pool, batch-norm and ReLU forward+backward, through the public ops (so autograd
overhead is included), on each available backend and on PyTorch (CPU, 2 threads;
CUDA too when the cupy backend runs).  The last three are also timed as bare kernels
(the backend's forward and backward functions against PyTorch's ATen ones, no autograd):
for a 0.2 ms elementwise kernel the graph's bookkeeping is most of the op's time.
Reported: the median of ``--repeats`` runs in ms, GFLOP/s for convolutions, and the
ratio to PyTorch and to the NumPy reference.  The whole set is measured ``--sweeps``
times in turn (a sweep takes about 15 s here), and each case keeps the median of its
sweeps: noise on a shared machine comes in bursts, and a burst then spoils one sweep of a
case, not the case.
It also times a ResNet-20 training step and the Numba JIT cold start vs a warm cache.
Writes ``kernels.json`` and ``kernels.png`` to ``--out``.
"""
import argparse
import contextlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from tinyres.backend import kernels_for

# (label, batch, channels, height, width, out_channels, kernel, stride, padding)
RESNET20_CONVS = [
    ("r20 16x32x32 16->16 3x3", 128, 16, 32, 32, 16, 3, 1, 1),
    ("r20 32x16x16 32->32 3x3", 128, 32, 16, 16, 32, 3, 1, 1),
    ("r20 64x8x8 64->64 3x3", 128, 64, 8, 8, 64, 3, 1, 1),
    ("r20 16x32x32 16->32 3x3 s2", 128, 16, 32, 32, 32, 3, 2, 1),
    ("r20 32x16x16 32->64 3x3 s2", 128, 32, 16, 16, 64, 3, 2, 1),
]
RESNET50_CONVS = [
    ("r50 3x224x224 7x7 s2 ->64", 8, 3, 224, 224, 64, 7, 2, 3),
    ("r50 64x56x56 3x3 64->64", 8, 64, 56, 56, 64, 3, 1, 1),
    ("r50 256x56x56 1x1 ->64", 8, 256, 56, 56, 64, 1, 1, 0),
]
ACTIVATION_SHAPES = [("r20 128x16x32x32", (128, 16, 32, 32)), ("r20 128x32x16x16", (128, 32, 16, 16)),
                     ("r20 128x64x8x8", (128, 64, 8, 8)), ("r50 8x64x112x112", (8, 64, 112, 112))]


def _timed_once(function, synchronize):
    """Wall time of one ``function()`` call in milliseconds, waiting for the GPU if any."""
    start = time.perf_counter()
    function()
    synchronize()
    return (time.perf_counter() - start) * 1e3


def median_ms(function, repeats, synchronize):
    """Median wall time of ``function()`` in milliseconds, after one untimed warm-up call."""
    _timed_once(function, synchronize)
    return statistics.median(_timed_once(function, synchronize) for _ in range(repeats))


def _tinyres_cases(backend, rng):
    """name -> (label, callable) pairs for one tinyres backend."""
    device = "cuda" if backend == "cupy" else "cpu"

    def tensor(shape, grad=True):
        return tr.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=grad, device=device)

    cases = []
    for label, n, c, h, w, k, r, s, p in RESNET20_CONVS + RESNET50_CONVS:
        x, weight = tensor((n, c, h, w)), tensor((k, c, r, r))
        flops = 2 * n * k * c * r * r * ((h + 2 * p - r) // s + 1) * ((w + 2 * p - r) // s + 1)

        def forward(x=x, weight=weight, s=s, p=p):
            with tr.no_grad():
                F.conv2d(x, weight, stride=s, padding=p)

        def forward_backward(x=x, weight=weight, s=s, p=p):
            F.conv2d(x, weight, stride=s, padding=p).sum().backward()
            x.grad = weight.grad = None

        cases.append(("conv2d fwd", label, forward, flops))
        cases.append(("conv2d fwd+bwd", label, forward_backward, 3 * flops))
    for label, shape in ACTIVATION_SHAPES:
        x = tensor(shape)
        gamma, beta = tensor(shape[1:2]), tensor(shape[1:2])
        running = [tr.zeros(shape[1:2], device=device).data, tr.ones(shape[1:2], device=device).data]

        def pool(x=x):
            F.max_pool2d(x, 3, 2, 1).sum().backward()
            x.grad = None

        def norm(x=x, gamma=gamma, beta=beta, running=running):
            F.batch_norm(x, *running, gamma, beta, training=True).sum().backward()
            x.grad = gamma.grad = beta.grad = None

        def relu(x=x):
            F.relu(x).sum().backward()
            x.grad = None

        cases += [("max_pool2d 3x3 s2 fwd+bwd", label, pool, None),
                  ("batch_norm fwd+bwd", label, norm, None),
                  ("relu fwd+bwd", label, relu, None)]
        cases += [(op, label, function, None) for op, function in _bare_kernel_cases(x.data, rng)]
    return cases


def _bare_kernel_cases(x, rng):
    """The pooling, batch-norm and ReLU kernels of the selected backend, called directly."""
    kernels = kernels_for(x)
    xp = kernels.xp
    channels = x.shape[1]
    weight, bias = xp.ones(channels, dtype=x.dtype), xp.zeros(channels, dtype=x.dtype)
    grad = xp.asarray(rng.standard_normal(x.shape).astype(np.float32))
    pooled_shape = kernels.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1))[0].shape
    grad_pooled = xp.asarray(rng.standard_normal(pooled_shape).astype(np.float32))

    def pool():
        _, argmax = kernels.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1))
        kernels.max_pool2d_backward(grad_pooled, argmax, x.shape, (3, 3), (2, 2), (1, 1))

    def norm():
        _, mean, _, inv_std = kernels.batch_norm_forward_train(x, weight, bias, 1e-5)
        kernels.batch_norm_backward(grad, x, mean, inv_std, weight)

    def relu():
        kernels.relu_backward(grad, kernels.relu_forward(x))

    return [("max_pool2d kernels fwd+bwd", pool), ("batch_norm kernels fwd+bwd", norm),
            ("relu kernels fwd+bwd", relu)]


def _torch_bare_kernel_cases(x, rng):
    """PyTorch's ATen kernels for the same three ops, called directly (no autograd graph)."""
    aten = torch.ops.aten
    channels = x.shape[1]
    weight, bias = torch.ones(channels, device=x.device), torch.zeros(channels, device=x.device)
    running_mean, running_var = torch.zeros_like(weight), torch.ones_like(weight)
    grad = torch.tensor(rng.standard_normal(x.shape).astype(np.float32), device=x.device)
    pooled_shape = aten.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1])[0].shape
    grad_pooled = torch.tensor(rng.standard_normal(pooled_shape).astype(np.float32), device=x.device)

    def pool():
        _, indices = aten.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1])
        aten.max_pool2d_with_indices_backward(grad_pooled, x, [3, 3], [2, 2], [1, 1], [1, 1],
                                              False, indices)

    def norm():
        _, mean, inv_std = aten.native_batch_norm(x, weight, bias, running_mean, running_var,
                                                  True, 0.1, 1e-5)
        aten.native_batch_norm_backward(grad, x, weight, running_mean, running_var, mean, inv_std,
                                        True, 1e-5, [True, True, True])

    def relu():
        aten.threshold_backward(grad, torch.relu(x), 0)

    return [("max_pool2d kernels fwd+bwd", pool), ("batch_norm kernels fwd+bwd", norm),
            ("relu kernels fwd+bwd", relu)]


def _torch_cases(device, rng):
    def tensor(shape):
        return torch.tensor(rng.standard_normal(shape).astype(np.float32), device=device, requires_grad=True)

    cases = []
    for label, n, c, h, w, k, r, s, p in RESNET20_CONVS + RESNET50_CONVS:
        x, weight = tensor((n, c, h, w)), tensor((k, c, r, r))

        def forward(x=x, weight=weight, s=s, p=p):
            with torch.no_grad():
                TF.conv2d(x, weight, stride=s, padding=p)

        def forward_backward(x=x, weight=weight, s=s, p=p):
            TF.conv2d(x, weight, stride=s, padding=p).sum().backward()
            x.grad = weight.grad = None

        cases += [("conv2d fwd", label, forward), ("conv2d fwd+bwd", label, forward_backward)]
    for label, shape in ACTIVATION_SHAPES:
        x = tensor(shape)
        gamma, beta = tensor(shape[1:2]), tensor(shape[1:2])
        running = [torch.zeros(shape[1], device=device), torch.ones(shape[1], device=device)]

        def pool(x=x):
            TF.max_pool2d(x, 3, 2, 1).sum().backward()
            x.grad = None

        def norm(x=x, gamma=gamma, beta=beta, running=running):
            TF.batch_norm(x, *running, gamma, beta, training=True).sum().backward()
            x.grad = gamma.grad = beta.grad = None

        def relu(x=x):
            torch.relu(x).sum().backward()
            x.grad = None

        cases += [("max_pool2d 3x3 s2 fwd+bwd", label, pool), ("batch_norm fwd+bwd", label, norm),
                  ("relu fwd+bwd", label, relu)]
        cases += [(op, label, function) for op, function in _torch_bare_kernel_cases(x.detach(), rng)]
    return cases


def _synchronizer(backend):
    if backend in ("cupy", "torch-cuda"):
        if backend == "cupy":
            import cupy
            return cupy.cuda.Device().synchronize
        return torch.cuda.synchronize
    return lambda: None


def time_kernels(repeats, sweeps):
    """Rows of {op, shape, implementation, ms, ms_sweeps, gflops} for every backend and PyTorch.

    Case by case, each implementation runs its warm-up and its repeats back to back, so
    the implementations of one case are timed seconds apart, not minutes: a busy spell on
    a shared machine then skews their ratios less.  (Alternating single calls would be
    worse: PyTorch's OpenMP threads keep spinning for a moment after each call and slow
    down whatever runs next.)  ``ms`` is the median of the sweeps' medians.
    """
    contenders = {}      # implementation -> {(op, label): (function, flops or None)}
    for backend in tr.available_backends():
        with tr.use_backend(backend):
            contenders[backend] = {(op, label): (function, flops) for op, label, function, flops
                                   in _tinyres_cases(backend, np.random.default_rng(0))}
    devices = ["cpu"] + (["cuda"] if "cupy" in contenders and torch.cuda.is_available() else [])
    for device in devices:
        name = "torch" if device == "cpu" else "torch-cuda"
        contenders[name] = {(op, label): (function, None) for op, label, function
                            in _torch_cases(device, np.random.default_rng(0))}

    sweep_ms = {}        # (op, label, implementation) -> the median of each sweep
    for sweep in range(1, sweeps + 1):
        for op, label in contenders["numpy"]:
            for name, cases in contenders.items():
                with _running_as(name):
                    ms = median_ms(cases[op, label][0], repeats, _synchronizer(name))
                sweep_ms.setdefault((op, label, name), []).append(ms)
                print(f"  sweep {sweep}/{sweeps}  {name:>10}  {op:<26} {label:<28} {ms:9.2f} ms",
                      flush=True)
    rows = []
    for (op, label, name), medians in sweep_ms.items():
        flops = contenders["numpy"][op, label][1]
        ms = statistics.median(medians)
        rows.append(dict(op=op, shape=label, implementation=name, ms=ms, ms_sweeps=medians,
                         gflops=flops / ms / 1e6 if flops else None))
    return rows


def _running_as(name):
    """The backend a tinyres implementation's calls need; PyTorch needs none."""
    return tr.use_backend(name) if name in tr.available_backends() else contextlib.nullcontext()


def add_ratios(rows):
    """ratio_to_torch = ms / PyTorch's ms on the same device; speedup_vs_numpy = NumPy ms / ms."""
    by_key = {(r["op"], r["shape"], r["implementation"]): r for r in rows}
    for row in rows:
        gpu = row["implementation"] in ("cupy", "torch-cuda")
        torch_row = by_key.get((row["op"], row["shape"], "torch-cuda" if gpu else "torch"))
        numpy_row = by_key.get((row["op"], row["shape"], "numpy"))
        row["ratio_to_torch"] = row["ms"] / torch_row["ms"] if torch_row else None
        row["speedup_vs_numpy"] = numpy_row["ms"] / row["ms"] if numpy_row else None
    return rows


def time_training_step(repeats):
    """ResNet-20 (CIFAR, batch 128) forward + backward + SGD step, tinyres backends vs PyTorch."""
    try:
        from tinyres.models import resnet20
        from torch_resnet import torch_resnet20
    except ImportError as error:
        print(f"  training step skipped: {error}")
        return {}
    from tinyres.optim import SGD
    rng = np.random.default_rng(0)
    images = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 128)
    results = {}
    for backend in tr.available_backends():
        with tr.use_backend(backend):
            model = resnet20()
            optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
            x, y = tr.tensor(images), tr.tensor(labels)

            def step():
                optimizer.zero_grad()
                F.cross_entropy(model(x), y.data).backward()
                optimizer.step()

            results[backend] = median_ms(step, repeats, _synchronizer(backend))
    devices = ["cpu"] + (["cuda"] if "cupy" in results and torch.cuda.is_available() else [])
    for device in devices:
        model = torch_resnet20().to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        x, y = torch.tensor(images, device=device), torch.tensor(labels, device=device)

        def torch_step():
            optimizer.zero_grad()
            TF.cross_entropy(model(x), y).backward()
            optimizer.step()

        name = "torch" if device == "cpu" else "torch-cuda"
        results[name] = median_ms(torch_step, repeats, _synchronizer(name))
    for name, ms in results.items():
        print(f"  training step  {name:>10}  {ms:9.1f} ms")
    return results


COLD_START = """
import time, numpy as np
start = time.perf_counter()
import tinyres as tr, tinyres.functional as F
tr.set_backend("numba")
for dtype in (np.float32,):
    x = tr.tensor(np.ones((8, 16, 32, 32), dtype), requires_grad=True)
    w = tr.tensor(np.ones((16, 16, 3, 3), dtype), requires_grad=True)
    F.relu(F.conv2d(x, w, padding=1)).sum().backward()
print(time.perf_counter() - start)
"""


def time_cold_start():
    """Seconds from a fresh process to the first numba conv forward+backward: empty JIT cache, then warm."""
    if "numba" not in tr.available_backends():
        return {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        run = [sys.executable, "-c", COLD_START]
        cold = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
        warm = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout)
    print(f"  numba first conv fwd+bwd in a fresh process: cold cache {cold:.2f} s, warm cache {warm:.2f} s")
    return {"cold_s": cold, "warm_s": warm}


def plot(rows, path):
    """Bar chart: time relative to PyTorch (lower is better), one panel per op."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = list(dict.fromkeys(r["op"] for r in rows))
    implementations = [i for i in dict.fromkeys(r["implementation"] for r in rows) if not i.startswith("torch")]
    figure, axes = plt.subplots(len(ops), 1, figsize=(10, 2.9 * len(ops)), squeeze=False)
    for axis, op in zip(axes[:, 0], ops):
        shapes = list(dict.fromkeys(r["shape"] for r in rows if r["op"] == op))
        width = 0.8 / len(implementations)
        for i, implementation in enumerate(implementations):
            ratios = [next((r["ratio_to_torch"] for r in rows if r["op"] == op and r["shape"] == s
                            and r["implementation"] == implementation), np.nan) for s in shapes]
            axis.bar(np.arange(len(shapes)) + i * width, ratios, width, label=implementation)
        axis.axhline(1.0, color="black", linewidth=1, linestyle="--", label="PyTorch")
        axis.set_xticks(np.arange(len(shapes)) + 0.4 - width / 2, shapes, fontsize=7,
                        rotation=15, ha="right")
        axis.set_ylabel("time / PyTorch")
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(0.2, 0.5)))
        axis.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.set_title(op, fontsize=9)
        axis.legend(fontsize=7, ncol=len(implementations) + 1)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (the median is reported)")
    parser.add_argument("--sweeps", type=int, default=3,
                        help="times the whole set is measured; each case reports the median of its sweeps")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    parser.add_argument("--out", default="benchmarks/results", help="folder for kernels.json and kernels.png")
    parser.add_argument("--replot", action="store_true", help="only redraw kernels.png from kernels.json")
    args = parser.parse_args(argv)
    if args.replot:
        out = pathlib.Path(args.out)
        plot(json.loads((out / "kernels.json").read_text())["kernels"], out / "kernels.png")
        return
    torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    print("kernels (float32, median ms):")
    rows = add_ratios(time_kernels(args.repeats, args.sweeps))
    print("training step:")
    training = time_training_step(max(3, args.repeats // 2))
    print("JIT compile time:")
    cold_start = time_cold_start()

    summary = dict(backends=tr.available_backends(), torch=torch.__version__, threads=args.threads,
                   repeats=args.repeats, sweeps=args.sweeps, kernels=rows,
                   training_step_ms=training, numba_start=cold_start)
    (out / "kernels.json").write_text(json.dumps(summary, indent=1))
    plot(rows, out / "kernels.png")
    print(f"\n{'op':<26} {'shape':<28} {'impl':>10} {'ms':>9} {'GFLOP/s':>8} {'/torch':>7} {'vs numpy':>8}")
    for r in rows:
        gflops = f"{r['gflops']:8.1f}" if r["gflops"] else " " * 8
        ratio = f"{r['ratio_to_torch']:7.2f}" if r["ratio_to_torch"] else " " * 7
        speedup = f"{r['speedup_vs_numpy']:7.1f}x" if r["speedup_vs_numpy"] else " " * 8
        print(f"{r['op']:<26} {r['shape']:<28} {r['implementation']:>10} {r['ms']:9.2f} {gflops} {ratio} {speedup}")
    print(f"\nwrote {out / 'kernels.json'} and {out / 'kernels.png'}")


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    main()
