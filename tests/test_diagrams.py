"""The diagrams of tinyres/viz/blocks.py and tinyres/viz/pooling.py say what the blocks and
the kernels do.

A diagram is only worth drawing if it matches the code, so these tests read the drawn
text back and compare it with what the blocks and the pooling kernels compute.
"""
import numpy as np
import pytest
from matplotlib.figure import Figure

import tinyres as tr
from tinyres import nn, viz
from tinyres.backend import numpy_kernels
from tinyres.models import BasicBlock, Bottleneck, make_shortcut
from tinyres.models.blocks import PreActBasicBlock
from tinyres.viz import blocks as diagrams
from tinyres.viz import pooling

# 5 x 5, 3 x 3 windows at stride 2: the 9 at (0, 2) lies in both upper windows and wins both
DOUBLE_WINNER = np.array([[1, 3, 9, 2, 0],
                          [4, 2, 5, 1, 3],
                          [0, 6, 2, 7, 1],
                          [2, 1, 3, 0, 8],
                          [5, 0, 1, 4, 2]], dtype=np.float64)


def _texts(figure):
    return [text.get_text() for axes in figure.axes for text in axes.texts + [axes.title]]


def _output_shape(block, input_shape):
    with tr.no_grad():
        block.eval()
        return block(tr.tensor(np.zeros((1, *input_shape), dtype=np.float32))).shape[1:]


@pytest.mark.parametrize("block, input_shape, expected_kind", [
    (BasicBlock(16, 16, shortcut=nn.Identity()), (16, 8, 8), "identity"),
    (BasicBlock(16, 32, stride=2, shortcut=make_shortcut("A", 16, 32, 2)), (16, 9, 9), "zero_pad"),
    (Bottleneck(64, 16, stride=2, shortcut=make_shortcut("B", 64, 64, 2)), (64, 8, 8), "projection"),
    (PreActBasicBlock(8, 16, stride=2, shortcut=make_shortcut("B", 8, 16, 2)), (8, 6, 6), "projection"),
    (BasicBlock(16, 32, stride=2, shortcut=None), (16, 8, 8), "none"),
], ids=["basic", "basic-A-odd-size", "bottleneck-stride-2", "preact", "plain"])
def test_block_steps_end_in_the_shape_the_block_computes(block, input_shape, expected_kind):
    steps = diagrams.block_steps(block, input_shape)
    assert steps[-1][2] == _output_shape(block, input_shape)
    kind, _, shortcut_shape = diagrams.shortcut_step(block, input_shape)
    assert kind == diagrams.shortcut_kind(block) == expected_kind
    if kind not in ("identity", "none"):
        assert shortcut_shape == steps[-1][2]   # the two paths meet at the addition


def test_bottleneck_steps_reduce_then_expand_in_forward_order():
    block = Bottleneck(256, 64, shortcut=nn.Identity())
    labels = [label for label, kind, _ in diagrams.block_steps(block, (256, 56, 56))]
    assert labels == ["1x1 conv, 256 -> 64", "batch norm (64)", "ReLU",
                      "3x3 conv, 64 -> 64", "batch norm (64)", "ReLU",
                      "1x1 conv, 64 -> 256", "batch norm (256)"]


def test_preactivation_puts_norm_and_relu_before_each_conv():
    block = PreActBasicBlock(16, 16, shortcut=nn.Identity())
    kinds = [kind for _, kind, _ in diagrams.block_steps(block, (16, 8, 8))]
    assert kinds == ["norm", "relu", "conv", "norm", "relu", "conv"]


@pytest.mark.parametrize("option, stride, in_planes, expected", [
    ("A", 2, 16, ("zero_pad", "every 2nd pixel,\n+ 16 zero channels")),
    ("B", 2, 16, ("projection", "1x1 conv, stride 2\n16 -> 32, batch norm")),
    ("B", 1, 32, ("identity", "identity")),
    ("C", 1, 32, ("projection", "1x1 conv\n32 -> 32, batch norm")),
])
def test_shortcut_step_names_what_each_option_does(option, stride, in_planes, expected):
    block = BasicBlock(in_planes, 32, stride, shortcut=make_shortcut(option, in_planes, 32, stride))
    assert diagrams.shortcut_step(block, (in_planes, 16, 16))[:2] == expected


def test_block_figures_show_every_layer_and_shortcut():
    figure = viz.draw_residual_blocks()
    texts = _texts(figure)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert "1x1 conv, 64 -> 256" in texts and "3x3 conv, 64 -> 64" in texts
    assert texts.count("identity") == 2
    options = _texts(viz.draw_shortcut_options())
    assert "every 2nd pixel,\n+ 16 zero channels" in options                 # A
    assert options.count("1x1 conv, stride 2\n16 -> 32, batch norm") == 2    # B and C
    assert options.count("1x1 conv\n32 -> 32, batch norm") == 1              # C only


def test_drawing_a_block_leaves_it_as_it_was(tmp_path):
    block = BasicBlock(8, 16, stride=2, shortcut=make_shortcut("B", 8, 16, 2))
    before = {name: value.copy() for name, value in block.state_dict().items()}
    viz.draw_residual_block(block, (8, 8, 8), path=tmp_path / "block.png")
    assert (tmp_path / "block.png").stat().st_size > 0 and block.training
    assert all(np.array_equal(value, before[name]) for name, value in block.state_dict().items())


def test_a_plain_block_is_drawn_without_an_addition():
    plain = _texts(viz.draw_residual_block(BasicBlock(8, 16, stride=2, shortcut=None), (8, 8, 8)))
    residual = _texts(viz.draw_residual_block(
        BasicBlock(8, 16, stride=2, shortcut=make_shortcut("A", 8, 16, 2)), (8, 8, 8)))
    assert "+" not in plain and "+" in residual
    assert "every 2nd pixel,\n+ 8 zero channels" in residual


def test_pool_windows_find_the_double_winner():
    windows = pooling.pool_windows(DOUBLE_WINNER, (3, 3), (2, 2))
    winners = [tuple(int(i) for i in winner) for *_, winner in windows]
    assert winners == [(0, 2), (0, 2), (2, 1), (3, 4)]
    out, _ = numpy_kernels.max_pool2d_forward(DOUBLE_WINNER[None, None], (3, 3), (2, 2), (0, 0))
    assert [DOUBLE_WINNER[w] for w in winners] == list(out.ravel())


def test_pooling_picture_shows_the_summed_gradient():
    figure = viz.draw_max_pool_windows(DOUBLE_WINNER, kernel_size=3, stride=2)
    texts = _texts(figure)
    # grad_output 1, 2, 3, 4: the double winner receives 1 + 2, the others one each
    assert any("pixel (0, 2) won 2: 1 + 2 = 3" in text for text in texts)
    grad_panel = [text.get_text() for text in figure.axes[2].texts]
    assert sorted(float(text) for text in grad_panel if text != "0") == [3.0, 3.0, 4.0]


def test_pooling_picture_rejects_a_batch():
    with pytest.raises(ValueError, match=r"image must be \(H, W\)"):
        viz.draw_max_pool_windows(DOUBLE_WINNER[None, None])


def test_block_steps_follow_string_padding():
    for padding in ("same", "valid"):
        conv = nn.Conv2d(4, 6, kernel_size=4, padding=padding)
        x = np.zeros((1, 4, 9, 9), dtype=np.float32)
        _, shape = diagrams._conv_step(conv, (4, 9, 9))
        assert shape == conv(tr.tensor(x)).shape[1:]
