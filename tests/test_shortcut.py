"""The option-A shortcut: strided subsample + zero channels."""
import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F


@pytest.mark.parametrize("shape, out_channels, stride", [((2, 4, 8, 8), 8, 2), ((1, 3, 7, 7), 6, 2),
                                                         ((1, 4, 5, 5), 4, 1), ((1, 2, 4, 4), 5, 1)])
def test_shortcut_values_shape_and_gradient(shape, out_channels, stride, rng):
    data = rng.standard_normal(shape)
    x = tr.tensor(data, requires_grad=True)
    out = F.zero_pad_shortcut(x, out_channels, stride)
    height = -(-shape[2] // stride)
    assert out.shape == (shape[0], out_channels, height, height)
    before = (out_channels - shape[1]) // 2
    expected = np.zeros(out.shape)
    expected[:, before:before + shape[1]] = data[:, :, ::stride, ::stride]
    np.testing.assert_array_equal(out.numpy(), expected)
    tr.gradcheck(lambda x: F.zero_pad_shortcut(x, out_channels, stride), [x])


def test_shortcut_matches_a_strided_conv_output_size():
    x = tr.tensor(np.ones((1, 16, 9, 9)))
    w = tr.tensor(np.ones((32, 16, 3, 3)))
    assert F.zero_pad_shortcut(x, 32, 2).shape == F.conv2d(x, w, stride=2, padding=1).shape


def test_shortcut_cannot_drop_channels():
    with pytest.raises(ValueError, match="zero_pad_shortcut: out_channels=2 is fewer"):
        F.zero_pad_shortcut(tr.tensor(np.ones((1, 4, 4, 4))), 2, 1)
