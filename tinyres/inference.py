"""Use a trained run: rebuild its network, evaluate it on its test set, classify images.

    trained = load_trained("runs/resnet20-mnist5k")        # or a path to best.npz
    report = evaluate_trained(trained)                      # loss, accuracy, per class
    batch = prepare_images(trained, ["seven.png"])         # as the loader fed training
    probabilities = predict(trained, batch)                 # (N, num_classes), rows sum to 1

A run checkpoint records the network (name, width, input channels, classes), the
dataset and the per-channel normalization of the training images (see
:mod:`tinyres.checkpoint`), so nothing has to be remembered or recomputed.
"""
from dataclasses import dataclass

import numpy as np

from . import data
from . import functional as F
from .autograd import no_grad
from .checkpoint import checkpoint_path, load_checkpoint
from .experiments import build_loaders, build_model, recipe_of
from .tensor import tensor
from .train import evaluate

RUN_FIELDS = ("model", "in_channels", "num_classes", "classes", "input_shape", "normalization",
              "dataset")


@dataclass
class TrainedModel:
    """A network with its trained weights, in eval mode, and what it was trained on.

    classes: the class names; input_shape: (C, H, W) of one image; normalize: the
    training run's :class:`~tinyres.data.Normalize`.
    """
    model: object
    checkpoint: object
    classes: tuple
    input_shape: tuple
    normalize: object

    @property
    def run(self):
        """The run's recorded config (model, dataset, recipe, ...)."""
        return self.checkpoint.run


def load_trained(path, name="last.npz"):
    """Rebuild the network of a run folder (its ``name`` checkpoint) or of a checkpoint file."""
    checkpoint = load_checkpoint(checkpoint_path(path, name))
    run = checkpoint.run
    missing = [key for key in RUN_FIELDS if not isinstance(run, dict) or key not in run]
    if missing:
        raise ValueError(f"{checkpoint.path!r} does not record {', '.join(missing)} (it was "
                         "written by fit without the config of tinyres.experiments.run_config),"
                         " so the network cannot be rebuilt from it")
    model = build_model(run["model"], num_classes=run["num_classes"],
                        in_channels=run["in_channels"], width=run.get("width"))
    model.load_state_dict(checkpoint.model_state)
    model.eval()
    normalize = data.Normalize(run["normalization"]["mean"], run["normalization"]["std"])
    return TrainedModel(model, checkpoint, tuple(run["classes"]), tuple(run["input_shape"]),
                        normalize)


def per_class_accuracy(labels, predictions, num_classes):
    """``(images (K,), correct (K,), accuracy (K,))`` per true class, from the confusion matrix.

    accuracy[k] = confusion[k, k] / images[k] (NaN for a class with no images).
    """
    from .viz import confusion_matrix

    counts = confusion_matrix(labels, predictions, num_classes)
    images, correct = counts.sum(axis=1), np.diag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = correct / images
    return images, correct, accuracy


def evaluate_trained(trained, data_root=None):
    """The test-set report of a trained run, on the test images its training evaluated.

    The test loader is rebuilt as training built it (same subset, batch size and
    normalization), so the numbers match the run's history for that epoch.
    Returns ``{"loss", "accuracy", "labels", "predictions", "images", "correct",
    "class_accuracy"}`` (the last three per class, see :func:`per_class_accuracy`).
    data_root: where CIFAR-10 is now, if it moved since training.
    """
    recipe = recipe_of(trained.run)
    if data_root is not None:
        recipe.data_root = data_root
    _, test_loader = build_loaders(recipe, trained.run["normalization"])
    report = evaluate(trained.model, test_loader, keep_predictions=True)
    images, correct, accuracy = per_class_accuracy(report["labels"], report["predictions"],
                                                   len(trained.classes))
    return {**report, "images": images, "correct": correct, "class_accuracy": accuracy}


def prepare_images(trained, images, invert=False):
    """Images (paths, or (C, H, W) arrays in [0, 1]) -> the normalized batch the network expects.

    Channels and size are matched to the run's input (:func:`tinyres.data.match_input`),
    then the training normalization is applied.  invert: use 1 - pixel, e.g. for a dark
    digit drawn on white when the network learnt MNIST's light digits on black.
    Returns (N, C, H, W) float32.
    """
    arrays = [data.read_image(image) if not isinstance(image, np.ndarray) else image
              for image in images]
    batch = data.match_input(arrays, trained.input_shape)
    if invert:
        batch = 1.0 - batch
    return trained.normalize(batch)


def predict(trained, batch):
    """Class probabilities (N, num_classes) of a prepared batch (N, C, H, W): softmax(logits)."""
    with no_grad():
        log_probabilities = F.log_softmax(trained.model(tensor(batch)), dim=1)
    return np.exp(log_probabilities.numpy().astype(np.float64))


def top_classes(probabilities, classes, count=3):
    """For each row, the ``count`` most probable ``(class name, probability)`` pairs, best first."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
    return [[(classes[index], float(row[index])) for index in indices]
            for row, indices in zip(probabilities, order)]
