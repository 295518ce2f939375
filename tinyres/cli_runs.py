"""The ``tinyres`` commands that work with runs: train (new or ``--resume``), evaluate, predict.

Every option is checked before anything is printed or loaded, and an error names the
option and the value received (``--train-subset must be at least 1, got 0``).

Ctrl-C during training stops it after the current batch (a second Ctrl-C stops it at
once), keeps every completed epoch, says which epoch ``last.npz`` holds and prints the
command that resumes the run.  The exit status is then 130, as the shell reports for
any program stopped by Ctrl-C (128 + the signal's number, 2).
"""
import dataclasses
import math
import os
import shlex
import time

from . import backend, data
from . import distributed as dist
from .backend.cpu_threads import get_num_threads, set_num_threads
from .checkpoint import checkpoint_path, read_metadata
from .experiments import load_run, model_family, resume, run
from .train import TrainingInterrupted, best_epoch
from .workers import check_workers, launch, stop_all_on_error

INTERRUPTED = 130
DEFAULT_MODEL = "resnet20"

# The command-line option of each Recipe field that has one.
RECIPE_FLAGS = {"dataset": "--dataset", "data_root": "--data-root", "epochs": "--epochs",
                "batch_size": "--batch-size", "lr": "--lr", "momentum": "--momentum",
                "weight_decay": "--weight-decay", "schedule": "--schedule",
                "warmup_steps": "--warmup-steps", "augment": "--augment",
                "train_subset": "--train-subset", "test_subset": "--test-subset",
                "seed": "--seed"}
# The least value each numeric option accepts.
MINIMUMS = {"epochs": 1, "batch_size": 1, "train_subset": 1, "test_subset": 1, "lr": 0,
            "momentum": 0, "weight_decay": 0, "warmup_steps": 0, "seed": 0}


class UsageError(ValueError):
    """An option whose value the command cannot use; the message names the option."""


# ---------------------------------------------------------------------- checking options
def recipe_from_arguments(args):
    """The Recipe of the parsed options (``args.recipe_defaults`` for those not given).

    Raises :class:`UsageError` naming the option for a value out of range.
    """
    defaults = args.recipe_defaults
    values = {field: getattr(args, field) if getattr(args, field) is not None
              else getattr(defaults, field) for field in RECIPE_FLAGS}
    for field, least in MINIMUMS.items():
        value = values[field]
        if value is not None and not (math.isfinite(value) and value >= least):
            raise UsageError(f"{RECIPE_FLAGS[field]} must be at least {least}, got {value:g}")
    return dataclasses.replace(defaults, **values)


def select_backend(args, default=None):
    """Apply ``--backend`` (else ``default``, else the registry's own) and ``--threads``."""
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    name = args.backend or default
    if name is not None:
        try:
            backend.set_backend(name)
        except backend.BackendUnavailableError as error:
            reason = str(error).partition("): ")[2] or str(error)
            if args.backend is None:   # the backend a resumed run was trained on
                raise UsageError(f"--backend: this run was trained on the {name} backend, which "
                                 f"cannot run here ({reason}); continue it on another one with "
                                 "--backend numba or --backend numpy") from None
            raise UsageError(f"--backend {name}: {reason}") from None
    if args.threads is not None:
        set_num_threads(args.threads)


def check_data(dataset, root):
    """Refuse, before loading anything, a dataset whose files or package are missing."""
    try:
        data.check_available(dataset, root)
    except FileNotFoundError as error:
        raise UsageError(f"--data-root: {error}") from None
    except ImportError as error:
        raise UsageError(f"--dataset {dataset}: {error}") from None


def check_model(name, width):
    """Refuse an unknown ``--model`` or a ``--width`` it cannot take, naming the option."""
    try:
        model_family(name)
    except ValueError as error:
        raise UsageError(f"--model: {error}") from None
    if width is not None:
        if width < 1:
            raise UsageError(f"--width must be at least 1 channel, got {width}")
        try:
            model_family(name, width)
        except ValueError as error:
            raise UsageError(f"--width: {error}") from None


def check_out_dir(path):
    """Refuse an ``--out`` that is a file, lies under a file, or already holds a run."""
    existing = path
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if existing and not os.path.isdir(existing):
        raise UsageError(f"--out {path!r}: {existing!r} is a file; give a folder for the run's "
                         "files (it is created if missing)")
    last = os.path.join(path, "last.npz")
    if os.path.exists(last):
        try:
            metadata = read_metadata(last)
            held = f" (its last.npz holds epoch {metadata['epoch']} of {metadata['epochs']})"
        except (OSError, ValueError):
            held = ""
        raise UsageError(f"--out {path!r} already holds a run{held}; continue it with "
                         f"tinyres train --resume {shlex.quote(path)}, or give another folder")


# ---------------------------------------------------------------------- train
def command_train(args):
    """``tinyres train``: a new run, or ``--resume RUN_DIR``."""
    if args.resume is not None:
        return _resume(args)
    recipe = recipe_from_arguments(args)
    model_name = args.model or DEFAULT_MODEL
    check_model(model_name, args.width)
    workers = getattr(args, "workers", 1)
    check_workers(workers, recipe.batch_size)
    ranks = dist.launched_by_mpi()
    if ranks:
        dist.init()
    talks = dist.rank() == 0 if ranks else True   # under MPI, rank 0 alone prints
    select_backend(args, default="numba")
    check_data(recipe.dataset, recipe.data_root)
    out_dir = args.out or os.path.join(
        "runs", f"{model_name}-{recipe.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    if talks:
        check_out_dir(out_dir)
    if workers > 1 and not ranks:   # start the ranks, each running this same command
        argv = list(args.argv) + ([] if args.out else ["--out", out_dir])
        return launch(workers, argv, args.threads)
    if talks:
        world = f", {dist.world_size()} workers" if ranks else ""
        print(f"training {model_name} on {recipe.dataset} for {recipe.epochs} epochs "
              f"({backend.get_backend()} backend, seed {recipe.seed}{world}) -> {out_dir}",
              flush=True)
    from .cli_profile import profile_training   # cli_profile imports this module

    try:
        with stop_all_on_error(), profile_training(getattr(args, "profile", 0) if talks else 0,
                                                   out_dir):
            _, history = run(model_name, recipe, out_dir=out_dir, width=args.width,
                             progress=not args.no_progress,
                             sync_batch_norm=not getattr(args, "no_sync_bn", False))
    except KeyboardInterrupt as stop:
        return report_stop(out_dir, stop) if talks else INTERRUPTED
    if talks:
        _report_finished(history, out_dir)
    return 0


def _resume(args):
    given = [flag for flag, value in (("--model", args.model), ("--width", args.width),
                                      ("--out", args.out)) if value is not None]
    given += [flag for field, flag in RECIPE_FLAGS.items() if getattr(args, field) is not None]
    if given:
        raise UsageError(f"--resume continues the run as its checkpoint recorded it, so "
                         f"{', '.join(given)} cannot change it; to train differently, start a "
                         "new run with --out")
    run_dir = args.resume
    checkpoint = load_run(run_dir)
    config = checkpoint.run
    select_backend(args, default=config.get("backend"))
    check_data(config["dataset"], config.get("data_root"))
    if checkpoint.epoch >= checkpoint.epochs:
        print(f"{run_dir} already finished its {checkpoint.epochs} epochs; nothing to resume "
              f"(tinyres evaluate {shlex.quote(run_dir)} reports on it)")
        return 0
    print(f"resuming {config['model']} on {config['dataset']} in {run_dir} after epoch "
          f"{checkpoint.epoch} of {checkpoint.epochs} ({backend.get_backend()} backend, seed "
          f"{config['seed']})", flush=True)
    changed = [f"the {name} ({before} before, {now} now)" for name, before, now in
               (("backend", config.get("backend"), backend.get_backend()),
                ("thread count", config.get("threads"), get_num_threads()))
               if before is not None and before != now]
    if changed:
        print(f"note: {' and '.join(changed)} differ, so the results agree with an "
              "uninterrupted run to round-off, not bit for bit")
    from .cli_profile import profile_training   # cli_profile imports this module

    try:
        with profile_training(getattr(args, "profile", 0), run_dir):
            _, history = resume(run_dir, progress=not args.no_progress, checkpoint=checkpoint)
    except KeyboardInterrupt as stop:
        return report_stop(run_dir, stop)
    _report_finished(history, run_dir)
    return 0


def report_stop(out_dir, stop):
    """After Ctrl-C: say what was kept and how to continue.  Returns the exit status 130."""
    at_once = isinstance(stop, TrainingInterrupted) and stop.at_once
    print(f"\ntraining stopped by Ctrl-C{' at once' if at_once else ''}; the epoch in progress "
          "is dropped.")
    last = os.path.join(out_dir, "last.npz")
    try:
        metadata = read_metadata(last)
    except (OSError, ValueError):
        metadata = None
    if metadata is None:
        print("No epoch had completed, so nothing was saved to resume.")
    else:
        print(f"{last} holds epoch {metadata['epoch']} of {metadata['epochs']}, the last "
              "complete one.")
        print(f"resume with: tinyres train --resume {shlex.quote(out_dir)}")
    return INTERRUPTED


def _report_finished(history, out_dir):
    best = best_epoch(history)
    print(f"final test accuracy {100 * history['test_accuracy'][-1]:.2f}% "
          f"(best {100 * best['test_accuracy']:.2f}% at epoch {best['epoch']}); "
          f"{sum(history['seconds']):.0f} s of training")
    print(f"files in {out_dir}: history.json, history.csv, curves.png, last.npz, best.npz")
    quoted = shlex.quote(out_dir)
    print(f"next: tinyres evaluate {quoted}; tinyres predict {quoted} IMAGE...")


# ---------------------------------------------------------------------- evaluate, predict
def command_evaluate(args):
    """``tinyres evaluate``: test loss and accuracy, per class, and the confusion matrix."""
    from .inference import evaluate_trained, load_trained
    from .viz import plot_confusion_matrix

    select_backend(args)
    path = checkpoint_path(args.run)
    trained = load_trained(path)
    config, checkpoint = trained.run, trained.checkpoint
    check_data(config["dataset"], args.data_root or config.get("data_root"))
    stem = os.path.splitext(os.path.basename(path))[0]
    picture = args.out or os.path.join(os.path.dirname(path), f"confusion-{stem}.png")
    if os.path.isdir(picture):
        raise UsageError(f"--out {picture!r} is a folder; give the path of a .png file")
    print(f"evaluating {path}: {config['model']} after epoch {checkpoint.epoch} of "
          f"{checkpoint.epochs}, on the test images of {config['dataset']} "
          f"({backend.get_backend()} backend)", flush=True)
    report = evaluate_trained(trained, data_root=args.data_root)
    total = len(report["labels"])
    print(f"test loss {report['loss']:.4f}, accuracy {100 * report['accuracy']:.2f}% "
          f"({int(report['correct'].sum()):,} of {total:,} images)")
    width = max(len("class"), *(len(str(name)) for name in trained.classes))
    print(f"{'class':<{width}}  {'images':>7}  {'correct':>7}  {'accuracy':>8}")
    for name, images, correct, accuracy in zip(trained.classes, report["images"],
                                               report["correct"], report["class_accuracy"]):
        shown = "-" if images == 0 else f"{100 * accuracy:.2f}%"
        print(f"{name:<{width}}  {images:>7,}  {correct:>7,}  {shown:>8}")
    plot_confusion_matrix(report["labels"], report["predictions"], trained.classes,
                          path=picture, title=f"{config['model']} on {config['dataset']}, "
                                              f"epoch {checkpoint.epoch}: accuracy "
                                              f"{100 * report['accuracy']:.2f}%")
    print(f"confusion matrix: {picture}")
    return 0


def command_predict(args):
    """``tinyres predict``: the most probable classes of each image."""
    from .inference import load_trained, predict, prepare_images, top_classes

    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    select_backend(args)
    trained = load_trained(checkpoint_path(args.run))
    images = []
    for path in args.images:
        try:
            images.append(data.read_image(path))
        except (FileNotFoundError, ValueError) as error:
            raise UsageError(f"IMAGE: {error}") from None
    probabilities = predict(trained, prepare_images(trained, images, invert=args.invert))
    shape = "x".join(map(str, trained.input_shape))
    print(f"{trained.run['model']} trained on {trained.run['dataset']} "
          f"(epoch {trained.checkpoint.epoch}): {shape} images, {len(trained.classes)} classes")
    for path, image, best in zip(args.images, images,
                                 top_classes(probabilities, trained.classes, args.top)):
        original = "x".join(map(str, image.shape))
        converted = "" if original == shape else f" ({original} -> {shape})"
        print(f"{path}{converted}: " + ", ".join(f"{name} {100 * probability:.1f}%"
                                                  for name, probability in best))
    return 0
