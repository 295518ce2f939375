"""The ``tinyres`` command: train a network, print its summary, check its gradients.

    tinyres train                                  # ResNet-20 on MNIST-5k, ~97 % in a few minutes
    tinyres train --model plain20 --epochs 5 --out runs/plain
    tinyres summary resnet56 --input-shape 3,32,32
    tinyres gradcheck resnet20                     # whole-network finite-difference check
    tinyres experiment degradation --epochs 10     # He et al. Fig. 6: plain vs residual
    tinyres grade hw4.ipynb --results results.json # grade lesson 4's assignment (Gradescope)
    tinyres assignment nbgrader course-folder/     # the assignment for nbgrader or Otter

Every subcommand has ``--help``.  :func:`main` takes the argument list, so lessons
and tests call ``main(["train", "--epochs", "1"])`` directly.
"""
import argparse
import os
import sys
import time

import numpy as np

from . import backend
from .backend.cpu_threads import set_num_threads
from .experiments import SCHEDULES, Recipe, build_model, degradation, run
from .train import TrainingDiverged, best_epoch

DEFAULTS = Recipe()


def _input_shape(text):
    """``"3,32,32"`` -> (3, 32, 32)."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}")
    return shape


def _add_backend(parser, default=None):
    parser.add_argument("--backend", choices=backend.BACKEND_NAMES, default=default,
                        help="array library running the kernels (default: "
                             f"{default or 'the TINYRES_BACKEND variable, else numba'})")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for numba, BLAS and the convolution (default: "
                             "TINYRES_NUM_THREADS, else all cores); fewer is often "
                             "faster on a machine busy with other work")


def _add_recipe(parser, epochs=DEFAULTS.epochs):
    """The options shared by ``train`` and ``experiment``: everything in a Recipe."""
    group = parser.add_argument_group("recipe")
    group.add_argument("--dataset", default=DEFAULTS.dataset,
                       choices=("mnist5k", "digits", "cifar10", "synthetic"),
                       help="default: %(default)s")
    group.add_argument("--data-root", default=None,
                       help="folder holding cifar-10-batches-py (cifar10 only)")
    group.add_argument("--epochs", type=int, default=epochs, help="default: %(default)s")
    group.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                       help="default: %(default)s")
    group.add_argument("--lr", type=float, default=DEFAULTS.lr,
                       help="initial learning rate of SGD (default: %(default)s)")
    group.add_argument("--momentum", type=float, default=DEFAULTS.momentum,
                       help="default: %(default)s")
    group.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay,
                       help="default: %(default)s")
    group.add_argument("--schedule", choices=SCHEDULES, default=DEFAULTS.schedule,
                       help="learning-rate schedule, stepped every iteration; multistep "
                            "divides by 10 at 50%% and 75%% of training (default: %(default)s)")
    group.add_argument("--warmup-steps", type=int, default=0,
                       help="first iterations at lr/10, as the paper's ResNet-110 (default: 0)")
    group.add_argument("--augment", action="store_true",
                       help="random crops (and flips on cifar10) of the training images")
    group.add_argument("--train-subset", type=int, default=None, metavar="N",
                       help="train on N images only (a quick run)")
    group.add_argument("--test-subset", type=int, default=None, metavar="N",
                       help="test on N images only")
    group.add_argument("--seed", type=int, default=DEFAULTS.seed, help="default: %(default)s")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def _recipe(args):
    return Recipe(dataset=args.dataset, data_root=args.data_root, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                  weight_decay=args.weight_decay, schedule=args.schedule,
                  warmup_steps=args.warmup_steps, augment=args.augment,
                  train_subset=args.train_subset, test_subset=args.test_subset, seed=args.seed)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tinyres", description="Train and inspect residual networks built from scratch.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a network and save its history, checkpoints and plots",
        description="Train a network with SGD. Defaults: ResNet-20 on MNIST-5k (4,000 "
                    "training / 1,000 test digits), batch 128, lr 0.1, momentum 0.9, weight "
                    "decay 1e-4, cosine schedule, seed 0.")
    train.add_argument("--model", default="resnet20",
                       help="resnet20/32/44/56/110, plain20/32/44/56/110, ... (default: %(default)s)")
    train.add_argument("--width", type=int, default=None,
                       help="channels of the first stage (16 in the paper); smaller is faster")
    train.add_argument("--out", default=None,
                       help="output folder (default: runs/<model>-<dataset>-<time>)")
    _add_recipe(train)
    _add_backend(train, default="numba")

    summary = commands.add_parser("summary", help="print a network's layers, shapes and sizes",
                                  description="Print each layer's output shape, parameters "
                                              "and multiply-accumulates.")
    summary.add_argument("model", help="e.g. resnet20, plain56, resnet50")
    summary.add_argument("--input-shape", type=_input_shape, default=(3, 32, 32),
                         help="C,H,W of one image (default: 3,32,32)")
    summary.add_argument("--num-classes", type=int, default=10, help="default: %(default)s")
    summary.add_argument("--width", type=int, default=None, help="first-stage channels")

    check = commands.add_parser(
        "gradcheck", help="finite-difference check of a whole network's gradients",
        description="Compare backward() of the whole network (training mode, float64) with "
                    "central finite differences along random directions, for the input and "
                    "every parameter.")
    check.add_argument("model", help="e.g. resnet20, plain20")
    check.add_argument("--input-shape", type=_input_shape, default=(3, 8, 8),
                       help="C,H,W of the tiny test images (default: 3,8,8)")
    check.add_argument("--batch-size", type=int, default=2, help="default: %(default)s")
    check.add_argument("--num-classes", type=int, default=10, help="default: %(default)s")
    check.add_argument("--width", type=int, default=None, help="first-stage channels")
    check.add_argument("--directions", type=int, default=2,
                       help="random directions per tensor (default: %(default)s)")
    check.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    _add_backend(check)

    experiment = commands.add_parser("experiment", help="reproduce an experiment of the paper")
    experiments = experiment.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    experiments.required = True
    degrade = experiments.add_parser(
        "degradation", help="plain vs residual networks of two depths (He et al. Fig. 6)",
        description="Train plain-20, plain-56, ResNet-20 and ResNet-56 with one recipe and "
                    "plot their training error curves, plain and residual side by side.")
    degrade.add_argument("--depths", type=int, nargs="+", default=[20, 56],
                         help="depths 6n+2 (default: 20 56)")
    degrade.add_argument("--width", type=int, default=16,
                         help="first-stage channels (default: %(default)s, as the paper)")
    degrade.add_argument("--out", default="runs/degradation", help="default: %(default)s")
    _add_recipe(degrade, epochs=10)
    _add_backend(degrade, default="numba")

    grade = commands.add_parser(
        "grade", help="grade a submission of the gradient-check assignment (lesson 4)",
        description="Grade the four *_backward functions of a student's .py file or notebook "
                    "on the public cases and, with a course folder, the hidden ones. Each "
                    "exercise runs in its own process with a time limit. Prints the report; "
                    "exits 0 whenever grading ran, whatever the score.")
    grade.add_argument("submission", help="the student's .py or .ipynb")
    grade.add_argument("--results", default=None, metavar="PATH",
                       help="also write Gradescope's results.json here")
    grade.add_argument("--timeout", type=float, default=60, metavar="SECONDS",
                       help="time limit of each exercise (default: %(default)g)")
    grade.add_argument("--memory", type=int, default=4096, metavar="MB",
                       help="memory an exercise's process may add (default: %(default)s)")
    where = grade.add_mutually_exclusive_group()
    where.add_argument("--course", default=None, metavar="DIR",
                       help="the course folder with the hidden cases (default: $TINYRES_COURSE, "
                            "./course, or the repository's)")
    where.add_argument("--public-only", action="store_true",
                       help="grade the public cases only, as a student can")

    assignment = commands.add_parser(
        "assignment", help="write the gradient-check assignment for nbgrader or Otter-Grader",
        description="Write the assignment, with its solutions and hidden tests, in the format "
                    "of a course tool, from the lesson notebook and the course folder.")
    assignment.add_argument("format", choices=("nbgrader", "otter"))
    assignment.add_argument("folder", help="where to write it (created if missing)")
    assignment.add_argument("--course", default=None, metavar="DIR",
                            help="the course folder (default: $TINYRES_COURSE, ./course, or "
                                 "the repository's)")
    return parser


def _select_backend(args):
    if args.backend is not None:
        backend.set_backend(args.backend)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        set_num_threads(args.threads)


def command_train(args):
    _select_backend(args)
    recipe = _recipe(args)
    out_dir = args.out or os.path.join(
        "runs", f"{args.model}-{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"training {args.model} on {recipe.dataset} for {recipe.epochs} epochs "
          f"({backend.get_backend()} backend, seed {recipe.seed}) -> {out_dir}")
    _, history = run(args.model, recipe, out_dir=out_dir, width=args.width,
                     progress=not args.no_progress)
    best = best_epoch(history)
    print(f"final test accuracy {100 * history['test_accuracy'][-1]:.2f}% "
          f"(best {100 * best['test_accuracy']:.2f}% at epoch {best['epoch']}); "
          f"{sum(history['seconds']):.0f} s of training")
    print(f"files in {out_dir}: history.json, history.csv, curves.png, last.npz, best.npz")
    return 0


def command_summary(args):
    from .models import summary

    channels = args.input_shape[0]
    model = build_model(args.model, num_classes=args.num_classes, in_channels=channels,
                        width=args.width)
    result = summary(model, args.input_shape)
    if result is not None:
        print(result)
    return 0


def command_gradcheck(args):
    from .gradcheck import gradcheck
    from .tensor import tensor
    from .train import seed_everything

    _select_backend(args)
    seed_everything(args.seed)
    model = build_model(args.model, num_classes=args.num_classes,
                        in_channels=args.input_shape[0], width=args.width).double()
    model.train()  # batch norm with batch statistics: the harder backward to get right
    names = ["input"] + [name for name, _ in model.named_parameters()]
    images = np.random.default_rng(args.seed).standard_normal(
        (args.batch_size, *args.input_shape))
    inputs = [tensor(images, requires_grad=True)] + list(model.parameters())
    print(f"gradcheck of {args.model} on a float64 batch {(args.batch_size, *args.input_shape)}: "
          f"{len(inputs)} tensors x {args.directions} random directions "
          f"({backend.get_backend()} backend)")
    started = time.perf_counter()
    report = gradcheck(lambda x, *parameters: model(x), inputs, mode="random",
                       num_directions=args.directions, seed=args.seed, raise_exception=False)
    print(f"{'tensor':<28} {'shape':<16} {'max abs err':>11} {'max rel err':>11}")
    for check in report.inputs:
        print(f"{names[check.index]:<28} {str(check.shape):<16} {check.max_abs_error:11.2e} "
              f"{check.max_rel_error:11.2e}{'' if check.passed else '   <-- mismatch'}")
    failed = [names[check.index] for check in report.inputs if not check.passed]
    verdict = "passed" if report.passed else f"FAILED for {', '.join(failed)}"
    print(f"gradcheck {verdict} in {time.perf_counter() - started:.1f} s")
    return 0 if report.passed else 1


def command_experiment(args):
    _select_backend(args)
    recipe = _recipe(args)
    print(f"degradation experiment: depths {args.depths}, width {args.width}, {recipe.dataset}, "
          f"{recipe.epochs} epochs ({backend.get_backend()} backend) -> {args.out}")
    results = degradation(recipe, depths=args.depths, width=args.width, out_dir=args.out,
                          progress=not args.no_progress)
    for name, history in results.items():
        print(f"{name:>10}: final training error {100 * (1 - history['train_accuracy'][-1]):6.2f}%"
              f"  test error {100 * (1 - history['test_accuracy'][-1]):6.2f}%")
    print(f"figure: {os.path.join(args.out, 'degradation.png')}; "
          f"numbers: {os.path.join(args.out, 'degradation.json')}")
    return 0


def command_grade(args):
    import json

    from .lessons.course import load_course
    from .lessons.sandbox import submission_source
    from .lessons.submission import grade_submission, gradescope_results, total_score

    submission_source(args.submission)   # unreadable: say so before anything else
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.memory < 64:
        raise ValueError(f"--memory must be at least 64 MB, got {args.memory}")
    course = None if args.public_only else load_course(args.course)
    which = "public cases only" if course is None else f"public and hidden cases of {course.folder}"
    print(f"grading {args.submission} ({which}; {args.timeout:g} s per exercise)", flush=True)
    results = grade_submission(args.submission, course=course, timeout=args.timeout,
                               memory_mb=args.memory,
                               on_result=lambda result: print(result, flush=True))
    earned, possible = total_score(results)
    print(f"\ntotal: {earned:.2f} / {possible:g} points")
    if args.results:
        with open(args.results, "w") as file:
            json.dump(gradescope_results(results), file, indent=2)
        print(f"results: {args.results}")
    return 0


def command_assignment(args):
    from .lessons.course import load_course

    course = load_course(args.course)
    if args.format == "nbgrader":
        from .lessons.assignment_nbgrader import write_nbgrader_course as write
    else:
        from .lessons.assignment_otter import write_otter_master as write
    for path in write(course, args.folder):
        print(f"wrote {path}")
    return 0


COMMANDS = {"train": command_train, "summary": command_summary, "gradcheck": command_gradcheck,
            "experiment": command_experiment, "grade": command_grade,
            "assignment": command_assignment}


def main(argv=None):
    """Run the ``tinyres`` command with ``argv`` (default: the process's arguments).

    Returns the exit status: 0 on success (for ``grade``: whenever grading ran), 1 when
    training diverged or a gradient check failed, 2 for a usage problem (an unknown
    model, an unavailable backend, a submission that cannot be read).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except TrainingDiverged as error:
        print(f"tinyres: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, ImportError, backend.BackendUnavailableError) as error:
        print(f"tinyres {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
