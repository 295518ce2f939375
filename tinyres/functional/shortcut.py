"""The parameter-free shortcut of He et al. (2016), option A.

When a residual stage halves the resolution and widens the channels, the identity
shortcut no longer matches the block's output.  Option A keeps it parameter-free:
take every ``stride``-th pixel and append zero channels.

    y[n, c, h, w] = x[n, c - p, h*stride, w*stride] for p <= c < p + C, else 0
"""
from .checks import check_tensor


def zero_pad_shortcut(input, out_channels, stride):
    """Option-A shortcut: strided subsample, then zero channels split evenly before and after.

    input: (N, C, H, W) -> (N, out_channels, ceil(H/stride), ceil(W/stride))
    """
    op = "zero_pad_shortcut"
    check_tensor(op, "input", input, ndim=4)
    extra = out_channels - input.shape[1]
    if extra < 0:
        raise ValueError(f"{op}: out_channels={out_channels} is fewer than the input's "
                         f"{input.shape[1]} channels (shape {input.shape}); option A only adds channels")
    if stride < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride}")
    if stride > 1:
        input = input[:, :, ::stride, ::stride]
    if extra == 0:
        return input
    before = extra // 2
    return input.pad(((0, 0), (before, extra - before), (0, 0), (0, 0)))
