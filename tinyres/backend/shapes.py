"""Output-size formulas and batch chunks shared by every backend, the ops and the model summary.

Kept in one place because a student should find the formula once, with its
derivation, not three slightly different copies.
"""


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Length of one spatial axis after a convolution or a pooling window.

    A kernel of ``R`` taps with dilation ``d`` spans ``d*(R-1) + 1`` input pixels.
    Sliding it with step ``s`` over ``size + 2*p`` padded pixels fits

        Ho = (H + 2*p - d*(R-1) - 1) // s + 1

    positions (PyTorch's formula with ``ceil_mode=False``).
    """
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_output_hw(height, width, kernel_size, stride, padding, dilation=(1, 1)):
    """(Ho, Wo) of a convolution or pooling window: :func:`conv_output_size` on each axis.

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are (height, width) pairs.
    """
    return (conv_output_size(height, kernel_size[0], stride[0], padding[0], dilation[0]),
            conv_output_size(width, kernel_size[1], stride[1], padding[1], dilation[1]))


def chunk_bounds(batch, chunk):
    """The chunks ``[start, stop)`` that cover ``range(batch)`` in order, ``chunk`` samples each.

    The last chunk holds what is left: ``chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]``.
    """
    if chunk < 1:
        raise ValueError(f"chunk_bounds: chunk must be >= 1, got {chunk}")
    return [(start, min(start + chunk, batch)) for start in range(0, batch, chunk)]
