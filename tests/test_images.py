"""Tests for tinyres/data/images.py: image files become arrays shaped like a dataset's images."""
import numpy as np
import pytest
from PIL import Image

from tinyres.data import match_input, read_image
from tinyres.data.images import LUMA_WEIGHTS, match_channels, resize


def write_png(path, pixels):
    """Save uint8 pixels (H, W) or (H, W, 3) with Pillow."""
    Image.fromarray(pixels).save(path)
    return path


def test_grey_png_reads_as_one_channel_in_zero_one(tmp_path):
    pixels = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    image = read_image(write_png(tmp_path / "grey.png", pixels))
    assert image.shape == (1, 4, 6) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], pixels / 255.0, rtol=1e-6)


def test_colour_png_and_jpeg_read_as_three_channels(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    png = read_image(write_png(tmp_path / "colour.png", pixels))
    assert png.shape == (3, 5, 7)
    np.testing.assert_allclose(png, pixels.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    flat = np.full((16, 16, 3), (200, 40, 90), dtype=np.uint8)   # JPEG is lossy: a flat colour
    Image.fromarray(flat).save(tmp_path / "colour.jpg", quality=95)
    jpeg = read_image(tmp_path / "colour.jpg")
    assert jpeg.shape == (3, 16, 16)
    np.testing.assert_allclose(jpeg.mean(axis=(1, 2)), np.array([200, 40, 90]) / 255, atol=0.02)


def test_sixteen_bit_png_and_alpha(tmp_path):
    deep = np.array([[0, 65535], [32768, 16384]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_allclose(read_image(tmp_path / "deep.png")[0], deep / 65535, rtol=1e-6)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10   # red, nearly transparent: alpha is dropped
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(read_image(tmp_path / "alpha.png")[:, 0, 0], [1.0, 0.0, 0.0])


def test_npy_images(tmp_path):
    image = np.random.default_rng(1).random((6, 6)).astype(np.float32)
    np.save(tmp_path / "plain.npy", image)
    np.testing.assert_array_equal(read_image(tmp_path / "plain.npy"), image[None])
    np.save(tmp_path / "bytes.npy", np.full((3, 2, 2), 255, dtype=np.uint8))
    np.testing.assert_array_equal(read_image(tmp_path / "bytes.npy"), np.ones((3, 2, 2)))


@pytest.mark.parametrize("content,message", [
    (np.zeros((2, 5, 5)), r"shape \(2, 5, 5\); an image is \(H, W\) or \(C, H, W\)"),
    (np.full((4, 4), 3.0), r"values in \[3, 3\]; an image's pixels are floats in \[0, 1\]"),
    (np.array([{"a": 1}], dtype=object), "is not a .npy array of numbers"),
])
def test_bad_npy_images_are_explained(tmp_path, content, message):
    np.save(tmp_path / "bad.npy", content, allow_pickle=True)
    with pytest.raises(ValueError, match=message) as caught:
        read_image(tmp_path / "bad.npy")
    assert "bad.npy" in str(caught.value)


def test_files_that_are_not_images_are_named(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match="notes.png' is not an image file"):
        read_image(tmp_path / "notes.png")
    write_png(tmp_path / "whole.png", np.zeros((32, 32), dtype=np.uint8))
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:200])
    with pytest.raises(ValueError, match="cut.jpg' is a damaged image"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_channels_are_converted_by_luma_or_repetition():
    colour = np.stack([np.full((2, 2), value, dtype=np.float32) for value in (1.0, 0.5, 0.0)])
    grey = match_channels(colour, 1)
    np.testing.assert_allclose(grey, np.full((1, 2, 2), LUMA_WEIGHTS[0] + 0.5 * LUMA_WEIGHTS[1]))
    np.testing.assert_array_equal(match_channels(grey, 3), np.repeat(grey, 3, axis=0))
    with pytest.raises(ValueError, match="cannot turn an image of 3 channels into 2"):
        match_channels(colour, 2)


def test_resize_and_match_input():
    constant = np.full((1, 40, 30), 0.25, dtype=np.float32)
    np.testing.assert_allclose(resize(constant, (8, 8)), np.full((1, 8, 8), 0.25), rtol=1e-6)
    ramp = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 1, 16).repeat(16, axis=1)
    small = resize(ramp, (4, 4))[0]
    assert np.all(np.diff(small, axis=1) > 0)            # still increasing left to right
    batch = match_input([constant, np.ones((3, 5, 5), dtype=np.float32)], (1, 8, 8))
    assert batch.shape == (2, 1, 8, 8) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[1], np.ones((1, 8, 8)), rtol=1e-6)
