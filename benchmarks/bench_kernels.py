"""Time tinyres's kernels on every backend against PyTorch and the NumPy reference, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_kernels.py \\
        [--repeats 7] [--sweeps 3] [--threads 2] [--out benchmarks/results]

(``make bench`` runs it so.)  For each ResNet layer shape it times conv2d forward and
forward+backward, and max-pool, batch-norm and ReLU forward+backward, through the public
ops (so autograd overhead is included), on each available backend and on PyTorch (CPU,
``--threads`` threads for PyTorch, Numba and the BLAS alike; CUDA too when the cupy backend
runs).  The last three are also timed as bare kernels (the backend's forward and backward
functions against PyTorch's ATen ones, no autograd): for a 0.2 ms elementwise kernel the
graph's bookkeeping is most of the op's time.

How (see ``alternation.py``): within a case the implementations are called in turn, one
call each, ``--repeats`` timed rounds after one warm-up round, each call on fresh random
inputs made before the clock starts, with a random upstream gradient ``grad_output`` (not
ones), and a short pause between calls.  The whole set is measured ``--sweeps`` times, and
each case keeps the median of its sweeps' medians: noise on a shared machine comes in
bursts, and a burst then spoils one sweep of a case, not the case.
Reported: ms, GFLOP/s for convolutions, the ratio to PyTorch and the speed-up over NumPy.
It also times a ResNet-20 training step (alternated the same way) and the Numba JIT cold
start against a warm cache.  It prints the machine first (``machine.py``) and writes
``kernels.json`` (with that description under ``"machine"``) and ``kernels.png`` to
``--out``.
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

import idle_threads  # noqa: F401  -- before NumPy loads OpenBLAS: see its docstring
import numpy as np
import torch
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from tinyres.backend import kernels_for

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import alternation  # noqa: E402  -- the benchmarks' own helpers, next to this file
from alternation import Contender, random_array  # noqa: E402
from machine import record_machine  # noqa: E402
from ratio_chart import plot_ratios  # noqa: E402

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
POOL = dict(kernel_size=3, stride=2, padding=1)
# the training step: ResNet-20 on CIFAR-sized images
TRAINING_BATCH, TRAINING_IMAGE, TRAINING_CLASSES = 128, (3, 32, 32), 10
GPU_IMPLEMENTATIONS = ("cupy", "torch-cuda")


def output_size(size, kernel_size, stride, padding):
    """Output length of a convolution or pooling window: (size + 2 p - k) // s + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_flops(n, c, h, w, k, r, s, p):
    """Flops of one conv2d forward: 2 N K C R R Ho Wo (two per multiply-add)."""
    return 2 * n * k * c * r * r * output_size(h, r, s, p) * output_size(w, r, s, p)


def pooled_shape(shape):
    """(N, C, H, W) -> (N, C, Ho, Wo) of the benchmark's 3x3 stride-2 max-pool."""
    n, c, h, w = shape
    return (n, c, output_size(h, 3, 2, 1), output_size(w, 3, 2, 1))


def _tinyres_cases(backend, rng):
    """[(op, label, prepare, run, flops or None)] for one tinyres backend.

    prepare() makes a dict of fresh inputs (``grad_output`` random, for every backward);
    run(inputs) is the timed call.
    """
    device = "cuda" if backend == "cupy" else "cpu"

    def tensor(shape, grad=True):
        return tr.tensor(random_array(rng, shape), requires_grad=grad, device=device)

    cases = []
    for label, n, c, h, w, k, r, s, p in RESNET20_CONVS + RESNET50_CONVS:
        flops = conv_flops(n, c, h, w, k, r, s, p)
        out_shape = (n, k, output_size(h, r, s, p), output_size(w, r, s, p))

        def prepare_forward(n=n, c=c, h=h, w=w, k=k, r=r):
            return {"x": tensor((n, c, h, w), grad=False), "weight": tensor((k, c, r, r), grad=False)}

        def forward(inputs, s=s, p=p):
            with tr.no_grad():
                return F.conv2d(inputs["x"], inputs["weight"], stride=s, padding=p)

        def prepare_backward(n=n, c=c, h=h, w=w, k=k, r=r, out_shape=out_shape):
            return {"x": tensor((n, c, h, w)), "weight": tensor((k, c, r, r)),
                    "grad_output": tensor(out_shape, grad=False)}

        def forward_backward(inputs, s=s, p=p):
            F.conv2d(inputs["x"], inputs["weight"], stride=s, padding=p).backward(inputs["grad_output"])

        cases.append(("conv2d fwd", label, prepare_forward, forward, flops))
        cases.append(("conv2d fwd+bwd", label, prepare_backward, forward_backward, 3 * flops))
    for label, shape in ACTIVATION_SHAPES:
        channels = shape[1:2]

        def prepare_pool(shape=shape):
            return {"x": tensor(shape), "grad_output": tensor(pooled_shape(shape), grad=False)}

        def pool(inputs):
            F.max_pool2d(inputs["x"], **POOL).backward(inputs["grad_output"])

        def prepare_norm(shape=shape, channels=channels):
            return {"x": tensor(shape), "weight": tensor(channels), "bias": tensor(channels),
                    "running": [tr.zeros(channels, device=device).data, tr.ones(channels, device=device).data],
                    "grad_output": tensor(shape, grad=False)}

        def norm(inputs):
            F.batch_norm(inputs["x"], *inputs["running"], inputs["weight"], inputs["bias"],
                         training=True).backward(inputs["grad_output"])

        def prepare_relu(shape=shape):
            return {"x": tensor(shape), "grad_output": tensor(shape, grad=False)}

        def relu(inputs):
            F.relu(inputs["x"]).backward(inputs["grad_output"])

        cases += [("max_pool2d 3x3 s2 fwd+bwd", label, prepare_pool, pool, None),
                  ("batch_norm fwd+bwd", label, prepare_norm, norm, None),
                  ("relu fwd+bwd", label, prepare_relu, relu, None)]
        cases += [(op, label, prepare, run, None) for op, prepare, run
                  in _bare_kernel_cases(shape, device, rng)]
    return cases


def _bare_kernel_cases(shape, device, rng):
    """[(op, prepare, run)]: the selected backend's pooling, batch-norm and ReLU kernels, called directly."""
    kernels = kernels_for(tr.zeros((1,), device=device).data)
    window = [(POOL["kernel_size"],) * 2, (POOL["stride"],) * 2, (POOL["padding"],) * 2]

    def array(array_shape):
        return kernels.xp.asarray(random_array(rng, array_shape))

    def prepare_pool():
        return {"x": array(shape), "grad_output": array(pooled_shape(shape))}

    def pool(inputs):
        _, argmax = kernels.max_pool2d_forward(inputs["x"], *window)
        return kernels.max_pool2d_backward(inputs["grad_output"], argmax, shape, *window)

    def prepare_norm():
        return {"x": array(shape), "weight": array(shape[1:2]), "bias": array(shape[1:2]),
                "grad_output": array(shape)}

    def norm(inputs):
        x, weight = inputs["x"], inputs["weight"]
        _, mean, _, inv_std = kernels.batch_norm_forward_train(x, weight, inputs["bias"], 1e-5)
        return kernels.batch_norm_backward(inputs["grad_output"], x, mean, inv_std, weight)

    def prepare_relu():
        return {"x": array(shape), "grad_output": array(shape)}

    def relu(inputs):
        return kernels.relu_backward(inputs["grad_output"], kernels.relu_forward(inputs["x"]))

    return [("max_pool2d kernels fwd+bwd", prepare_pool, pool),
            ("batch_norm kernels fwd+bwd", prepare_norm, norm),
            ("relu kernels fwd+bwd", prepare_relu, relu)]


def _torch_cases(device, rng):
    """[(op, label, prepare, run)]: the same cases in PyTorch, through torch.nn.functional."""
    def tensor(shape, grad=True):
        return torch.from_numpy(random_array(rng, shape)).to(device).requires_grad_(grad)

    cases = []
    for label, n, c, h, w, k, r, s, p in RESNET20_CONVS + RESNET50_CONVS:
        out_shape = (n, k, output_size(h, r, s, p), output_size(w, r, s, p))

        def prepare_forward(n=n, c=c, h=h, w=w, k=k, r=r):
            return {"x": tensor((n, c, h, w), grad=False), "weight": tensor((k, c, r, r), grad=False)}

        def forward(inputs, s=s, p=p):
            with torch.no_grad():
                return TF.conv2d(inputs["x"], inputs["weight"], stride=s, padding=p)

        def prepare_backward(n=n, c=c, h=h, w=w, k=k, r=r, out_shape=out_shape):
            return {"x": tensor((n, c, h, w)), "weight": tensor((k, c, r, r)),
                    "grad_output": tensor(out_shape, grad=False)}

        def forward_backward(inputs, s=s, p=p):
            TF.conv2d(inputs["x"], inputs["weight"], stride=s, padding=p).backward(inputs["grad_output"])

        cases += [("conv2d fwd", label, prepare_forward, forward),
                  ("conv2d fwd+bwd", label, prepare_backward, forward_backward)]
    for label, shape in ACTIVATION_SHAPES:
        channels = shape[1:2]

        def prepare_pool(shape=shape):
            return {"x": tensor(shape), "grad_output": tensor(pooled_shape(shape), grad=False)}

        def pool(inputs):
            TF.max_pool2d(inputs["x"], **POOL).backward(inputs["grad_output"])

        def prepare_norm(shape=shape, channels=channels):
            return {"x": tensor(shape), "weight": tensor(channels), "bias": tensor(channels),
                    "running": [torch.zeros(channels, device=device), torch.ones(channels, device=device)],
                    "grad_output": tensor(shape, grad=False)}

        def norm(inputs):
            TF.batch_norm(inputs["x"], *inputs["running"], inputs["weight"], inputs["bias"],
                          training=True).backward(inputs["grad_output"])

        def prepare_relu(shape=shape):
            return {"x": tensor(shape), "grad_output": tensor(shape, grad=False)}

        def relu(inputs):
            torch.relu(inputs["x"]).backward(inputs["grad_output"])

        cases += [("max_pool2d 3x3 s2 fwd+bwd", label, prepare_pool, pool),
                  ("batch_norm fwd+bwd", label, prepare_norm, norm),
                  ("relu fwd+bwd", label, prepare_relu, relu)]
        cases += [(op, label, prepare, run) for op, prepare, run
                  in _torch_bare_kernel_cases(shape, device, rng)]
    return cases


def _torch_bare_kernel_cases(shape, device, rng):
    """[(op, prepare, run)]: PyTorch's ATen kernels for the same three ops (no autograd graph)."""
    aten = torch.ops.aten
    window = [[POOL["kernel_size"]] * 2, [POOL["stride"]] * 2, [POOL["padding"]] * 2]

    def array(array_shape):
        return torch.from_numpy(random_array(rng, array_shape)).to(device)

    def prepare_pool():
        return {"x": array(shape), "grad_output": array(pooled_shape(shape))}

    def pool(inputs):
        _, indices = aten.max_pool2d_with_indices(inputs["x"], *window)
        return aten.max_pool2d_with_indices_backward(inputs["grad_output"], inputs["x"], *window,
                                                     [1, 1], False, indices)

    def prepare_norm():
        channels = shape[1:2]
        return {"x": array(shape), "weight": array(channels), "bias": array(channels),
                "running": [torch.zeros(channels, device=device), torch.ones(channels, device=device)],
                "grad_output": array(shape)}

    def norm(inputs):
        x, weight, (running_mean, running_var) = inputs["x"], inputs["weight"], inputs["running"]
        _, mean, inv_std = aten.native_batch_norm(x, weight, inputs["bias"], running_mean, running_var,
                                                  True, 0.1, 1e-5)
        return aten.native_batch_norm_backward(inputs["grad_output"], x, weight, running_mean,
                                               running_var, mean, inv_std, True, 1e-5,
                                               [True, True, True])

    def prepare_relu():
        return {"x": array(shape), "grad_output": array(shape)}

    def relu(inputs):
        return aten.threshold_backward(inputs["grad_output"], torch.relu(inputs["x"]), 0)

    return [("max_pool2d kernels fwd+bwd", prepare_pool, pool),
            ("batch_norm kernels fwd+bwd", prepare_norm, norm),
            ("relu kernels fwd+bwd", prepare_relu, relu)]


def _synchronizer(name):
    """What waits for the GPU to finish under this implementation (nothing on the CPU)."""
    if name == "cupy":
        import cupy
        return cupy.cuda.Device().synchronize
    if name == "torch-cuda":
        return torch.cuda.synchronize
    return lambda: None


def _backend_context(name):
    """The tinyres backend a contender's calls need; PyTorch needs none."""
    if name in tr.available_backends():
        return lambda: tr.use_backend(name)
    return contextlib.nullcontext


def _torch_devices(tinyres_names):
    """PyTorch's devices to compare with: the CPU, and CUDA when the cupy backend runs too."""
    on_gpu = "cupy" in tinyres_names and torch.cuda.is_available()
    return [("torch", "cpu")] + ([("torch-cuda", "cuda")] if on_gpu else [])


@contextlib.contextmanager
def _numba_im2col_only():
    """The Numba backend with Winograd switched off: its chunked im2col path on every shape."""
    from tinyres.backend import cpu_conv
    with tr.use_backend("numba"), cpu_conv.im2col_only():
        yield


def kernel_cases():
    """[(op, label, flops or None, [Contender per implementation])], every backend and PyTorch.

    The convolutions also run as ``numba-im2col``: the Numba backend on its im2col path, so
    that Winograd's gain on the 3x3 stride-1 shapes shows against the same backend.
    """
    by_case = {}         # (op, label) -> [flops, [Contender]]
    for backend in tr.available_backends():
        with tr.use_backend(backend):
            for op, label, prepare, run, flops in _tinyres_cases(backend, np.random.default_rng(0)):
                contenders = by_case.setdefault((op, label), [flops, []])[1]
                contenders.append(
                    Contender(backend, prepare, run, _synchronizer(backend), _backend_context(backend)))
                if backend == "numba" and op.startswith("conv2d"):
                    contenders.append(Contender("numba-im2col", prepare, run, _synchronizer(backend),
                                                _numba_im2col_only))
    for name, device in _torch_devices(tr.available_backends()):
        for op, label, prepare, run in _torch_cases(device, np.random.default_rng(1)):
            by_case[op, label][1].append(Contender(name, prepare, run, _synchronizer(name)))
    return [(op, label, flops, contenders) for (op, label), (flops, contenders) in by_case.items()]


def time_kernels(repeats, sweeps):
    """Rows of {op, shape, implementation, ms, ms_sweeps, gflops} for every backend and PyTorch.

    Each sweep times every case once: ``repeats`` rounds of alternated calls (after a
    warm-up round) give each implementation's median for that sweep; ``ms`` is the median
    of the sweeps' medians.
    """
    cases = kernel_cases()
    sweep_ms = {}        # (op, label, implementation) -> the median of each sweep
    for sweep in range(1, sweeps + 1):
        for op, label, _, contenders in cases:
            times = alternation.time_alternated(contenders, repeats)
            medians = {name: statistics.median(calls) for name, calls in times.items()}
            for name, ms in medians.items():
                sweep_ms.setdefault((op, label, name), []).append(ms)
            print(f"  sweep {sweep}/{sweeps}  {op:<26} {label:<28} "
                  + "  ".join(f"{name} {ms:8.2f}" for name, ms in medians.items()) + "  ms", flush=True)
    flops = {(op, label): case_flops for op, label, case_flops, _ in cases}
    rows = []
    for (op, label, name), medians in sweep_ms.items():
        ms = statistics.median(medians)
        case_flops = flops[op, label]
        rows.append(dict(op=op, shape=label, implementation=name, ms=ms, ms_sweeps=medians,
                         gflops=case_flops / ms / 1e6 if case_flops else None))
    return rows


def add_ratios(rows):
    """ratio_to_torch = ms / PyTorch's ms on the same device; speedup_vs_numpy = NumPy ms / ms."""
    by_key = {(r["op"], r["shape"], r["implementation"]): r for r in rows}
    for row in rows:
        gpu = row["implementation"] in GPU_IMPLEMENTATIONS
        torch_row = by_key.get((row["op"], row["shape"], "torch-cuda" if gpu else "torch"))
        numpy_row = by_key.get((row["op"], row["shape"], "numpy"))
        row["ratio_to_torch"] = row["ms"] / torch_row["ms"] if torch_row else None
        row["speedup_vs_numpy"] = numpy_row["ms"] / row["ms"] if numpy_row else None
    return rows


def _training_contenders(rng):
    """A Contender per tinyres backend and PyTorch device for one ResNet-20 SGD step."""
    from tinyres.models import resnet20
    from tinyres.optim import SGD
    from torch_resnet import torch_resnet20

    def random_batch():
        images = random_array(rng, (TRAINING_BATCH, *TRAINING_IMAGE))
        return images, rng.integers(0, TRAINING_CLASSES, TRAINING_BATCH)

    contenders = []
    for backend in tr.available_backends():
        with tr.use_backend(backend):
            model = resnet20(num_classes=TRAINING_CLASSES, in_channels=TRAINING_IMAGE[0])
            optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

        def prepare():
            images, labels = random_batch()
            return tr.tensor(images), tr.tensor(labels).data

        def step(batch, model=model, optimizer=optimizer):
            optimizer.zero_grad()
            F.cross_entropy(model(batch[0]), batch[1]).backward()
            optimizer.step()

        contenders.append(Contender(backend, prepare, step, _synchronizer(backend), _backend_context(backend)))
    for name, device in _torch_devices(tr.available_backends()):
        model = torch_resnet20(TRAINING_CLASSES, TRAINING_IMAGE[0]).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

        def prepare(device=device):
            images, labels = random_batch()
            return torch.tensor(images, device=device), torch.tensor(labels, device=device)

        def torch_step(batch, model=model, optimizer=optimizer):
            optimizer.zero_grad()
            TF.cross_entropy(model(batch[0]), batch[1]).backward()
            optimizer.step()

        contenders.append(Contender(name, prepare, torch_step, _synchronizer(name)))
    return contenders


def time_training_step(repeats, sweeps):
    """ResNet-20 (CIFAR, batch 128) forward + backward + SGD step: {implementation: median ms}.

    The backends and PyTorch take steps in turn, each on a fresh random batch; the median
    of the sweeps' medians counts.
    """
    contenders = _training_contenders(np.random.default_rng(2))
    sweep_ms = {contender.name: [] for contender in contenders}
    for _ in range(sweeps):
        for name, calls in alternation.time_alternated(contenders, repeats).items():
            sweep_ms[name].append(statistics.median(calls))
    results = {name: statistics.median(medians) for name, medians in sweep_ms.items()}
    for name, ms in results.items():
        print(f"  training step  {name:>10}  {ms:9.1f} ms  (sweeps: "
              + ", ".join(f"{m:.1f}" for m in sweep_ms[name]) + ")")
    return results


COLD_START = """
import time, numpy as np
start = time.perf_counter()
import tinyres as tr, tinyres.functional as F
tr.set_backend("numba")
rng = np.random.default_rng(0)
x = tr.tensor(rng.standard_normal((8, 16, 32, 32), dtype=np.float32), requires_grad=True)
w = tr.tensor(rng.standard_normal((16, 16, 3, 3), dtype=np.float32), requires_grad=True)
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


def chart_panels(rows, training_step_ms=None):
    """[(op, [(shape, {backend: ratio to PyTorch})])] for the chart, plus the training step."""
    panels = {}
    for row in rows:
        if row["implementation"].startswith("torch") or row["ratio_to_torch"] is None:
            continue
        shapes = panels.setdefault(row["op"], {})
        shapes.setdefault(row["shape"], {})[row["implementation"]] = row["ratio_to_torch"]
    result = [(op, list(shapes.items())) for op, shapes in panels.items()]
    if training_step_ms and "torch" in training_step_ms:
        ratios = {}
        for name, ms in training_step_ms.items():
            reference = training_step_ms.get("torch-cuda" if name in GPU_IMPLEMENTATIONS else "torch")
            if not name.startswith("torch") and reference:
                ratios[name] = ms / reference
        batch = f"batch {TRAINING_BATCH}, {'x'.join(map(str, TRAINING_IMAGE))}"
        result.append(("ResNet-20 training step (forward + backward + SGD)", [(batch, ratios)]))
    return result


def plot(rows, path, training_step_ms=None):
    """kernels.png: each backend's time relative to PyTorch, one panel per op (see ratio_chart.py)."""
    plot_ratios(chart_panels(rows, training_step_ms), path)


def print_table(rows):
    print(f"\n{'op':<26} {'shape':<28} {'impl':>10} {'ms':>9} {'GFLOP/s':>8} {'/torch':>7} {'vs numpy':>8}")
    for r in rows:
        gflops = f"{r['gflops']:8.1f}" if r["gflops"] else " " * 8
        ratio = f"{r['ratio_to_torch']:7.2f}" if r["ratio_to_torch"] else " " * 7
        speedup = f"{r['speedup_vs_numpy']:7.1f}x" if r["speedup_vs_numpy"] else " " * 8
        print(f"{r['op']:<26} {r['shape']:<28} {r['implementation']:>10} {r['ms']:9.2f} {gflops} {ratio} {speedup}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed rounds of alternated calls per case and sweep (their median counts)")
    parser.add_argument("--sweeps", type=int, default=3,
                        help="times the whole set is measured; each case reports the median of its sweeps")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch, Numba and the BLAS")
    parser.add_argument("--out", default="benchmarks/results", help="folder for kernels.json and kernels.png")
    parser.add_argument("--replot", action="store_true", help="only redraw kernels.png from kernels.json")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    if args.replot:
        summary = json.loads((out / "kernels.json").read_text())
        plot(summary["kernels"], out / "kernels.png", summary.get("training_step_ms"))
        return
    torch.set_num_threads(args.threads)
    tr.set_num_threads(args.threads)       # numba, the BLAS and the convolution's workers
    machine = record_machine()
    out.mkdir(parents=True, exist_ok=True)

    print("kernels (float32, median ms):")
    rows = add_ratios(time_kernels(args.repeats, args.sweeps))
    print("training step:")
    training = time_training_step(max(3, args.repeats // 2), args.sweeps)
    print("JIT compile time:")
    cold_start = time_cold_start()

    summary = dict(machine=machine, backends=tr.available_backends(), torch=torch.__version__,
                   threads=args.threads, repeats=args.repeats, sweeps=args.sweeps,
                   pause_ms=1e3 * alternation.PAUSE_SECONDS,
                   method="implementations alternated call by call on fresh random inputs, "
                          "random grad_output; median of the sweeps' medians",
                   kernels=rows, training_step_ms=training, numba_start=cold_start)
    (out / "kernels.json").write_text(json.dumps(summary, indent=1))
    plot(rows, out / "kernels.png", training)
    print_table(rows)
    print(f"\nwrote {out / 'kernels.json'} and {out / 'kernels.png'}")


if __name__ == "__main__":
    main()
