r"""Winograd's F(2x2, 3x3) convolution in NumPy: the readable twin of ``cpu_winograd``.

Read it beside Lavin & Gray (2016), "Fast Algorithms for Convolutional Neural Networks".
Letters as in ``numpy_kernels``: N batch, C input channels, K output channels, H x W
input, Ho x Wo output, ph/pw paddings.  Only 3x3 kernels at stride 1 and dilation 1.

**One dimension, F(2, 3).**  Two outputs of a 3-tap correlation, y_i = sum_r d_{i+r} g_r,
need 6 multiplications done directly.  Winograd computes them from a tile of 4 inputs with 4:

    m1 = (d0 - d2) g0                 m2 = (d1 + d2) (g0 + g1 + g2) / 2
    m4 = (d1 - d3) g2                 m3 = (d2 - d1) (g0 - g1 + g2) / 2
    y0 = m1 + m2 + m3                 y1 = m2 - m3 - m4

In matrices, y = A^T [(G g) * (B^T d)] with an elementwise product `*`:

    B_T = [[1,  0, -1,  0],      G = [[1,    0,   0  ],      A_T = [[1, 1,  1,  0],
           [0,  1,  1,  0],           [1/2,  1/2, 1/2],             [0, 1, -1, -1]]
           [0, -1,  1,  0],           [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]           [0,    0,   1  ]]

**Two dimensions, F(2x2, 3x3),** nests the 1-D algorithm along rows and columns.  A 4x4
input tile d and a 3x3 kernel g give a 2x2 output tile with 16 multiplications, not 36:

    Y = A^T [ (G g G^T) * (B^T d B) ] A

**Tiles.**  Output tile (i, j) covers output rows 2i, 2i+1 and columns 2j, 2j+1; it reads
the 4x4 input tile at rows 2i..2i+3, columns 2j..2j+3 of the padded input, so neighbouring
input tiles overlap by 2.  When Ho or Wo is odd the last tile row or column hangs over the
edge: the input is padded with extra zeros there and the overhanging outputs are cropped.

**Channels.**  With U = G g G^T per (k, c) and V = B^T d B per (c, tile), each of the 16
positions (xi, nu) of the 4x4 tile sums over input channels on its own:

    M[xi, nu][k, tile] = sum_c U[xi, nu][k, c] V[xi, nu][c, tile]

one (K, C) @ (C, tiles) matrix product per position -- where all the arithmetic is.

**Backward, input.**  dx is the "full" correlation of the upstream gradient with the
kernel rotated by 180 degrees, its in and out channels swapped: the same algorithm on
grad_output padded by 2 - p, which is why 0 <= p <= 2.

**Backward, weight.**  Every step of the forward is linear, so its transpose runs the
steps backwards: the output transform's transpose A dY A^T (dY's 2x2 tiles, zero where
they overhang), the 16 products transposed, then the filter transform's transpose:

    dU[xi, nu][k, c] = sum_tiles (A dY A^T)[xi, nu][k, tile] V[xi, nu][c, tile]
    dweight = G^T dU G
"""
import numpy as np

from .guard import backward_kernel                 # *_backward refuse inside an answer

B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], dtype=np.float64)

MAX_PADDING = 2      # dx pads grad_output by 2 - p


def supports(kernel_size, stride, padding, dilation):
    """True for the convolutions this module computes: 3x3, stride 1, dilation 1, padding 0..2.

    Every argument is a (height, width) pair.
    """
    return (tuple(kernel_size) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1)
            and all(0 <= p <= MAX_PADDING for p in padding))


def tile_grid(height, width, padding):
    """(Ho, Wo, tiles_h, tiles_w): the output size and how many 2x2 output tiles cover it.

    Ho = H + 2*ph - 2,  tiles_h = ceil(Ho / 2);  the same for the width.
    """
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    return out_h, out_w, (out_h + 1) // 2, (out_w + 1) // 2


def check_arguments(op, x_shape, padding, weight_shape=None, grad_shape=None):
    """Raise ValueError, naming ``op``, unless the shapes and padding fit a 3x3 Winograd conv.

    x_shape: (N, C, H, W); weight_shape: (K, C, 3, 3); grad_shape: the forward output's
    (N, K, Ho, Wo) -- each checked when given.
    """
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {tuple(x_shape)}")
    if len(padding) != 2 or not all(0 <= p <= MAX_PADDING for p in padding):
        raise ValueError(f"{op}: padding must be a pair of integers in 0..{MAX_PADDING}, "
                         f"got {tuple(padding)}")
    out_h, out_w, _, _ = tile_grid(x_shape[2], x_shape[3], padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{op}: a 3x3 kernel does not fit x of shape {tuple(x_shape)} with "
                         f"padding {tuple(padding)} (output {out_h}x{out_w})")
    if weight_shape is not None and (len(weight_shape) != 4 or weight_shape[1] != x_shape[1]
                                     or tuple(weight_shape[2:]) != (3, 3)):
        raise ValueError(f"{op}: weight must be (K, {x_shape[1]}, 3, 3) for x of shape "
                         f"{tuple(x_shape)}, got {tuple(weight_shape)}")
    if grad_shape is not None:
        out_channels = weight_shape[0] if weight_shape is not None else \
            (grad_shape[1] if len(grad_shape) == 4 else "K")
        expected = (x_shape[0], out_channels, out_h, out_w)
        if tuple(grad_shape) != expected:
            raise ValueError(f"{op}: grad_output must have the forward output's shape "
                             f"{expected}, got {tuple(grad_shape)}")


def _constant(matrix, dtype):
    """A transform matrix in the computation's dtype (its entries are exact in float32)."""
    return matrix.astype(dtype)


def transform_filter(weight):
    """U = G g G^T for every kernel g = weight[k, c]: 3x3 -> 4x4.

    weight: (K, C, 3, 3) -> U: (4, 4, K, C), U[xi, nu] is position (xi, nu)'s (K, C) matrix

    Written as two products over all K*C kernels at once, U[xi, nu] = sum_r G[xi, r]
    (g G^T)[r, nu]: the same sums as ``G @ weight @ G.T``, whose K*C separate 3x3 products
    cost several times more on a 64-channel layer (measured: docs/results/measurements.md).
    """
    g = _constant(G, weight.dtype)
    out_channels, in_channels = weight.shape[:2]
    right = (weight.reshape(-1, 3) @ g.T).reshape(-1, 3, 4)    # g G^T: (K*C, 3, 4)
    u = np.tensordot(g, right, axes=(1, 1))                    # G (g G^T): (4, K*C, 4)
    return u.transpose(0, 2, 1).reshape(4, 4, out_channels, in_channels)


def transform_input(x, padding):
    """V = B^T d B for every 4x4 input tile d (overlapping by 2) of the zero-padded input.

    x: (N, C, H, W) -> V: (4, 4, C, N*tiles_h*tiles_w), tiles numbered (n, i, j)
    """
    batch, channels, height, width = x.shape
    _, _, tiles_h, tiles_w = tile_grid(height, width, padding)
    (ph, pw), b_t = padding, _constant(B_T, x.dtype)
    # pad to exactly 2*tiles + 2 rows and columns: the usual padding, and at the bottom
    # and right one more zero row or column where the output size is odd
    padded = np.pad(x, ((0, 0), (0, 0), (ph, 2 * tiles_h + 2 - height - ph),
                        (pw, 2 * tiles_w + 2 - width - pw)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (4, 4), axis=(2, 3))
    tiles = windows[:, :, ::2, ::2]                       # (N, C, tiles_h, tiles_w, 4, 4)
    v = b_t @ tiles @ b_t.T
    return v.transpose(4, 5, 1, 0, 2, 3).reshape(4, 4, channels, batch * tiles_h * tiles_w)


def multiply(u, v):
    """The 16 per-position channel sums: M[xi, nu] = U[xi, nu] @ V[xi, nu].

    U: (4, 4, K, C), V: (4, 4, C, P) -> M: (4, 4, K, P)
    """
    return u @ v


def transform_output(m, batch, out_hw):
    """Y = A^T m A for every tile: 4x4 -> 2x2, placed on the output grid and cropped.

    M: (4, 4, K, N*tiles_h*tiles_w) -> y: (N, K, Ho, Wo)
    """
    out_h, out_w = out_hw
    tiles_h, tiles_w = (out_h + 1) // 2, (out_w + 1) // 2
    a_t, out_channels = _constant(A_T, m.dtype), m.shape[2]
    m = m.reshape(4, 4, out_channels, batch, tiles_h, tiles_w).transpose(3, 2, 4, 5, 0, 1)
    y = a_t @ m @ a_t.T                                   # (N, K, tiles_h, tiles_w, 2, 2)
    y = y.transpose(0, 1, 2, 4, 3, 5).reshape(batch, out_channels, 2 * tiles_h, 2 * tiles_w)
    return np.ascontiguousarray(y[:, :, :out_h, :out_w])


def transform_grad_output(grad_output):
    """A dY A^T for every 2x2 tile of grad_output (zero where a tile hangs over the edge).

    The transpose of :func:`transform_output`.
    grad_output: (N, K, Ho, Wo) -> dM: (4, 4, K, N*tiles_h*tiles_w)
    """
    batch, out_channels, out_h, out_w = grad_output.shape
    tiles_h, tiles_w = (out_h + 1) // 2, (out_w + 1) // 2
    a_t = _constant(A_T, grad_output.dtype)
    padded = np.pad(grad_output, ((0, 0), (0, 0), (0, 2 * tiles_h - out_h),
                                  (0, 2 * tiles_w - out_w)))
    tiles = padded.reshape(batch, out_channels, tiles_h, 2, tiles_w, 2).transpose(0, 1, 2, 4, 3, 5)
    grad_m = a_t.T @ tiles @ a_t                          # (N, K, tiles_h, tiles_w, 4, 4)
    return grad_m.transpose(4, 5, 1, 0, 2, 3).reshape(4, 4, out_channels,
                                                      batch * tiles_h * tiles_w)


def transform_filter_gradient(grad_u):
    """dweight = G^T dU G for every (k, c): 4x4 -> 3x3.  The transpose of :func:`transform_filter`.

    dU: (4, 4, K, C) -> dweight: (K, C, 3, 3)

    dweight[k, c, r, s] = sum_{xi, nu} G[xi, r] dU[xi, nu, k, c] G[nu, s], as two products
    over all K*C kernels at once (see :func:`transform_filter`).
    """
    g = _constant(G, grad_u.dtype)
    left = np.tensordot(g, grad_u, axes=(0, 0))                # G^T dU: (3, 4, K, C)
    both = np.tensordot(left, g, axes=(1, 0))                  # G^T dU G: (3, K, C, 3)
    return both.transpose(1, 2, 0, 3)


def conv3x3_forward(x, weight, padding):
    """A 3x3 convolution (cross-correlation, as PyTorch) at stride 1 by Winograd F(2x2, 3x3).

    y[n, k] = sum_c x_padded[n, c] (*) weight[k, c]
            = A^T [ (G g G^T) * (B^T d B) ] A   tile by tile, summed over c per position

    x: (N, C, H, W), weight: (K, C, 3, 3) -> y: (N, K, H + 2*ph - 2, W + 2*pw - 2)
    """
    check_arguments("conv3x3_forward", x.shape, padding, weight_shape=weight.shape)
    dtype = np.result_type(x, weight)
    x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
    out_h, out_w, _, _ = tile_grid(x.shape[2], x.shape[3], padding)
    m = multiply(transform_filter(weight), transform_input(x, padding))
    return transform_output(m, x.shape[0], (out_h, out_w))


def input_gradient_as_forward(weight, padding):
    """The forward convolution that computes dx: the kernel turned by 180 degrees with K and C
    swapped, and the padding 2 - p of a full correlation.

    weight: (K, C, 3, 3) -> (turned: (C, K, 3, 3), (2 - ph, 2 - pw))
    """
    turned = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return turned, (MAX_PADDING - int(padding[0]), MAX_PADDING - int(padding[1]))


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
    dtype = np.result_type(grad_output, x)
    grad_output, x = grad_output.astype(dtype, copy=False), x.astype(dtype, copy=False)
    grad_u = transform_grad_output(grad_output) @ transform_input(x, padding).transpose(0, 1, 3, 2)
    return transform_filter_gradient(grad_u)

