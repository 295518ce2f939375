"""Read image files into arrays shaped like a dataset's images, to predict their classes.

    image = read_image("digit.png")               # (C, H, W) float32 in [0, 1]
    batch = match_input([image], (1, 28, 28))     # (1, 1, 28, 28): channels and size matched

PNG and JPEG files are decoded by Pillow (a dependency of matplotlib).  A ``.npy`` file
holds one image as a dataset does: (H, W) or (C, H, W), floats in [0, 1] or uint8
0..255.  To match a network's input:

    colour -> grey   0.299 R + 0.587 G + 0.114 B   (ITU-R 601, the weights Pillow uses)
    grey -> colour   the one channel repeated three times
    another size     bilinear resize to (H, W); the aspect ratio is not kept

An alpha channel is dropped.  Normalisation is left to the caller (the run's
``Normalize``), exactly as the loader applied it during training.
"""
import os

import numpy as np

LUMA_WEIGHTS = (0.299, 0.587, 0.114)   # R, G, B
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def read_image(path):
    """One image file (PNG, JPEG or ``.npy``) -> (C, H, W) float32 in [0, 1], C = 1 or 3.

    Raises ValueError naming the file when it is not an image, is damaged, or holds an
    array of another shape or range; FileNotFoundError when it does not exist.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no image file {path!r}")
    if path.lower().endswith(".npy"):
        return _read_array(path)
    return _read_picture(path)


def _read_picture(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
            if picture.mode in SIXTEEN_BIT_MODES:   # 16-bit grey PNG
                pixels = np.asarray(picture, dtype=np.float64)[None] / 65535.0
            else:
                grey = picture.mode in GREY_MODES
                pixels = np.asarray(picture.convert("L" if grey else "RGB"), dtype=np.float64)
                # (H, W) -> (1, H, W); (H, W, 3) -> (3, H, W)
                pixels = pixels[None] if grey else pixels.transpose(2, 0, 1)
                pixels = pixels / 255.0
    except UnidentifiedImageError:
        raise ValueError(f"{path!r} is not an image file that can be read: expected a PNG or "
                         "JPEG picture, or a .npy array") from None
    except OSError as error:   # e.g. a truncated JPEG
        raise ValueError(f"{path!r} is a damaged image ({error})") from None
    return np.clip(pixels, 0.0, 1.0).astype(np.float32)


def _read_array(path):
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError:
        raise ValueError(f"{path!r} is not a .npy array of numbers (an image is (H, W) or "
                         "(C, H, W) floats in [0, 1])") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif":
        raise ValueError(f"{path!r} must hold one numeric array, got "
                         f"{getattr(array, 'dtype', type(array).__name__)}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"{path!r} holds an array of shape {array.shape}; an image is (H, W) "
                         "or (C, H, W) with C = 1 or 3 channels")
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32)
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{path!r} holds values in [{low:.3g}, {high:.3g}]; an image's pixels "
                         "are floats in [0, 1] (before normalisation) or uint8 0..255")
    return array.astype(np.float32)


def match_channels(image, channels):
    """(c, H, W) -> (channels, H, W): colour to grey by luma, grey to colour by repetition."""
    have = image.shape[0]
    if have == channels:
        return image
    if have == 3 and channels == 1:
        weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32).reshape(3, 1, 1)
        return (image * weights).sum(axis=0, keepdims=True)
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=0)
    raise ValueError(f"cannot turn an image of {have} channels into {channels} channels")


def resize(image, size):
    """(C, H, W) -> (C, h, w) with (h, w) = size, bilinear, channel by channel."""
    from PIL import Image

    height, width = size
    if image.shape[1:] == (height, width):
        return image
    channels = [np.asarray(Image.fromarray(channel.astype(np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR)) for channel in image]
    return np.clip(np.stack(channels), 0.0, 1.0).astype(np.float32)


def match_input(images, input_shape):
    """A list of (c, h, w) images -> one batch (N, C, H, W) float32 of ``input_shape`` (C, H, W)."""
    channels, height, width = input_shape
    return np.stack([resize(match_channels(image, channels), (height, width))
                     for image in images])
