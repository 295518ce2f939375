"""Property tests of the output-shape formula (against the ops and PyTorch), and batch chunks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyres as tr
import tinyres.functional as F
from tinyres.backend.shapes import chunk_bounds, conv_output_size


@st.composite
def conv_geometry(draw):
    kernel = draw(st.integers(1, 5))
    dilation = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 3))
    stride = draw(st.integers(1, 4))
    span = dilation * (kernel - 1) + 1
    size = draw(st.integers(max(1, span - 2 * padding), span + 12))
    return size, kernel, stride, padding, dilation


@settings(max_examples=60, deadline=None)
@given(conv_geometry())
def test_conv_output_size_matches_the_op_and_torch(geometry):
    size, kernel, stride, padding, dilation = geometry
    expected = conv_output_size(size, kernel, stride, padding, dilation)
    x = np.ones((1, 1, size, size + 1))
    w = np.ones((1, 1, kernel, kernel))
    ours = F.conv2d(tr.tensor(x), tr.tensor(w), stride=stride, padding=padding, dilation=dilation)
    theirs = TF.conv2d(torch.tensor(x), torch.tensor(w), stride=stride, padding=padding, dilation=dilation)
    assert ours.shape == tuple(theirs.shape)
    assert ours.shape[2] == expected >= 1
    assert ours.shape[3] == conv_output_size(size + 1, kernel, stride, padding, dilation)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(4, 11))
def test_pool_output_size_matches_torch(kernel, stride, padding, size):
    padding = min(padding, kernel // 2)
    x = np.zeros((1, 1, size, size))
    ours = F.max_pool2d(tr.tensor(x), kernel, stride, padding)
    theirs = TF.max_pool2d(torch.tensor(x), kernel, stride, padding)
    assert ours.shape == tuple(theirs.shape)
    assert ours.shape[2] == conv_output_size(size, kernel, stride, padding)


def test_chunk_bounds_cover_the_batch_in_order():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(8, 4) == [(0, 4), (4, 8)]
    assert chunk_bounds(3, 8) == [(0, 3)]
    assert chunk_bounds(0, 2) == []


def test_chunk_bounds_refuse_an_empty_chunk():
    with pytest.raises(ValueError, match="chunk_bounds: chunk must be >= 1, got 0"):
        chunk_bounds(4, 0)
