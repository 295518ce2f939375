"""The shape grids shared by the gradcheck, PyTorch-parity and backend-parity tests.

Op grids (CONV_GRID, POOL_GRID, NORM_GRID), for the tests of the ops: one grid per op.
Each value of each hyper-parameter appears several times, and input sizes alternate
between odd and even, without the full cartesian product (which would cost minutes for
little extra coverage).

Kernel grids (KERNEL_CONV_GRID, KERNEL_POOL_GRID, KERNEL_NORM_SHAPES, KERNEL_RELU_SHAPES),
for the backend-parity tests that call the kernels directly (test_numba_kernels.py,
test_cupy_kernels.py, test_cupy_on_host.py): a kernel call on a tiny array costs
microseconds, so these walk the full product of the hyper-parameters.  A module that fixes
its images takes the geometries that fit them (conv_geometries_for, pool_geometries_for).
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


# --------------------------------------------------------------------------- kernel grids
def _conv_fits(x_shape, geometry):
    """Whether (kernel_size, stride, padding, dilation) leaves an output of at least 1 x 1."""
    kernel_size, stride, padding, dilation = geometry
    return all(_fits(size, *per_axis) for size, *per_axis
               in zip(x_shape[2:], kernel_size, stride, padding, dilation))


def _kernel_conv_grid():
    """(x_shape, kernel_size, stride, padding, dilation), each a (height, width) pair.

    Every combination of kernel 1/2/3/5/7, stride 1/2/3, padding 0..3 and dilation 1/2, on
    odd x even images (height 7, 8 or 9, grown until the output is non-empty; width one
    more), batch 3 and batch 1 taking turns; then geometries where nothing is square.
    """
    cases = []
    combos = itertools.product((1, 2, 3, 5, 7), (1, 2, 3), (0, 1, 2, 3), (1, 2))
    for number, (kernel, stride, padding, dilation) in enumerate(combos):
        height = 7 + number % 3
        while not _fits(height, kernel, stride, padding, dilation):
            height += 2
        x_shape = (1 if number % 2 else 3, 2, height, height + 1)
        cases.append((x_shape,) + tuple((v, v) for v in (kernel, stride, padding, dilation)))
    # nothing square, so a height index swapped with a width index shows up
    cases += [((2, 3, 6, 5), (3, 1), (2, 1), (1, 0), (1, 2)),
              ((2, 1, 4, 9), (1, 5), (1, 3), (0, 2), (1, 1)),
              ((2, 3, 9, 8), (3, 5), (1, 2), (2, 0), (2, 1)),
              ((2, 3, 9, 8), (1, 3), (3, 1), (0, 3), (1, 2)),
              ((2, 3, 9, 8), (1, 3), (3, 1), (0, 2), (1, 2)),
              ((2, 3, 9, 8), (5, 2), (2, 3), (1, 1), (1, 2)),
              ((1, 2, 6, 7), (2, 3), (3, 2), (0, 1), (2, 1))]
    assert all(_conv_fits(x_shape, geometry) for x_shape, *geometry in cases)
    return cases


def _kernel_pool_grid():
    """(x_shape, kernel_size, stride, padding), each a (height, width) pair.

    Kernel 1/2/3/5/7, stride 1/2/3 and every padding PyTorch allows (at most half the
    kernel; here at most 3), on images no smaller than the kernel (height max(kernel, 6)
    plus 0, 1 or 2, width max(kernel, 6) + 1), batch 3 and batch 1 taking turns; then
    geometries where nothing is square.
    """
    cases = []
    for kernel, stride in itertools.product((1, 2, 3, 5, 7), (1, 2, 3)):
        for padding in range(min(3, kernel // 2) + 1):
            number = len(cases)
            x_shape = (1 if number % 2 else 3, 2, max(kernel, 6) + number % 3, max(kernel, 6) + 1)
            cases.append((x_shape, (kernel, kernel), (stride, stride), (padding, padding)))
    cases += [((2, 3, 7, 6), (3, 2), (2, 1), (1, 0)),
              ((1, 2, 5, 11), (2, 4), (1, 3), (1, 2)),
              ((2, 3, 9, 8), (2, 5), (1, 3), (0, 2)),
              ((2, 3, 9, 8), (5, 3), (3, 2), (2, 1))]
    return cases


KERNEL_CONV_GRID = _kernel_conv_grid()
KERNEL_POOL_GRID = _kernel_pool_grid()

# (batch, channels, height, width): the op grid, then what only the kernels are asked:
# one value per channel (variance 0), one image, a single row or column, and sizes that
# do not divide into blocks
KERNEL_NORM_SHAPES = NORM_GRID + [(1, 1, 1, 1), (1, 2, 1, 1), (3, 5, 7, 1), (1, 4, 3, 3),
                                  (2, 3, 5, 4), (8, 4, 6, 6), (8, 4, 8, 8), (3, 2, 33, 17)]

# any shape: a scalar, vectors, a matrix, images, and one large enough to be split
KERNEL_RELU_SHAPES = [(), (1,), (7,), (4, 5), (2, 3, 4, 5), (3, 2, 33, 17)]


def conv_geometries_for(x_shape):
    """The (kernel_size, stride, padding, dilation) of KERNEL_CONV_GRID that fit an
    ``x_shape`` image (output at least 1 x 1): the grid for a module with fixed images."""
    geometries = [tuple(geometry) for _, *geometry in KERNEL_CONV_GRID]
    return [geometry for geometry in geometries if _conv_fits(x_shape, geometry)]


def pool_geometries_for(x_shape):
    """The (kernel_size, stride, padding) of KERNEL_POOL_GRID that fit an ``x_shape`` image."""
    geometries = [tuple(geometry) for _, *geometry in KERNEL_POOL_GRID]
    return [geometry for geometry in geometries if _conv_fits(x_shape, geometry + ((1, 1),))]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)
