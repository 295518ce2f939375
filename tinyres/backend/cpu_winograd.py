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
  a stack of 16 matrices; a compiled loop ran them 3-40x slower than the BLAS.
* **The transforms are compiled loops** (``nogil``, so the worker threads run them at the
  same time), and they are where most of the time goes.  Each runs in two passes over an
  image plane: along the rows, from stride-2 loads of one padded row into four short
  arrays per row parity; then down the columns, as one flat, unit-stride loop over the
  plane's tiles.  Flat arrays are indexed with unsigned integers: Numba guards every
  signed index against negative wraparound, and that guard turns contiguous loads into
  gathers.
* **Position buffers 64 bytes apart.**  The 16 positions' matrices lie one after another;
  at a power-of-two distance apart they would all map to the same few sets of the L1
  cache and evict each other while a transform writes them, so each is padded.

Layout of a position buffer: ``buffer[xi*4 + nu, row*columns + column]`` where row is a
channel and column a tile ``(n - first, i, j)`` of the chunk.
"""
import numpy as np

from .cpu_threads import import_numba, map_chunks
from .guard import backward_kernel                 # *_backward refuse inside an answer
from .winograd import (MAX_PADDING, check_arguments, supports, tile_grid,   # noqa: F401
                       transform_filter, transform_filter_gradient)

numba = import_numba()

# Transformed tiles per chunk, in bytes (input and output buffers together): what fits one
# core's L2 cache with room for the image rows the transforms read and write.
CHUNK_BYTES = 1_500_000
MAX_CHUNK = 8            # more images per chunk gain nothing: the products are already wide
ALIGN = 16               # position rows start 64 bytes (16 float32s) past a multiple of ...
ALIGN_PAD = 16           # ... 64 bytes, so the 16 rows do not share cache sets


# --------------------------------------------------------------------------- transforms
# How the loops are written, learned from the machine code LLVM makes of them and from
# timing it:
#
# * flat arrays and offsets only: an array view made inside a loop (``rows[parity]``)
#   costs two atomic reference-count updates, which took longer than the arithmetic;
# * every loop writes one or two arrays and reads at most four: LLVM vectorizes a loop
#   only after checking at run time that its arrays do not overlap, and it gives up when
#   that would take more than 8 comparisons;
# * stride-2 loads come in complete pairs (x[2t] together with x[2t + 1]): LLVM loads
#   those as whole vectors and unzips them, but turns a lone x[2t] into a slow gather;
# * the scratch rows of one image plane fit the L1 cache; only the transformed tiles
#   go out to L2, where stores cost 4x more;
# * offsets are np.uint64: Numba guards signed indices against negative wraparound, and
#   it types an integer literal as int64, so ``2 * j`` with an unsigned j is signed again
#   -- the loops name their unsigned 1, 2, 3.

@numba.njit(cache=True, inline="always")
def _pixel(x_flat, row_start, column, width):
    """x_flat[row_start + column], or 0 where the column lies in the padding."""
    if column < 0 or column >= width:
        return x_flat.dtype.type(0)
    return x_flat[np.uint64(row_start + column)]


@numba.njit(nogil=True, cache=True, fastmath=False)
def _transform_input_njit(x, first, last, pad_h, pad_w, tiles_h, tiles_w, v):
    """v[xi*4 + nu, (c, n - first, i, j)] = (B^T d B)[xi, nu], d the tile (i, j) of x_padded[n, c]."""
    _, channels, height, width = x.shape
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    tiles, t_w = tiles_h * tiles_w, np.uint64(tiles_w)
    stride, xi_step = np.uint64(v.shape[1]), np.uint64(4 * v.shape[1])   # (xi, nu) -> (xi + 1, nu)
    x_flat, v_flat = x.reshape(-1), v.reshape(-1)
    # tile columns [inner_low, inner_high) read only columns inside the image
    inner_low = min((pad_w + 1) // 2, tiles_w)
    inner_high = max(inner_low, min(tiles_w, (width + pad_w - 4) // 2 + 1))
    # row pass of one plane: rows[(parity*4 + nu)*part + k*tiles_w + j] = (d B)[., nu] of
    # tile column j on padded row 2k + parity; tiles_h + 1 tile rows, as tile row i reads
    # padded rows 2i..2i+3
    part = np.uint64((tiles_h + 1) * tiles_w)
    rows = np.empty(8 * (tiles_h + 1) * tiles_w, dtype=x.dtype)
    for n in range(first, last):
        for c in range(channels):
            image = (n * channels + c) * height * width
            for padded_row in range(2 * tiles_h + 2):
                h = padded_row - pad_h
                o0 = np.uint64(((padded_row % 2) * 4 * (tiles_h + 1) + padded_row // 2) * tiles_w)
                o1 = o0 + part
                o2 = o1 + part
                o3 = o2 + part
                if h < 0 or h >= height:            # a padding row
                    for j in range(t_w):
                        rows[o0 + j], rows[o1 + j], rows[o2 + j], rows[o3 + j] = 0, 0, 0, 0
                    continue
                start = image + h * width
                for edge in range(inner_low + tiles_w - inner_high):   # tiles that read padding
                    j = edge if edge < inner_low else inner_high + edge - inner_low
                    left = 2 * j - pad_w            # the tile's first column
                    d0, d1 = _pixel(x_flat, start, left, width), _pixel(x_flat, start, left + 1, width)
                    d2, d3 = _pixel(x_flat, start, left + 2, width), _pixel(x_flat, start, left + 3, width)
                    q = np.uint64(j)
                    rows[o0 + q], rows[o1 + q] = d0 - d2, d1 + d2
                    rows[o2 + q], rows[o3 + q] = d2 - d1, d1 - d3
                base = np.uint64(start) - np.uint64(pad_w)    # x_flat[base + 2j + s] = d_s
                for j in range(np.uint64(inner_low), np.uint64(inner_high)):   # d0 - d2, d1 - d3
                    d = base + two * j
                    rows[o0 + j] = x_flat[d] - x_flat[d + two]
                    rows[o3 + j] = x_flat[d + one] - x_flat[d + three]
                for j in range(np.uint64(inner_low), np.uint64(inner_high)):   # d1 + d2, d2 - d1
                    d = base + two * j + one
                    rows[o1 + j] = x_flat[d] + x_flat[d + one]
                    rows[o2 + j] = x_flat[d + one] - x_flat[d]
            # column pass: tile row i reads padded rows 2i..2i+3 = even[i], odd[i],
            # even[i+1], odd[i+1]; over flat tile numbers q = i*tiles_w + j the next
            # tile row is q + tiles_w, so each position is one unit-stride loop
            target = np.uint64((c * (last - first) + n - first) * tiles)
            for nu in range(4):
                even, odd = np.uint64(nu) * part, np.uint64(4 + nu) * part
                out0 = np.uint64(nu) * stride + target
                out1 = out0 + xi_step
                out2 = out1 + xi_step
                out3 = out2 + xi_step
                for q in range(np.uint64(tiles)):   # d0 - d2 and d1 - d3
                    v_flat[out0 + q] = rows[even + q] - rows[even + q + t_w]
                    v_flat[out3 + q] = rows[odd + q] - rows[odd + q + t_w]
                for q in range(np.uint64(tiles)):   # d1 + d2 and d2 - d1
                    v_flat[out1 + q] = rows[odd + q] + rows[even + q + t_w]
                    v_flat[out2 + q] = rows[even + q + t_w] - rows[odd + q]


@numba.njit(nogil=True, cache=True, fastmath=False)
def _transform_output_njit(m, first, last, tiles_h, tiles_w, y):
    """y[n, k, 2i + a, 2j + b] = (A^T m A)[a, b], m the 4x4 tile (k, n - first, i, j); cropped."""
    _, out_channels, out_h, out_w = y.shape
    one, two = np.uint64(1), np.uint64(2)
    tiles, part = tiles_h * tiles_w, np.uint64(tiles_h * tiles_w)
    stride, xi_step = np.uint64(m.shape[1]), np.uint64(4 * m.shape[1])
    m_flat, y_flat = m.reshape(-1), y.reshape(-1)
    # column pass of one plane: sums[(a*4 + nu)*tiles + q] = (A^T m)[a, nu] of tile q
    sums = np.empty(8 * tiles, dtype=y.dtype)
    full_w = np.uint64(out_w // 2)          # tile columns whose two outputs both exist
    for n in range(first, last):
        for k in range(out_channels):
            source = np.uint64((k * (last - first) + n - first) * tiles)
            for nu in range(4):
                in0 = np.uint64(nu) * stride + source
                in1 = in0 + xi_step
                in2 = in1 + xi_step
                in3 = in2 + xi_step
                top, bottom = np.uint64(nu) * part, np.uint64(4 + nu) * part
                for q in range(part):
                    sums[top + q] = m_flat[in0 + q] + m_flat[in1 + q] + m_flat[in2 + q]
                for q in range(part):
                    sums[bottom + q] = m_flat[in1 + q] - m_flat[in2 + q] - m_flat[in3 + q]
            # row pass: output row 2i + a from sums[a, :, tile row i]
            image = (n * out_channels + k) * out_h * out_w
            for h in range(out_h):
                line = np.uint64(image + h * out_w)
                s0 = np.uint64((h % 2) * 4 * tiles + h // 2 * tiles_w)
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
    """grad_m[xi*4 + nu, (k, n - first, i, j)] = (A dY A^T)[xi, nu], dY the 2x2 tile (i, j) of grad_output[n, k]."""
    _, out_channels, out_h, out_w = grad_output.shape
    one, two = np.uint64(1), np.uint64(2)
    tiles, t_w, part = tiles_h * tiles_w, np.uint64(tiles_w), np.uint64(tiles_h * tiles_w)
    stride, xi_step = np.uint64(grad_m.shape[1]), np.uint64(4 * grad_m.shape[1])
    g_flat, m_flat = grad_output.reshape(-1), grad_m.reshape(-1)
    full_w = np.uint64(out_w // 2)          # tile columns whose two inputs both exist
    # row pass of one plane: rows[(a*4 + nu)*tiles + i*tiles_w + j] = (dY A^T)[a, nu] of
    # tile (i, j), from output row 2i + a; an odd height leaves the last one zero
    rows = np.empty(8 * tiles, dtype=grad_output.dtype)
    for n in range(first, last):
        for k in range(out_channels):
            image = (n * out_channels + k) * out_h * out_w
            for h in range(2 * tiles_h):
                o0 = np.uint64((h % 2) * 4 * tiles + h // 2 * tiles_w)
                o1 = o0 + part
                o2 = o1 + part
                o3 = o2 + part
                if h >= out_h:
                    for j in range(t_w):
                        rows[o0 + j], rows[o1 + j], rows[o2 + j], rows[o3 + j] = 0, 0, 0, 0
                    continue
                start = np.uint64(image + h * out_w)
                for j in range(full_w):
                    rows[o0 + j] = g_flat[start + two * j]
                    rows[o1 + j] = g_flat[start + two * j] + g_flat[start + two * j + one]
                for j in range(full_w):
                    rows[o2 + j] = g_flat[start + two * j] - g_flat[start + two * j + one]
                    rows[o3 + j] = -g_flat[start + two * j + one]
                if out_w % 2:                   # the last tile column has no right input
                    j, left = full_w, g_flat[start + two * full_w]
                    rows[o0 + j], rows[o1 + j], rows[o2 + j], rows[o3 + j] = left, left, left, 0
            # column pass: rows 2i and 2i + 1
            target = np.uint64((k * (last - first) + n - first) * tiles)
            for nu in range(4):
                upper, lower = np.uint64(nu) * part, np.uint64(4 + nu) * part
                out0 = np.uint64(nu) * stride + target
                out1 = out0 + xi_step
                out2 = out1 + xi_step
                out3 = out2 + xi_step
                for q in range(part):
                    m_flat[out0 + q] = rows[upper + q]
                    m_flat[out3 + q] = -rows[lower + q]
                for q in range(part):
                    m_flat[out1 + q] = rows[upper + q] + rows[lower + q]
                    m_flat[out2 + q] = rows[upper + q] - rows[lower + q]


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
        np.matmul(u, _matrices(v, channels, columns), out=_matrices(m, out_channels, columns))
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
    grad_output, weight = _prepare(grad_output, weight)
    turned = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)          # (C, K, 3, 3)
    u = np.ascontiguousarray(transform_filter(turned).reshape(16, *turned.shape[:2]))
    return _forward(grad_output, u, (MAX_PADDING - int(padding[0]), MAX_PADDING - int(padding[1])))


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
