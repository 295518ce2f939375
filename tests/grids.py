"""The shape grids shared by the gradcheck, PyTorch-parity and backend-parity tests.

One grid per op.  Each value of each hyper-parameter appears several times, and
input sizes alternate between odd and even, without the full cartesian product
(which would cost minutes for little extra coverage).
"""
import itertools

from tinyres.backend.shapes import conv_output_size


def _fits(size, kernel, stride, padding, dilation):
    return conv_output_size(size, kernel, stride, padding, dilation) >= 1


def _conv_grid():
    cases = []
    combos = itertools.product((1, 3, 5, 7), (1, 2, 3), (1, 2))
    for number, (kernel, stride, dilation) in enumerate(combos):
        padding = number % 4
        size = 7 + number % 2           # odd and even input sizes
        if not _fits(size, kernel, stride, padding, dilation):
            size = dilation * (kernel - 1) + 1 + (number % 2)
        # (batch, channels, height, width, out_channels, kernel, stride, padding, dilation)
        cases.append((1, 2, size, size + 1, 3, kernel, stride, padding, dilation))
    cases.append((2, 3, 6, 5, 4, (3, 1), (2, 1), (1, 0), (1, 2)))   # non-square everything
    # PyTorch's padding strings: "same" splits d*(k-1) with the odd row / column at the end
    cases.append((2, 2, 5, 6, 3, 3, 1, "same", 1))                  # odd kernel: symmetric
    cases.append((1, 2, 6, 5, 2, (2, 4), 1, "same", 1))             # even kernels: one more after
    cases.append((1, 3, 7, 7, 2, (3, 2), 1, "same", (2, 3)))        # dilated: totals 4 and 3
    cases.append((2, 2, 7, 6, 3, (3, 2), 2, "valid", 1))            # no padding, strided
    return cases


CONV_GRID = _conv_grid()


def _pool_grid():
    cases = []
    for number, (kernel, stride) in enumerate(itertools.product((1, 2, 3, 5), (1, 2, 3))):
        padding = number % (kernel // 2 + 1)   # PyTorch allows at most half the kernel
        size = 6 + number % 2
        cases.append((1, 2, size, size + 1, kernel, stride, padding))
    cases.append((2, 3, 7, 6, (3, 2), (2, 1), (1, 0)))
    return cases


POOL_GRID = _pool_grid()

# (batch, channels, height, width): batch norm needs more than one value per channel
NORM_GRID = [(1, 3, 2, 3), (4, 2, 1, 1), (2, 5, 4, 3), (3, 1, 5, 5)]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)
