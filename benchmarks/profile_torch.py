"""PyTorch's side of ``tinyres profile``: torch.profiler on the twin network, batch and steps.

    python benchmarks/profile_torch.py resnet20 --batch-size 128 --steps 5 --input-shape 1,28,28

Builds the PyTorch twin of a tinyres CIFAR network (``benchmarks/torch_resnet.py``), runs
one warm-up SGD step (cross-entropy on random images and labels, lr 0.1, momentum 0.9,
weight decay 1e-4, as ``tinyres profile``) and profiles ``--steps`` more with
``torch.profiler``.  It prints one JSON line: PyTorch's own ``key_averages().table()``,
its events mapped onto tinyres's op names (forward and backward ms), the optimizer's
time, the autograd engine's and the wall time.  ``tinyres profile`` runs it as a child
process, so that nothing in the tinyres package imports torch.

The mapping counts an event by its inclusive time at the outermost level: once
``aten::conv2d`` is counted for ``Conv2d``, the ``aten::mkldnn_convolution`` inside it is
not counted again.  Events no rule names add their self time to ``other``.
"""
import argparse
import json
import pathlib
import sys
import time

import torch
import torch.nn.functional as TF
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_resnet import CifarResNet  # noqa: E402  (beside this file)

# PyTorch's forward op -> tinyres's op; the twin's x[:, :, ::1, ::1] is an alias, the
# tinyres network skips that slice
FORWARD_OPS = {"aten::conv2d": "Conv2d", "aten::batch_norm": "BatchNormTrain",
               "aten::relu": "ReLU", "aten::relu_": "ReLU", "aten::max_pool2d": "MaxPool2d",
               "aten::avg_pool2d": "AvgPool2d", "aten::adaptive_avg_pool2d": "Mean",
               "aten::linear": "Linear", "aten::add": "Add", "aten::pad": "Pad",
               "aten::slice": "GetItem", "aten::alias": "GetItem", "aten::flatten": "Reshape",
               "aten::cross_entropy_loss": "CrossEntropy"}
# PyTorch's autograd node -> tinyres's op whose backward it is
BACKWARD_NODES = {"ConvolutionBackward0": "Conv2d", "NativeBatchNormBackward0": "BatchNormTrain",
                  "ReluBackward0": "ReLU", "MaxPool2DWithIndicesBackward0": "MaxPool2d",
                  "AvgPool2DBackward0": "AvgPool2d", "MeanBackward1": "Mean",
                  "AddmmBackward0": "Linear", "TBackward0": "Linear", "AddBackward0": "Add",
                  "ConstantPadNdBackward0": "Pad", "SliceBackward0": "GetItem",
                  "AliasBackward0": "GetItem", "ViewBackward0": "Reshape",
                  "LogSoftmaxBackward0": "CrossEntropy", "NllLossBackward0": "CrossEntropy"}
OPTIMIZER_STEP = "Optimizer.step#"
AUTOGRAD_ENGINE = ("autograd::engine::evaluate_function", "torch::autograd::AccumulateGrad")


def twin(model, num_classes, in_channels, width):
    """The PyTorch network of the tinyres one named ``model`` (resnetN or plainN, N = 6n + 2)."""
    key = model.replace("-", "").lower()
    family, depth = key.rstrip("0123456789"), key[len(key.rstrip("0123456789")):]
    if family not in ("resnet", "plain") or not depth or (int(depth) - 2) % 6 or int(depth) < 8:
        raise ValueError(f"benchmarks/torch_resnet.py has PyTorch twins of the CIFAR networks "
                         f"(resnetN, plainN with N = 6n + 2) only, not of {model!r}")
    return CifarResNet(int(depth), num_classes, in_channels, width or 16,
                       shortcut=family == "resnet")


def mapped_times(events):
    """Split the profiled events into tinyres's ops, the optimizer, the autograd engine, other.

    Returns ``(rows, optimizer_us, engine_us, other_us)``; rows maps tinyres's op name to
    ``{"forward_us", "backward_us", "calls", "torch_ops"}``.
    """
    rows, totals = {}, {"optimizer": 0.0, "engine": 0.0, "other": 0.0}

    def row(name):
        return rows.setdefault(name, {"forward_us": 0.0, "backward_us": 0.0, "calls": 0,
                                      "torch_ops": []})

    def visit(event):
        if event.name in FORWARD_OPS or event.name in BACKWARD_NODES:
            forward = event.name in FORWARD_OPS
            entry = row(FORWARD_OPS[event.name] if forward else BACKWARD_NODES[event.name])
            entry["forward_us" if forward else "backward_us"] += event.cpu_time_total
            entry["calls"] += forward
            if event.name not in entry["torch_ops"]:
                entry["torch_ops"].append(event.name)
            return
        if event.name.startswith(OPTIMIZER_STEP):
            totals["optimizer"] += event.cpu_time_total
            return
        engine = event.name.startswith(AUTOGRAD_ENGINE)
        totals["engine" if engine else "other"] += event.self_cpu_time_total
        for child in event.cpu_children:
            visit(child)

    for event in events:
        if event.cpu_parent is None:
            visit(event)
    return rows, totals["optimizer"], totals["engine"], totals["other"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="resnetN or plainN, e.g. resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--input-shape", default="1,28,28", help="C,H,W")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--row-limit", type=int, default=15)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(int(part) for part in args.input_shape.split(","))
    torch.manual_seed(0)
    try:
        model = twin(args.model, args.num_classes, shape[0], args.width)
    except ValueError as error:
        print(json.dumps({"error": str(error)}))
        return 0
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn((args.batch_size, *shape), generator=generator),
                torch.randint(0, args.num_classes, (args.batch_size,), generator=generator))
               for _ in range(args.steps + 1)]

    def step(images, labels):
        optimizer.zero_grad()
        loss = TF.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    step(*batches[0])   # warm-up: oneDNN picks its kernels, memory is allocated
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter_ns()
        for images, labels in batches[1:]:
            step(images, labels)
        wall_ns = time.perf_counter_ns() - started
    rows, optimizer_us, engine_us, other_us = mapped_times(prof.events())
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=args.row_limit,
                                      max_name_column_width=48)
    print(json.dumps({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "steps": args.steps, "wall_ns": wall_ns, "rows": rows,
                      "optimizer_us": optimizer_us, "autograd_engine_us": engine_us,
                      "other_us": other_us, "table": table}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
