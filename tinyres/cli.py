"""The ``tinyres`` command: train a network, use it, print its summary, check its gradients.

    tinyres train                                  # ResNet-20 on MNIST-5k, the default recipe
    tinyres train --model plain20 --epochs 5 --out runs/plain
    tinyres train --resume runs/plain              # continue after Ctrl-C, bit for bit
    tinyres evaluate runs/plain                    # test loss, accuracy per class, confusion matrix
    tinyres predict runs/plain seven.png           # the most probable classes of an image
    tinyres summary resnet50                       # at its natural input, 3x224x224, 1,000 classes
    tinyres gradcheck resnet20                     # whole-network finite-difference check
    tinyres profile resnet20 --steps 5             # where a training step's time goes, op by op
    tinyres experiment degradation --epochs 10     # He et al. Fig. 6: plain vs residual
    tinyres grade hw4.ipynb --results results.json # grade lesson 4's assignment (Gradescope)
    tinyres assignment nbgrader course-folder/     # the assignment for nbgrader or Otter

Every subcommand has ``--help``.  The default ``tinyres train`` runs in minutes on a CPU
(measured: docs/results/measurements.md).  :func:`main` takes the argument list, so lessons
and tests call ``main(["train", "--epochs", "1"])`` directly.  The commands that work
with runs (train, evaluate, predict) are in :mod:`tinyres.cli_runs`.
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np

from . import backend, data
from .cli_profile import add_profile_parser, command_profile, step_count
from .cli_runs import (INTERRUPTED, UsageError, check_data, command_evaluate, command_predict,
                       command_train, recipe_from_arguments, select_backend)
from .experiments import (CIFAR_MODELS, IMAGENET_MODELS, SCHEDULES, Recipe, build_model,
                          degradation, model_family, natural_input)
from .train import TrainingDiverged

DEFAULTS = Recipe()
MODEL_HELP = (f"CIFAR networks {', '.join(CIFAR_MODELS)}; ImageNet networks "
              f"{', '.join(IMAGENET_MODELS)}; or resnetN / plainN for any depth N = 6n + 2, "
              "e.g. resnet8")


def _input_shape(text):
    """``"3,32,32"`` -> (3, 32, 32)."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,32,32, got {text!r}")
    return shape


def _add_backend(parser, default=None, default_text=None):
    default_text = default_text or default or "the TINYRES_BACKEND variable, else numba"
    parser.add_argument("--backend", choices=backend.BACKEND_NAMES, default=default,
                        help=f"array library running the kernels (default: {default_text})")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for numba, BLAS and the convolution (default: "
                             "TINYRES_NUM_THREADS, else all cores); fewer is often "
                             "faster on a machine busy with other work")


def _add_recipe(parser, defaults=DEFAULTS):
    """The options shared by ``train`` and ``experiment``: everything in a Recipe.

    Their parsed default is None ("not given"), so that ``train --resume`` can refuse
    them; :func:`~tinyres.cli_runs.recipe_from_arguments` fills in ``defaults``.
    """
    parser.set_defaults(recipe_defaults=defaults)
    group = parser.add_argument_group("recipe")
    group.add_argument("--dataset", choices=data.DATASET_NAMES,
                       help=f"default: {defaults.dataset}")
    group.add_argument("--data-root", metavar="DIR",
                       help="folder holding cifar-10-batches-py (cifar10 only)")
    group.add_argument("--epochs", type=int, help=f"default: {defaults.epochs}")
    group.add_argument("--batch-size", type=int, help=f"default: {defaults.batch_size}")
    group.add_argument("--lr", type=float,
                       help=f"initial learning rate of SGD (default: {defaults.lr})")
    group.add_argument("--momentum", type=float, help=f"default: {defaults.momentum}")
    group.add_argument("--weight-decay", type=float, help=f"default: {defaults.weight_decay}")
    group.add_argument("--schedule", choices=SCHEDULES,
                       help="learning-rate schedule, stepped every iteration; multistep "
                            "divides by 10 at 50%% and 75%% of training "
                            f"(default: {defaults.schedule})")
    group.add_argument("--warmup-steps", type=int,
                       help="first iterations at lr/10, as the paper's ResNet-110 (default: 0)")
    group.add_argument("--augment", action="store_true", default=None,
                       help="random crops (and flips on cifar10) of the training images")
    group.add_argument("--train-subset", type=int, metavar="N",
                       help="train on N images only (a quick run)")
    group.add_argument("--test-subset", type=int, metavar="N", help="test on N images only")
    group.add_argument("--seed", type=int, help=f"default: {defaults.seed}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tinyres", description="Train and inspect residual networks built from scratch.")
    parser.add_argument("--version", action="version", version=f"tinyres {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a network and save its history, checkpoints and plots",
        description="Train a network with SGD. Defaults: ResNet-20 on MNIST-5k (4,000 "
                    "training / 1,000 test digits), batch 128, lr 0.1, momentum 0.9, weight "
                    "decay 1e-4, cosine schedule, seed 0. Ctrl-C stops after the current "
                    "batch and keeps every completed epoch (a second Ctrl-C stops at once); "
                    "--resume continues the run.")
    train.add_argument("--model", help=f"{MODEL_HELP} (default: resnet20)")
    train.add_argument("--width", type=int,
                       help="channels of the first stage of a CIFAR network (16 in the "
                            "paper); smaller is faster")
    train.add_argument("--out", metavar="DIR",
                       help="output folder (default: runs/<model>-<dataset>-<time>)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the run saved in RUN_DIR after its last complete epoch, "
                            "with its recorded model and recipe")
    _add_recipe(train)
    train.add_argument("--profile", type=step_count, nargs="?", const=3, default=0, metavar="STEPS",
                       help="profile STEPS training steps (3 if not given) after the first and "
                            "write their table, profile.txt, and Chrome trace, "
                            "profile-trace.json, into the run's folder")
    _add_backend(train, default=None, default_text="numba; with --resume, the run's")
    parallel = train.add_argument_group("data parallel (MPI)")
    parallel.add_argument("--workers", type=int, default=1, metavar="N",
                          help="train on N MPI ranks started with the installed mpiexec, each "
                               "with its share of the cores and of every batch (--batch-size "
                               "stays the global batch); `mpiexec -n N tinyres train` works "
                               "the same (default: 1)")
    parallel.add_argument("--no-sync-bn", action="store_true",
                          help="with several workers, normalize with each rank's own batch "
                               "statistics instead of the whole batch's (SyncBatchNorm)")

    evaluate = commands.add_parser(
        "evaluate", help="test loss, accuracy per class and confusion matrix of a trained run",
        description="Evaluate a run's checkpoint on the test images its training used: the "
                    "test loss, the accuracy overall and per class, and a confusion-matrix "
                    "picture.")
    evaluate.add_argument("run", metavar="RUN_DIR|CHECKPOINT",
                          help="a run folder (its last.npz is used) or a checkpoint file")
    evaluate.add_argument("--out", metavar="PNG",
                          help="where to write the confusion matrix (default: "
                               "confusion-<checkpoint>.png beside the checkpoint)")
    evaluate.add_argument("--data-root", metavar="DIR",
                          help="where CIFAR-10 is now, if it moved since training")
    _add_backend(evaluate)

    predict = commands.add_parser(
        "predict", help="the most probable classes of images, by a trained run",
        description="Classify PNG, JPEG or .npy images with a run's network. Each image is "
                    "converted as training saw its images: channels (colour to grey or grey "
                    "to colour), size (bilinear resize) and the run's normalization.")
    predict.add_argument("run", metavar="RUN_DIR|CHECKPOINT",
                         help="a run folder (its last.npz is used) or a checkpoint file")
    predict.add_argument("images", metavar="IMAGE", nargs="+",
                         help=".png, .jpg or .npy ((H, W) or (C, H, W), values in [0, 1])")
    predict.add_argument("--top", type=int, default=3, metavar="K",
                         help="how many classes to list per image (default: %(default)s)")
    predict.add_argument("--invert", action="store_true",
                         help="use 1 - pixel: a dark digit on white for a network trained on "
                              "MNIST's light digits on black")
    _add_backend(predict)

    summary = commands.add_parser(
        "summary", help="print a network's layers, shapes and sizes",
        description="Print each layer's output shape, parameters and multiply-accumulates, "
                    "at the network's natural input unless told otherwise: 3x224x224 and "
                    "1,000 classes for the ImageNet networks, 3x32x32 and 10 classes for the "
                    "CIFAR ones.")
    summary.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    summary.add_argument("--input-shape", type=_input_shape, default=None, metavar="C,H,W",
                         help="one image's shape (default: the network's natural input)")
    summary.add_argument("--num-classes", type=int, default=None,
                         help="default: 1000 for the ImageNet networks, 10 for the CIFAR ones")
    summary.add_argument("--dataset", choices=data.DATASET_NAMES, default=None,
                         help="take the input shape and classes of this dataset, as "
                              "train --dataset builds the network")
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

    add_profile_parser(commands)

    experiment = commands.add_parser("experiment", help="reproduce an experiment of the paper")
    experiments = experiment.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    experiments.required = True
    degrade = experiments.add_parser(
        "degradation", help="plain vs residual networks of two depths (He et al. Fig. 6)",
        description="Train plain-20, plain-56, ResNet-20 and ResNet-56 with one recipe and "
                    "plot their training error curves, plain and residual side by side. With "
                    "the defaults (width 16, 10 epochs) this takes about 16 minutes on one "
                    "core; the documentation's figure (--width 8 --epochs 16) took 19 minutes "
                    "on two.")
    degrade.add_argument("--depths", type=int, nargs="+", default=[20, 56],
                         help="depths 6n+2 (default: 20 56)")
    degrade.add_argument("--width", type=int, default=16,
                         help="first-stage channels (default: %(default)s, as the paper)")
    degrade.add_argument("--out", default="runs/degradation", help="default: %(default)s")
    _add_recipe(degrade, dataclasses.replace(DEFAULTS, epochs=10))
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


def command_summary(args):
    from .models import summary

    try:
        family = model_family(args.model, args.width)
    except ValueError as error:
        raise UsageError(f"MODEL: {error}") from None
    for flag, value in (("--num-classes", args.num_classes), ("--width", args.width)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    shape, classes, natural_name = natural_input(args.model)
    origin = f"the natural input of the {natural_name} networks"
    if args.dataset is not None:
        shape, classes = data.DATASET_SHAPES[args.dataset]
        origin = f"the {args.dataset} images, as train --dataset {args.dataset} builds it"
    given = [flag for flag, value in (("--input-shape", args.input_shape),
                                      ("--num-classes", args.num_classes)) if value is not None]
    if given:
        origin += f", changed by {' and '.join(given)}"
    shape = args.input_shape or shape
    classes = args.num_classes or classes
    model = build_model(args.model, num_classes=classes, in_channels=shape[0], width=args.width)
    print(f"input {'x'.join(map(str, shape))} with {classes:,} classes: {origin}")
    if family == "cifar" and args.dataset is None and args.input_shape is None:
        print("(tinyres train builds it for its dataset's images: 1x28x28 for mnist5k, the "
              "default; see --dataset)")
    print(summary(model, shape))
    return 0


def command_gradcheck(args):
    from .gradcheck import gradcheck
    from .tensor import tensor
    from .train import seed_everything

    try:
        model_family(args.model, args.width)
    except ValueError as error:
        raise UsageError(f"MODEL: {error}") from None
    select_backend(args)
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
    for mismatch in report.at_kinks:   # not a bug: the finite difference straddled a kink
        print(f"  at a kink: {mismatch}")
    failed = [names[check.index] for check in report.inputs if not check.passed]
    verdict = "passed" if report.passed else f"FAILED for {', '.join(failed)}"
    print(f"gradcheck {verdict} in {time.perf_counter() - started:.1f} s")
    return 0 if report.passed else 1


def command_experiment(args):
    recipe = recipe_from_arguments(args)
    for depth in args.depths:
        if depth < 8 or (depth - 2) % 6:
            raise UsageError(f"--depths: a CIFAR network has 6n + 2 layers (8, 14, 20, ...), "
                             f"got {depth}")
    if args.width < 1:
        raise UsageError(f"--width must be at least 1, got {args.width}")
    select_backend(args)
    check_data(recipe.dataset, recipe.data_root)
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


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "summary": command_summary, "gradcheck": command_gradcheck,
            "profile": command_profile, "experiment": command_experiment, "grade": command_grade,
            "assignment": command_assignment}


def main(argv=None):
    """Run the ``tinyres`` command with ``argv`` (default: the process's arguments).

    Returns the exit status: 0 on success (for ``grade``: whenever grading ran), 1 when
    training diverged or a gradient check failed, 2 for a usage problem (an unknown
    model, an unavailable backend, an unreadable checkpoint, a submission that cannot be
    read), 130 when Ctrl-C stopped it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)   # what --workers passes on
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
    except KeyboardInterrupt:  # Ctrl-C outside training, which reports its own
        print(f"tinyres {args.command}: stopped by Ctrl-C", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The output went to a program that stopped reading (tinyres summary ... | head).
        # Point stdout at /dev/null so that flushing it at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
