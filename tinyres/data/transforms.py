"""Batch transforms: each maps ``images (N, C, H, W)`` to a new array, given an RNG.

Every transform is called as ``transform(images, rng)`` with a
``numpy.random.Generator``; the random ones draw all their numbers from it, so a
loader that owns the generator makes augmentation reproducible. They work on the
whole batch at once (no Python loop over images) and never modify their input.

The ResNet paper's CIFAR-10 recipe is

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize(mean, std)])
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _check_batch(images, transform_name):
    """Reject anything that is not a (N, C, H, W) array, naming the transform."""
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"{transform_name}: expected a NumPy array of images (N, C, H, W), "
            f"got {type(images).__name__}"
        )
    if images.ndim != 4:
        raise ValueError(
            f"{transform_name}: expected a batch of images (N, C, H, W), "
            f"got an array of shape {images.shape}"
        )


def _check_rng(rng, transform_name):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{transform_name}: needs a numpy.random.Generator to draw from "
            f"(e.g. np.random.default_rng(0)), got {type(rng).__name__}"
        )


def _pair(value, argument_name, transform_name):
    """An int or an (h, w) pair -> (h, w) of positive ints."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(item, (int, np.integer)) and item > 0 for item in pair):
        raise ValueError(
            f"{transform_name}: {argument_name} must be a positive int or a pair (h, w) "
            f"of positive ints, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def channel_mean_std(images):
    """Per-channel mean and standard deviation over a whole set of images.

    images: (N, C, H, W) array, or anything with an ``images`` attribute (a Dataset)
    -> (mean (C,), std (C,)) float64, averaged over N, H and W. Computed on the
    training set, these are the constants for :class:`Normalize`.
    """
    images = getattr(images, "images", images)
    _check_batch(np.asarray(images), "channel_mean_std")
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    return mean, std


class Normalize:
    """Per-channel standardisation: out[:, c] = (images[:, c] - mean[c]) / std[c].

    mean, std: (C,) sequences (or scalars for every channel). The rng is ignored.
    images: (N, C, H, W) -> (N, C, H, W), same dtype.
    """

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise ValueError(
                f"Normalize: mean and std must be (C,) sequences of the same length, "
                f"got shapes {self.mean.shape} and {self.std.shape}"
            )
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: every std must be positive, got {self.std.tolist()}")

    def __call__(self, images, rng=None):
        _check_batch(images, "Normalize")
        channels = images.shape[1]
        if self.mean.shape[0] not in (1, channels):
            raise ValueError(
                f"Normalize: built for {self.mean.shape[0]} channels, got images with "
                f"{channels} channels (shape {images.shape})"
            )
        # (C,) -> (1, C, 1, 1) so it broadcasts over the batch and the pixels.
        mean = self.mean.astype(images.dtype).reshape(1, -1, 1, 1)
        std = self.std.astype(images.dtype).reshape(1, -1, 1, 1)
        return (images - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Zero-pad every side by ``padding``, then cut a random ``size`` window per image.

    images: (N, C, H, W) -> (N, C, h, w) with (h, w) = size. Each image gets its own
    top-left corner (y, x), drawn uniformly from 0..H + 2*padding - h (and likewise x).
    With size 32 and padding 4 on CIFAR-10 this shifts images by up to 4 pixels,
    filling the uncovered border with zeros, as in the ResNet paper.
    """

    def __init__(self, size, padding=0):
        self.size = _pair(size, "size", "RandomCrop")
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}")
        self.padding = int(padding)

    def __call__(self, images, rng):
        _check_batch(images, "RandomCrop")
        _check_rng(rng, "RandomCrop")
        crop_height, crop_width = self.size
        pad = self.padding
        padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        padded_height, padded_width = padded.shape[2:]
        if crop_height > padded_height or crop_width > padded_width:
            raise ValueError(
                f"RandomCrop: crop {self.size} does not fit in images of size "
                f"{images.shape[2:]} padded by {pad} to {(padded_height, padded_width)}"
            )
        batch_size = images.shape[0]
        top = rng.integers(0, padded_height - crop_height + 1, size=batch_size)
        left = rng.integers(0, padded_width - crop_width + 1, size=batch_size)
        # Every possible crop as a view, (N, C, positions_y, positions_x, h, w); then one
        # (top, left) per image. The two index arrays are split by the channel slice, so
        # NumPy puts their common axis first: (N, C, h, w).
        windows = sliding_window_view(padded, (crop_height, crop_width), axis=(2, 3))
        return windows[np.arange(batch_size), :, top, left]

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``.

    images: (N, C, H, W) -> (N, C, H, W); out[n] = images[n, :, :, ::-1] where flipped.
    Not for digits by default: a mirrored 2 is no longer a 2.
    """

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, images, rng):
        _check_batch(images, "RandomHorizontalFlip")
        _check_rng(rng, "RandomHorizontalFlip")
        flip = rng.random(images.shape[0]) < self.p
        return np.where(flip[:, None, None, None], images[..., ::-1], images)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms in order, all drawing from the same rng."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for transform in self.transforms:
            if not callable(transform):
                raise TypeError(
                    f"Compose: every transform must be callable as transform(images, rng), "
                    f"got {transform!r}"
                )

    def __call__(self, images, rng):
        for transform in self.transforms:
            images = transform(images, rng)
        return images

    def __repr__(self):
        inner = ", ".join(repr(transform) for transform in self.transforms)
        return f"Compose([{inner}])"
