"""Winograd's F(2x2, 3x3) convolution compiled with Numba: ``winograd``'s functions, fast.

The maths, the matrices and the names are those of the NumPy twin (``winograd.py``); read
that first.  What this module adds is how the work meets the machine:

* **Chunks of the batch.**  The transformed tiles of a few images (``CHUNK_BYTES``) stay
  in one core's L2 cache from the transform that writes them, through the 16 matrix
  products, to the transform that reads them.  ``cpu_threads.map_chunks`` spreads the
  chunks over the cores; dweight adds the chunks' partial sums in chunk order, so it
  rounds the same way however many threads ran.  The chunk size never depends on the
  thread count.
* **BLAS does the products.**  The 16 per-position channel sums are one ``np.matmul`` over
  a stack of 16 matrices: faster than 16 separate products, or than the transposed
  (tiles x C) @ (C x K) layout, and several times faster than a compiled loop.
* **The transforms are compiled loops** (``nogil``, so the worker threads run them at the
  same time), and they are where most of the time goes.  Each runs down the columns
  first, a whole image row at a time (unit stride), into scratch rows that stay in the
  L1 cache; then along the rows, the only stride-2 step, as one flat loop over a group
  of planes (``GROUP_TILES``), writing the 16 positions.  The comment above the
  transforms lists what the loops must look like for LLVM to vectorize them.
* **Position buffers apart by a non-power of two.**  The 16 positions' matrices lie one
  after another; a power-of-two distance apart they would all map to the same few sets
  of the L1 cache and evict each other while a transform writes them, so each is padded.

Layout of a position buffer: ``buffer[xi*4 + nu, row*columns + column]`` where row is a
channel and column a tile ``(n - first, i, j)`` of the chunk.
"""
import numpy as np

from .cpu_gemm import stacked_matmul
from .cpu_threads import import_numba, map_chunks
from .guard import backward_kernel                 # *_backward refuse inside an answer
from .winograd import (check_arguments, input_gradient_as_forward, supports,   # noqa: F401
                       tile_grid, transform_filter, transform_filter_gradient)

numba = import_numba()

# Transformed tiles per chunk, in bytes (input and output buffers together): what fits one
# core's L2 cache with room for the image rows the transforms read and write.
CHUNK_BYTES = 1_500_000
GROUP_TILES = 256        # the flat transform loops run over at least this many tiles
MAX_CHUNK = 8            # more images per chunk gain nothing: the products are already wide
ALIGN = 16               # position rows are a multiple of 16 numbers long (64 float32 bytes) ...
ALIGN_PAD = 16           # ... plus 16 more, so that they are not a power of two apart


# --------------------------------------------------------------------------- transforms
# How the loops are written, learned from the machine code LLVM makes of them and from
# timing it:
#
# * flat arrays and offsets only: an array view made inside a loop (``rows[parity]``)
#   costs two atomic reference-count updates, which took longer than the arithmetic;
# * the helpers below are plain compiled functions that LLVM inlines, not
#   ``inline="always"``: Numba's own inlining copies each array argument into a new
#   variable, with the same reference-count updates at every call (once per tile row);
# * every loop writes one or two arrays and reads at most four: LLVM vectorizes a loop
#   only after checking at run time that its arrays do not overlap, and it gives up when
#   that would take more than 8 comparisons;
# * stride-2 loads come in complete pairs (x[2t] together with x[2t + 1]): LLVM loads
#   those as whole vectors and unzips them, but turns a lone x[2t] into a slow gather;
# * the scratch rows of a group of planes fit the L1 cache; only the transformed tiles
#   go out to L2, where stores cost several times more;
# * offsets are np.uint64: Numba guards signed indices against negative wraparound, and
#   it types an integer literal as int64, so ``2 * j`` with an unsigned j is signed again
#   -- the loops name their unsigned 1, 2, 3.

@numba.njit(cache=True)
def _pixel(x_flat, image, row, column, height, width):
    """Pixel (row, column) of the plane starting at x_flat[image], or 0 in the padding."""
    if row < 0 or row >= height or column < 0 or column >= width:
        return x_flat.dtype.type(0)
    return x_flat[np.uint64(image + row * width + column)]


@numba.njit(cache=True)
def _combine_rows(source, s0, s1, s2, s3, t, o0, o1, o2, o3, count):
    """t[o_xi + w] = (B^T d)[xi] for the 4 rows d_r = source[s_r + w], w < count (all unsigned)."""
    for w in range(count):                       # d0 - d2 and d1 - d3
        t[o0 + w] = source[s0 + w] - source[s2 + w]
        t[o3 + w] = source[s1 + w] - source[s3 + w]
    for w in range(count):                       # d1 + d2 and d2 - d1
        t[o1 + w] = source[s1 + w] + source[s2 + w]
        t[o2 + w] = source[s2 + w] - source[s1 + w]


@numba.njit(cache=True)
def _column_value(x_flat, image, first_row, column, height, width, xi):
    """(B^T d)[xi] of the 4 pixels at one column in rows first_row..first_row+3 (padding is 0)."""
    d0 = _pixel(x_flat, image, first_row, column, height, width)
    d1 = _pixel(x_flat, image, first_row + 1, column, height, width)
    d2 = _pixel(x_flat, image, first_row + 2, column, height, width)
    d3 = _pixel(x_flat, image, first_row + 3, column, height, width)
    if xi == 0:
        return d0 - d2
    if xi == 1:
        return d1 + d2
    if xi == 2:
        return d2 - d1
    return d1 - d3


@numba.njit(nogil=True, cache=True, fastmath=False)
def _transform_input_njit(x, first, last, pad_h, pad_w, tiles_h, tiles_w, v):
    """v[xi*4 + nu, (c, n - first, i, j)] = (B^T d B)[xi, nu], d the tile (i, j) of x_padded[n, c].

    Down the columns first (B^T d: four input rows, unit stride, a whole row at a time),
    then along the rows (... B: the only stride-2 step, one flat loop over a group of
    planes).
    """
    _, channels, height, width = x.shape
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    images, tiles = last - first, tiles_h * tiles_w
    stride = np.uint64(v.shape[1])
    x_flat, v_flat = x.reshape(-1), v.reshape(-1)
    # column pass of a group of planes, numbered as v's columns (c, n): per tile row i of
    # group plane g, t[xi*block + 1 + (g*tiles_h + i)*row_w + w] = (B^T d)[xi] at padded
    # column w + 1, so a row holds padded columns 1 .. 2*tiles_w; one guard number before
    # each xi block and three after
    row_w = 2 * tiles_w
    group = max(1, min(images * channels, GROUP_TILES // tiles))
    block = group * tiles_h * row_w + 4
    t = np.zeros(4 * block, dtype=x.dtype)
    edge = np.zeros(4 * row_w, dtype=x.dtype)     # the 4 rows of a tile row that reads padding
    first_col = 1 - pad_w                         # the x column at t's column 0
    w_low = max(0, -first_col)                    # t's columns [w_low, w_high) lie inside x;
    w_high = max(w_low, min(row_w, width - first_col))   # the others stay zero
    count = np.uint64(w_high - w_low)
    left_column, right_column = -pad_w, row_w + 1 - pad_w   # the padded columns 0 and 2*tiles_w + 1
    for group_start in range(0, images * channels, group):
        group_stop = min(images * channels, group_start + group)
        for plane in range(group_start, group_stop):
            c, n = plane // images, first + plane % images
            image = (n * channels + c) * height * width
            for i in range(tiles_h):
                top = 2 * i - pad_h               # the x row of the tile row's first padded row
                o0 = np.uint64(1 + ((plane - group_start) * tiles_h + i) * row_w + w_low)
                o1 = o0 + np.uint64(block)
                o2 = o1 + np.uint64(block)
                o3 = o2 + np.uint64(block)
                if top >= 0 and top + 3 < height:
                    s0 = np.uint64(image + top * width + first_col + w_low)
                    s1 = s0 + np.uint64(width)
                    s2 = s1 + np.uint64(width)
                    s3 = s2 + np.uint64(width)
                    _combine_rows(x_flat, s0, s1, s2, s3, t, o0, o1, o2, o3, count)
                else:                             # copy the rows, zeros for the padding ones
                    for r in range(4):
                        target_row = np.uint64(r * row_w + w_low)
                        if 0 <= top + r < height:
                            source_row = np.uint64(image + (top + r) * width + first_col + w_low)
                            for w in range(count):
                                edge[target_row + w] = x_flat[source_row + w]
                        else:
                            for w in range(count):
                                edge[target_row + w] = 0
                    e0 = np.uint64(w_low)
                    e1 = e0 + np.uint64(row_w)
                    e2 = e1 + np.uint64(row_w)
                    e3 = e2 + np.uint64(row_w)
                    _combine_rows(edge, e0, e1, e2, e3, t, o0, o1, o2, o3, count)
        # row pass, flat over the group's tiles: tile q reads t's columns 2q - 1 .. 2q + 2
        # of its xi block (a plane's tiles_h rows of 2*tiles_w columns hold 2*tiles numbers)
        target = np.uint64(group_start * tiles)
        group_tiles = np.uint64((group_stop - group_start) * tiles)
        for xi in range(4):
            base = np.uint64(xi * block)
            out0 = np.uint64(4 * xi) * stride + target
            out1 = out0 + stride
            out2 = out1 + stride
            out3 = out2 + stride
            for q in range(group_tiles):          # d0 - d2 and d1 - d3
                v_flat[out0 + q] = t[base + two * q] - t[base + two * q + two]
                v_flat[out3 + q] = t[base + two * q + one] - t[base + two * q + three]
            for q in range(group_tiles):          # d1 + d2 and d2 - d1
                v_flat[out1 + q] = t[base + two * q + one] + t[base + two * q + two]
                v_flat[out2 + q] = t[base + two * q + two] - t[base + two * q + one]
        # the first and last tile of each tile row read one column past t's row: redo them
        for plane in range(group_start, group_stop):
            c, n = plane // images, first + plane % images
            image = (n * channels + c) * height * width
            for i in range(tiles_h):
                row_number = (plane - group_start) * tiles_h + i
                first_tile = np.uint64(row_number * tiles_w)
                last_tile = first_tile + np.uint64(tiles_w - 1)
                for xi in range(4):
                    row = np.uint64(xi * block + 1 + row_number * row_w)
                    left, right = x.dtype.type(0), x.dtype.type(0)   # padding, unless inside x
                    top = 2 * i - pad_h
                    if left_column >= 0:
                        left = _column_value(x_flat, image, top, left_column, height, width, xi)
                    if right_column < width:
                        right = _column_value(x_flat, image, top, right_column, height, width, xi)
                    out0 = np.uint64(4 * xi) * stride + target          # position (xi, 0)
                    out3 = out0 + np.uint64(3) * stride                 # position (xi, 3)
                    v_flat[out0 + first_tile] = left - t[row + one]                 # d0 - d2
                    v_flat[out3 + last_tile] = t[row + np.uint64(row_w - 2)] - right   # d1 - d3


@numba.njit(nogil=True, cache=True, fastmath=False)
def _transform_output_njit(m, first, last, tiles_h, tiles_w, y):
    """y[n, k, 2i + a, 2j + b] = (A^T m A)[a, b], m the 4x4 tile (k, n - first, i, j); cropped.

    Down the columns first (A^T m: one flat loop over a group of planes), then along the
    rows (... A: pairs of outputs, a row at a time).
    """
    _, out_channels, out_h, out_w = y.shape
    one, two = np.uint64(1), np.uint64(2)
    images, tiles = last - first, tiles_h * tiles_w
    stride, xi_step = np.uint64(m.shape[1]), np.uint64(4 * m.shape[1])
    m_flat, y_flat = m.reshape(-1), y.reshape(-1)
    # column pass of a group of planes, numbered as m's columns (k, n):
    # sums[(a*4 + nu)*part + q] = (A^T m)[a, nu] of the group's tile q
    group = max(1, min(images * out_channels, GROUP_TILES // tiles))
    part = np.uint64(group * tiles)
    sums = np.empty(8 * group * tiles, dtype=y.dtype)
    full_w = np.uint64(out_w // 2)          # tile columns whose two outputs both exist
    for group_start in range(0, images * out_channels, group):
        group_stop = min(images * out_channels, group_start + group)
        source = np.uint64(group_start * tiles)
        group_tiles = np.uint64((group_stop - group_start) * tiles)
        for nu in range(4):
            in0 = np.uint64(nu) * stride + source
            in1 = in0 + xi_step
            in2 = in1 + xi_step
            in3 = in2 + xi_step
            top, bottom = np.uint64(nu) * part, np.uint64(4 + nu) * part
            for q in range(group_tiles):
                sums[top + q] = m_flat[in0 + q] + m_flat[in1 + q] + m_flat[in2 + q]
            for q in range(group_tiles):
                sums[bottom + q] = m_flat[in1 + q] - m_flat[in2 + q] - m_flat[in3 + q]
        # row pass: output row 2i + a of each plane from sums[a, :, its tile row i]
        for plane in range(group_start, group_stop):
            k, n = plane // images, first + plane % images
            image = (n * out_channels + k) * out_h * out_w
            for h in range(out_h):
                line = np.uint64(image + h * out_w)
                s0 = np.uint64(h % 2) * np.uint64(4) * part \
                    + np.uint64((plane - group_start) * tiles + h // 2 * tiles_w)
                s1 = s0 + part
                s2 = s1 + part
                s3 = s2 + part
                for j in range(full_w):
                    y_flat[line + two * j] = sums[s0 + j] + sums[s1 + j] + sums[s2 + j]
                    y_flat[line + two * j + one] = sums[s1 + j] - sums[s2 + j] - sums[s3 + j]
                if out_w % 2:                   # the last tile column keeps its left output only
                    j = full_w
                    y_flat[line + two * j] = sums[s0 + j] + sums[s1 + j] + sums[s2 + j]


@numba.njit(nogil=True, cache=True, fastmath=False)
def _transform_grad_output_njit(grad_output, first, last, tiles_h, tiles_w, grad_m):
    """grad_m[xi*4 + nu, (k, n - first, i, j)] = (A dY A^T)[xi, nu], dY tile (i, j) of dY[n, k].

    Down the columns first (A dY: output rows 2i and 2i + 1), then along the rows
    (... A^T: pairs of columns, one flat loop over a group of planes).  The tiles do not
    overlap, so every read stays inside its own tile.
    """
    _, out_channels, out_h, out_w = grad_output.shape
    one, two = np.uint64(1), np.uint64(2)
    images, tiles = last - first, tiles_h * tiles_w
    stride = np.uint64(grad_m.shape[1])
    g_flat, m_flat = grad_output.reshape(-1), grad_m.reshape(-1)
    # column pass of a group of planes, numbered as grad_m's columns (k, n):
    # u[xi*part + (g*tiles_h + i)*row_w + w] = (A dY)[xi] at column w of tile row i of
    # group plane g; an odd width leaves the last column zero, an odd height the last row
    row_w = 2 * tiles_w
    group = max(1, min(images * out_channels, GROUP_TILES // tiles))
    part = np.uint64(group * tiles_h * row_w)
    u = np.zeros(4 * group * tiles_h * row_w, dtype=grad_output.dtype)
    width = np.uint64(out_w)
    for group_start in range(0, images * out_channels, group):
        group_stop = min(images * out_channels, group_start + group)
        for plane in range(group_start, group_stop):
            k, n = plane // images, first + plane % images
            image = (n * out_channels + k) * out_h * out_w
            for i in range(tiles_h):
                upper = np.uint64(image + 2 * i * out_w)
                lower = upper + width
                o0 = np.uint64(((plane - group_start) * tiles_h + i) * row_w)
                o1 = o0 + part
                o2 = o1 + part
                o3 = o2 + part
                if 2 * i + 1 < out_h:
                    for w in range(width):
                        u[o0 + w] = g_flat[upper + w]
                        u[o3 + w] = -g_flat[lower + w]
                    for w in range(width):
                        u[o1 + w] = g_flat[upper + w] + g_flat[lower + w]
                        u[o2 + w] = g_flat[upper + w] - g_flat[lower + w]
                else:                           # an odd height: the second row is zero
                    for w in range(width):
                        u[o0 + w], u[o1 + w] = g_flat[upper + w], g_flat[upper + w]
                        u[o2 + w], u[o3 + w] = g_flat[upper + w], 0
        # row pass, flat over the group's tiles: tile q holds columns 2q and 2q + 1
        target = np.uint64(group_start * tiles)
        group_tiles = np.uint64((group_stop - group_start) * tiles)
        for xi in range(4):
            base = np.uint64(xi) * part
            out0 = np.uint64(4 * xi) * stride + target
            out1 = out0 + stride
            out2 = out1 + stride
            out3 = out2 + stride
            for q in range(group_tiles):
                m_flat[out0 + q] = u[base + two * q]
                m_flat[out3 + q] = -u[base + two * q + one]
            for q in range(group_tiles):
                m_flat[out1 + q] = u[base + two * q] + u[base + two * q + one]
                m_flat[out2 + q] = u[base + two * q] - u[base + two * q + one]


# --------------------------------------------------------------------------- chunks
def _position_buffer(size, dtype):
    """An empty (16, stride) buffer for 16 matrices of ``size`` numbers, rows padded apart."""
    stride = -(-size // ALIGN) * ALIGN + ALIGN_PAD
    return np.empty((16, stride), dtype=dtype)


def _matrices(buffer, rows, columns):
    """The (16, rows, columns) stack of matrices at the start of each row of ``buffer`` (a view)."""
    return buffer[:, :rows * columns].reshape(16, rows, columns)


def _chunk(batch, channels, tiles, itemsize):
    """Images per chunk: as many as keep 16 * channels * tiles numbers each within CHUNK_BYTES."""
    per_image = 16 * channels * tiles * itemsize
    return max(1, min(batch, MAX_CHUNK, CHUNK_BYTES // max(1, per_image)))


def _forward(x, u, padding):
    """y = Winograd conv of contiguous x with the transformed filter u: (16, K, C)."""
    batch, channels, height, width = x.shape
    out_channels = u.shape[1]
    out_h, out_w, tiles_h, tiles_w = tile_grid(height, width, padding)
    y = np.empty((batch, out_channels, out_h, out_w), dtype=x.dtype)
    tiles = tiles_h * tiles_w

    def forward_chunk(first, last):
        columns = (last - first) * tiles
        v = _position_buffer(channels * columns, x.dtype)
        _transform_input_njit(x, first, last, padding[0], padding[1], tiles_h, tiles_w, v)
        m = _position_buffer(out_channels * columns, x.dtype)
        stacked_matmul(u, _matrices(v, channels, columns), out=_matrices(m, out_channels, columns))
        _transform_output_njit(m, first, last, tiles_h, tiles_w, y)

    map_chunks(forward_chunk, batch, _chunk(batch, channels + out_channels, tiles, x.itemsize))
    return y


def _prepare(*arrays):
    """The arrays as C-contiguous arrays of their common dtype."""
    dtype = np.result_type(*arrays)
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _ints(pair):
    return int(pair[0]), int(pair[1])


def conv3x3_forward(x, weight, padding):
    """A 3x3 convolution (cross-correlation, as PyTorch) at stride 1 by Winograd F(2x2, 3x3).

    y[n, k] = sum_c x_padded[n, c] (*) weight[k, c]
            = A^T [ (G g G^T) * (B^T d B) ] A   tile by tile, summed over c per position

    x: (N, C, H, W), weight: (K, C, 3, 3) -> y: (N, K, H + 2*ph - 2, W + 2*pw - 2)
    """
    check_arguments("conv3x3_forward", x.shape, padding, weight_shape=weight.shape)
    x, weight = _prepare(x, weight)
    u = np.ascontiguousarray(transform_filter(weight).reshape(16, *weight.shape[:2]))
    return _forward(x, u, _ints(padding))


@backward_kernel
def conv3x3_backward_input(grad_output, weight, padding, x_shape):
    """dx of :func:`conv3x3_forward`: a full correlation with the kernel turned by 180 degrees.

    dx = conv3x3_forward(grad_output, rot180(weight) with K and C swapped, padding 2 - p)

    grad_output: (N, K, Ho, Wo), weight: (K, C, 3, 3) -> dx: x_shape = (N, C, H, W)
    """
    check_arguments("conv3x3_backward_input", x_shape, padding, weight_shape=weight.shape,
                    grad_shape=grad_output.shape)
    return conv3x3_forward(grad_output, *input_gradient_as_forward(weight, padding))


@backward_kernel
def conv3x3_backward_weight(grad_output, x, padding):
    """dweight of :func:`conv3x3_forward`: the forward's steps transposed, in reverse order.

    dU[xi, nu] = (A dY A^T)[xi, nu] @ (B^T d B)[xi, nu]^T   (a sum over all tiles)
    dweight = G^T dU G

    grad_output: (N, K, Ho, Wo), x: (N, C, H, W) -> dweight: (K, C, 3, 3)
    """
    check_arguments("conv3x3_backward_weight", x.shape, padding, grad_shape=grad_output.shape)
    grad_output, x = _prepare(grad_output, x)
    (ph, pw) = _ints(padding)
    batch, channels, height, width = x.shape
    out_channels = grad_output.shape[1]
    _, _, tiles_h, tiles_w = tile_grid(height, width, (ph, pw))
    tiles = tiles_h * tiles_w

    def weight_chunk(first, last):
        columns = (last - first) * tiles
        v = _position_buffer(channels * columns, x.dtype)
        _transform_input_njit(x, first, last, ph, pw, tiles_h, tiles_w, v)
        grad_m = _position_buffer(out_channels * columns, x.dtype)
        _transform_grad_output_njit(grad_output, first, last, tiles_h, tiles_w, grad_m)
        return np.matmul(_matrices(grad_m, out_channels, columns),
                         _matrices(v, channels, columns).transpose(0, 2, 1))   # (16, K, C)

    partial = map_chunks(weight_chunk, batch,
                         _chunk(batch, channels + out_channels, tiles, x.itemsize))
    # float64 sums in chunk order: the same rounding for any thread count; the start
    # value keeps an empty batch's gradient a zero array
    grad_u = sum(partial, np.zeros((16, out_channels, channels)))
    return transform_filter_gradient(grad_u.reshape(4, 4, out_channels, channels)).astype(x.dtype)
