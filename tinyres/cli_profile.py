"""``tinyres profile``: where a training step's time goes, in tinyres and beside it in PyTorch.

    tinyres profile resnet20 --batch-size 128 --steps 5
    tinyres profile resnet20 --trace resnet20-trace.json   # and a Chrome trace (Perfetto)

One warm-up SGD step (cross-entropy on random images and labels), then ``--steps``
profiled ones (:func:`tinyres.profile`), and the table of their ops.  When PyTorch is
installed and the source checkout's ``benchmarks/profile_torch.py`` is there, that
script profiles the PyTorch twin of the network on a batch of the same shape in a child
process -- nothing in tinyres imports torch -- and its table is printed too, then both
side by side with PyTorch's events mapped onto tinyres's op names.

``tinyres train --profile`` profiles a few steps of a real run instead
(:func:`profile_training`).
"""
import argparse
import contextlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from tqdm import tqdm   # its write() keeps the training run's progress bar intact

from . import backend, data
from . import functional as F
from .backend.cpu_threads import get_num_threads
from .cli_runs import UsageError, select_backend
from .experiments import Recipe, build_model, model_family, natural_input
from .optim import SGD
from .profiler import profile
from .tensor import tensor

TORCH_SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "profile_torch.py"
TRACE_NAME, TABLE_NAME = "profile-trace.json", "profile.txt"   # train --profile's files
RECIPE = Recipe()   # tinyres train's defaults: its dataset's images, batch and SGD settings


def add_profile_parser(commands):
    """Register ``tinyres profile`` with the subcommands of ``tinyres.cli.build_parser``."""
    from .cli import _add_backend, _input_shape   # cli.py imports this module

    default_shape, default_classes = data.DATASET_SHAPES[RECIPE.dataset]
    shape_text = "x".join(map(str, default_shape))
    parser = commands.add_parser(
        "profile", help="where a training step's time goes, op by op, beside PyTorch",
        description="Profile SGD training steps (cross-entropy on random images and labels) "
                    "after one warm-up step and print the time of every op, forward and "
                    "backward, with the autograd bookkeeping and the optimizer. When PyTorch "
                    "is installed, torch.profiler's table of the same network and batch "
                    "follows (run by benchmarks/profile_torch.py of the source checkout, in a "
                    "child process), and both side by side.")
    parser.add_argument("model", metavar="MODEL", help="e.g. resnet20, plain20, resnet50")
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size,
                        help="images per step (default: %(default)s, as tinyres train)")
    parser.add_argument("--steps", type=int, default=5,
                        help="profiled steps, after the warm-up (default: %(default)s)")
    parser.add_argument("--input-shape", type=_input_shape, default=None, metavar="C,H,W",
                        help=f"one image's shape (default: {shape_text}, tinyres train's "
                             f"{RECIPE.dataset} images, for the CIFAR networks; 3x224x224 for "
                             "the ImageNet ones)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help=f"default: {default_classes} for the CIFAR networks, 1000 for "
                             "the ImageNet ones")
    parser.add_argument("--width", type=int, default=None, help="first-stage channels")
    parser.add_argument("--trace", metavar="PATH", default=None,
                        help="also write the Chrome trace of the profiled steps here (open it "
                             "in Perfetto or chrome://tracing)")
    parser.add_argument("--row-limit", type=int, default=20, metavar="N",
                        help="rows of each table (default: %(default)s)")
    _add_backend(parser)
    return parser


# ---------------------------------------------------------------------- tinyres profile
def command_profile(args):
    """``tinyres profile MODEL``: profile training steps; print tinyres's table and PyTorch's."""
    for flag, value in (("--batch-size", args.batch_size), ("--steps", args.steps),
                        ("--row-limit", args.row_limit), ("--num-classes", args.num_classes),
                        ("--width", args.width)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    try:
        family = model_family(args.model, args.width)
    except ValueError as error:
        raise UsageError(f"MODEL: {error}") from None
    select_backend(args)
    if family == "cifar":   # what tinyres train feeds them by default
        shape, classes = data.DATASET_SHAPES[RECIPE.dataset]
        origin = f"tinyres train's {RECIPE.dataset} images"
    else:
        shape, classes, natural_name = natural_input(args.model)
        origin = f"the {natural_name} images"
    if args.input_shape is not None:
        shape, origin = args.input_shape, "--input-shape"
    classes = args.num_classes or classes
    model = build_model(args.model, num_classes=classes, in_channels=shape[0], width=args.width)
    print(f"profile of {args.steps} SGD training step{'s' if args.steps > 1 else ''} of "
          f"{args.model}: batch {args.batch_size} of random {'x'.join(map(str, shape))} "
          f"images ({origin}), {classes} classes; {backend.get_backend()} backend, "
          f"{get_num_threads()} threads; after one warm-up step", flush=True)
    prof = profile_steps(model, shape, classes, args.batch_size, args.steps)
    print(prof.table(row_limit=args.row_limit))
    if args.trace:
        prof.export_chrome_trace(args.trace)
        print(f"Chrome trace: {args.trace} (open it in Perfetto, ui.perfetto.dev, or "
              "chrome://tracing)")
    torch_side = profile_torch(args, shape, classes)
    if isinstance(torch_side, str):
        print(torch_side)
    else:
        print(f"\nPyTorch {torch_side['torch_version']} ({torch_side['threads']} threads), the "
              f"same network, batch and steps, by torch.profiler:")
        print(torch_side["table"])
        print(side_by_side(prof, torch_side, args.row_limit))
    return 0


def profile_steps(model, shape, classes, batch_size, steps, seed=0):
    """One warm-up SGD step, then ``steps`` profiled ones; returns the :class:`~tinyres.profiler.Profile`.

    Each step: zero_grad, cross-entropy of the model's logits for a batch of random
    (batch_size, *shape) float32 images and labels, backward, SGD with tinyres train's
    lr, momentum and weight decay.  The batches are drawn before the profile starts.
    """
    optimizer = SGD(model.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum,
                    weight_decay=RECIPE.weight_decay)
    generator = np.random.default_rng(seed)
    batches = [(tensor(generator.standard_normal((batch_size, *shape)).astype(np.float32)),
                generator.integers(0, classes, batch_size)) for _ in range(steps + 1)]

    def step(images, labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    model.train()
    step(*batches[0])
    with profile() as prof:
        for images, labels in batches[1:]:
            step(images, labels)
    return prof


def torch_missing_reason():
    """Why the PyTorch side cannot run here, as a sentence; None when it can."""
    if importlib.util.find_spec("torch") is None:
        return ("No PyTorch column: torch is not installed here (pip install torch adds "
                "torch.profiler's table of the same network).")
    if not TORCH_SCRIPT.is_file():
        return (f"No PyTorch column: {TORCH_SCRIPT} is missing; it lives in tinyres's source "
                "checkout (benchmarks/), which this installation does not have.")
    return None


def profile_torch(args, shape, classes):
    """Run ``benchmarks/profile_torch.py`` in a child process: its JSON as a dict, or a sentence why not."""
    reason = torch_missing_reason()
    if reason is not None:
        return reason
    command = [sys.executable, str(TORCH_SCRIPT), args.model, "--batch-size", str(args.batch_size),
               "--steps", str(args.steps), "--input-shape", ",".join(map(str, shape)),
               "--num-classes", str(classes), "--threads", str(get_num_threads()),
               "--row-limit", str(args.row_limit)]
    if args.width is not None:
        command += ["--width", str(args.width)]
    finished = subprocess.run(command, capture_output=True, text=True)
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        last = (finished.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"No PyTorch column: {TORCH_SCRIPT.name} failed with exit status "
                f"{finished.returncode} ({last}).")
    result = json.loads(lines[-1])
    if "error" in result:
        return f"No PyTorch column: {result['error']}."
    return result


def side_by_side(prof, torch_side, row_limit):
    """tinyres's ops beside PyTorch's events mapped onto them, then both totals; ms over the steps."""
    mine = {row.name: row for row in prof.key_averages()}
    theirs = torch_side["rows"]
    largest = {name: row.total_ns / 1e6 for name, row in mine.items()}
    for name, row in theirs.items():   # ops only PyTorch has are ranked by its time
        largest.setdefault(name, (row["forward_us"] + row["backward_us"]) / 1e3)
    names = sorted(largest, key=lambda name: -largest[name])[:row_limit]
    header = (f"{'op':<16} {'tinyres fwd':>12} {'tinyres bwd':>12} {'PyTorch fwd':>12} "
              f"{'PyTorch bwd':>12} {'tinyres/PyTorch':>16}  PyTorch's events")
    steps = torch_side["steps"]
    lines = ["", f"Side by side, ms over the {steps} step{'s' if steps > 1 else ''}, PyTorch's "
                 "events mapped onto tinyres's ops:", header, "-" * len(header)]
    for name in names:
        row, other = mine.get(name), theirs.get(name)
        ours = (row.forward_ns / 1e6, row.backward_ns / 1e6) if row else (None, None)
        torch = (other["forward_us"] / 1e3, other["backward_us"] / 1e3) if other else (None, None)
        ratio = _ratio(sum(ours), sum(torch)) if row and other else ""
        lines.append(f"{name:<16} {_ms(ours[0]):>12} {_ms(ours[1]):>12} {_ms(torch[0]):>12} "
                     f"{_ms(torch[1]):>12} {ratio:>16}  "
                     f"{', '.join(other['torch_ops']) if other else '(none)'}")
    split = prof.time_split()
    torch_ops = sum(row["forward_us"] + row["backward_us"] for row in theirs.values()) / 1e3
    torch_engine, torch_optimizer, torch_other = (
        torch_side[key] / 1e3 for key in ("autograd_engine_us", "optimizer_us", "other_us"))
    torch_wall = torch_side["wall_ns"] / 1e6
    torch_outside = torch_wall - torch_ops - torch_engine - torch_optimizer - torch_other
    totals = [("ops", split.op_ns / 1e6, torch_ops),
              ("bookkeeping", split.bookkeeping_ns / 1e6, torch_engine),
              ("optimizer", split.optimizer_ns / 1e6, torch_optimizer),
              ("other events", None, torch_other),
              ("outside events", split.outside_ns / 1e6, torch_outside),
              ("wall", split.wall_ns / 1e6, torch_wall)]
    header = f"{'totals':<16} {'tinyres':>12} {'PyTorch':>12} {'tinyres/PyTorch':>16}"
    lines += ["", header, "-" * len(header)]
    for name, ours, torch in totals:
        ratio = _ratio(ours, torch) if ours is not None and name != "outside events" else ""
        lines.append(f"{name:<16} {_ms(ours):>12} {_ms(torch):>12} {ratio:>16}")
    lines.append("(bookkeeping: tinyres's graph walk and module code between the ops, "
                 "PyTorch's autograd engine; other events: PyTorch's unmapped ones, such as "
                 "zero_grad)")
    return "\n".join(lines)


def _ms(milliseconds):
    return "" if milliseconds is None else f"{milliseconds:,.1f}"


def _ratio(mine, theirs):
    return f"{mine / theirs:.2f}x" if theirs else ""


# ---------------------------------------------------------------------- train --profile
def step_count(text):
    """``train --profile``'s value: ``"3"`` -> 3; refuses anything but a whole number >= 1."""
    try:
        steps = int(text)
    except ValueError:
        steps = 0
    if steps < 1:
        raise argparse.ArgumentTypeError(f"expected a number of steps >= 1, got {text!r}")
    return steps


@contextlib.contextmanager
def profile_training(steps, out_dir, log=tqdm.write):
    """Profile training steps 2 to steps + 1 of the run inside the block (``train --profile``).

    When they have run, the table goes to ``out_dir/profile.txt`` and the Chrome trace to
    ``out_dir/profile-trace.json``, and ``log`` says so in one line.  The first step is
    skipped as a warm-up.  steps: 0 or None profiles nothing.
    """
    if not steps:
        yield None
        return

    def write(prof):
        split = prof.time_split()
        os.makedirs(out_dir, exist_ok=True)
        table_path = os.path.join(out_dir, TABLE_NAME)
        with open(table_path, "w") as file:
            file.write(prof.table() + "\n")
        trace_path = prof.export_chrome_trace(os.path.join(out_dir, TRACE_NAME))
        rows = prof.key_averages()
        largest = "" if not rows else \
            f"; the largest op, {rows[0].name}, {100 * rows[0].total_ns / split.wall_ns:.0f} %"
        log(f"profiled training steps 2-{1 + split.steps}: "
            f"{split.wall_ns / 1e6 / max(split.steps, 1):,.1f} ms per step, "
            f"{100 * split.op_ns / split.wall_ns:.0f} % in ops{largest}; table {table_path}, "
            f"Chrome trace {trace_path} (Perfetto, chrome://tracing)")

    with profile(skip_steps=1, steps=steps, on_trace_ready=write) as prof:
        yield prof
    if prof.start_ns is None:
        seen = prof.steps_seen
        log(f"--profile: the run ended after {seen} step{'' if seen == 1 else 's'}, before the "
            "steps to profile; nothing was written")
