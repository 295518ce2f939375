"""The kernels of ``numpy_kernels`` on an NVIDIA GPU with CuPy: same names, signatures and results.

Each public function is a thin Python wrapper -- it computes the output shape, allocates
the output and launches one CUDA kernel -- so it reads line by line against its NumPy
and Numba twins.  The kernels are ``cupy.ElementwiseKernel``s: CuPy runs the body once
per element of the output, all elements in parallel, with ``i`` the element's flat
(C-order) index.  The body turns ``i`` back into coordinates, e.g. (n, c, ho, wo), and
reads what it needs:

* an input declared ``raw T x`` is indexed by hand, ``x[k]`` with ``k`` a flat C-order
  index into ``x`` -- that is how a thread reaches the pixels of its window;
* an input declared ``T x`` (not raw) is matched element by element with the output,
  broadcast like NumPy -- that is how a (1, C, 1, 1) per-channel value reaches each pixel;
* ``T`` is a type placeholder: CuPy compiles one kernel per dtype (float32, float64) on
  first use and caches it on disk.

Every kernel is a *gather*: one thread computes one output element and writes nothing
else, so there are no atomics and no races, and the result is the same on every run.
The adjoints (col2im, the pooling backwards) gather too: each input pixel finds the
windows that read it and adds their contributions in the reference's (r, s) tap order,
so even the rounding matches NumPy's.  ``--fmad=false`` stops the compiler fusing
``a*b + c`` into one fused multiply-add, so each elementwise formula rounds as NumPy's
does.  Letters as in ``numpy_kernels``:

    N batch, C input channels, H x W input size, R x S kernel size,
    Ho x Wo output size, sh/sw strides, ph/pw paddings, dh/dw dilations.
"""
import cupy

from .guard import backward_kernel                 # *_backward refuse inside an answer
from .shapes import conv_output_hw

xp = cupy
name = "cupy"

_IEEE = ("--fmad=false",)   # round a*b + c twice, as NumPy does, never as one FMA



def _ints(*pairs):
    """Flatten 2-tuples into plain Python ints, the kernels' ``int32`` scalar arguments."""
    return tuple(int(value) for pair in pairs for value in pair)


# The window geometry every kernel receives, in this order (see ``_ints``).
_WINDOW = ("int32 height, int32 width, int32 kernel_h, int32 kernel_w, int32 out_h, int32 out_w, "
           "int32 sh, int32 sw, int32 ph, int32 pw")


# --------------------------------------------------------------------------- im2col
_im2col_kernel = cupy.ElementwiseKernel(
    "raw T x, int32 batch, int32 channels, " + _WINDOW + ", int32 dh, int32 dw",
    "T cols",
    """
    // i indexes cols viewed as (C, R, S, N, Ho, Wo): peel the coordinates off from the right
    ptrdiff_t rest = i;
    const int wo = rest % out_w;     rest /= out_w;
    const int ho = rest % out_h;     rest /= out_h;
    const int n = rest % batch;      rest /= batch;
    const int s = rest % kernel_w;   rest /= kernel_w;
    const int r = rest % kernel_h;   rest /= kernel_h;
    const int c = rest;
    // tap (r, s) of output pixel (ho, wo) reads this input pixel -- or the zero padding
    const int h = ho * sh - ph + r * dh;
    const int w = wo * sw - pw + s * dw;
    const bool inside = 0 <= h && h < height && 0 <= w && w < width;
    cols = inside ? x[((ptrdiff_t)(n * channels + c) * height + h) * width + w] : (T)0;
    """,
    "tinyres_im2col")


def im2col(x, kernel_size, stride, padding, dilation):
    """Unfold every receptive field of ``x`` into a column, so a convolution becomes one GEMM.

    cols[(c, r, s), (n, ho, wo)] = x_padded[n, c, r*dh + ho*sh, s*dw + wo*sw]

    x: (N, C, H, W) -> cols: (C*R*S, N*Ho*Wo)
    """
    batch, channels, height, width = x.shape
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding, dilation)
    cols = cupy.empty((channels * kernel_size[0] * kernel_size[1], batch * out_hw[0] * out_hw[1]),
                      dtype=x.dtype)
    _im2col_kernel(cupy.ascontiguousarray(x), batch, channels, height, width,
                   *_ints(kernel_size, out_hw, stride, padding, dilation), cols)
    return cols


_col2im_kernel = cupy.ElementwiseKernel(
    "raw T cols, int32 batch, int32 channels, " + _WINDOW + ", int32 dh, int32 dw",
    "T dx",
    """
    // i indexes dx (N, C, H, W)
    ptrdiff_t rest = i;
    const int w = rest % width;      rest /= width;
    const int h = rest % height;     rest /= height;
    const int c = rest % channels;   rest /= channels;
    const int n = rest;
    // im2col copied x[n, c, h, w] into column entry (c, r, s, n, ho, wo) wherever
    // ho*sh + r*dh == h + ph and wo*sw + s*dw == w + pw: add those entries up,
    // taps in (r, s) order as the reference adds them
    T total = 0;
    for (int r = 0; r < kernel_h; ++r) {
        const int top = h + ph - r * dh;            // must equal ho * sh
        if (top < 0 || top % sh != 0 || top / sh >= out_h) continue;
        const int ho = top / sh;
        for (int s = 0; s < kernel_w; ++s) {
            const int left = w + pw - s * dw;       // must equal wo * sw
            if (left < 0 || left % sw != 0 || left / sw >= out_w) continue;
            const int wo = left / sw;
            const ptrdiff_t row = (ptrdiff_t)(c * kernel_h + r) * kernel_w + s;
            total += cols[((row * batch + n) * out_h + ho) * out_w + wo];
        }
    }
    dx = total;
    """,
    "tinyres_col2im")


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """Adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from.

    dx_padded[n, c, r*dh + ho*sh, s*dw + wo*sw] += cols[(c, r, s), (n, ho, wo)]

    cols: (C*R*S, N*Ho*Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding, dilation)
    dx = cupy.empty((batch, channels, height, width), dtype=cols.dtype)
    _col2im_kernel(cupy.ascontiguousarray(cols), batch, channels, height, width,
                   *_ints(kernel_size, out_hw, stride, padding, dilation), dx)
    return dx


# --------------------------------------------------------------------------- conv2d
def conv2d_forward(x, weight, stride, padding, dilation):
    """2-D cross-correlation as one im2col kernel and one cuBLAS matrix product (no bias).

    y[n, k, ho, wo] = sum_{c, r, s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

    The whole batch at once: a GPU wants the largest launches.

    x: (N, C, H, W), weight: (K, C, R, S) -> y: (N, K, Ho, Wo)
    """
    batch, _, height, width = x.shape
    out_channels = weight.shape[0]
    out_h, out_w = conv_output_hw(height, width, weight.shape[2:], stride, padding, dilation)
    cols = im2col(x, weight.shape[2:], stride, padding, dilation)      # (C*R*S, N*Ho*Wo)
    y = weight.reshape(out_channels, -1) @ cols                         # (K, N*Ho*Wo)
    return cupy.ascontiguousarray(
        y.reshape(out_channels, batch, out_h, out_w).transpose(1, 0, 2, 3))


@backward_kernel
def conv2d_backward(grad_output, x, weight, stride, padding, dilation,
                    need_input=True, need_weight=True):
    """Gradients of :func:`conv2d_forward` with respect to x and weight (None where not needed).

        dcols = W^T @ dY,   dx = col2im(dcols),   dW = dY @ cols^T

    grad_output: (N, K, Ho, Wo), x: (N, C, H, W), weight: (K, C, R, S)
    -> dx: (N, C, H, W) or None, dweight: (K, C, R, S) or None
    """
    out_channels = weight.shape[0]
    w_matrix = weight.reshape(out_channels, -1)                          # (K, C*R*S)
    grad_matrix = cupy.ascontiguousarray(
        grad_output.transpose(1, 0, 2, 3)).reshape(out_channels, -1)    # (K, N*Ho*Wo)
    grad_x = grad_weight = None
    if need_input:
        grad_x = col2im(w_matrix.T @ grad_matrix, x.shape, weight.shape[2:], stride, padding,
                        dilation)
    if need_weight:
        cols = im2col(x, weight.shape[2:], stride, padding, dilation)   # (C*R*S, N*Ho*Wo)
        grad_weight = (grad_matrix @ cols.T).reshape(weight.shape)
    return grad_x, grad_weight


# --------------------------------------------------------------------------- pooling
# The pooling kernels never need n and c apart: plane = n*C + c picks one (H, W) image.
_max_pool2d_forward_kernel = cupy.ElementwiseKernel(
    "raw T x, " + _WINDOW,
    "T out, int32 argmax",
    """
    // i indexes out (N, C, Ho, Wo)
    const int wo = i % out_w;
    const int ho = i / out_w % out_h;
    // x[n, c] starts at image: plane n*C + c is i / (Ho*Wo)
    const ptrdiff_t image = i / ((ptrdiff_t)out_h * out_w) * height * width;
    // out arrives filled with -inf, the padding value: padded taps are skipped, never win
    T best = out;
    int best_tap = 0;
    for (int r = 0; r < kernel_h; ++r) {
        const int h = ho * sh - ph + r;
        if (h < 0 || h >= height) continue;
        for (int s = 0; s < kernel_w; ++s) {
            const int w = wo * sw - pw + s;
            if (w < 0 || w >= width) continue;
            const T value = x[image + (ptrdiff_t)h * width + w];
            if (value > best) {                     // strict: ties keep the earlier tap
                best = value;
                best_tap = r * kernel_w + s;
            }
        }
    }
    out = best;
    argmax = best_tap;
    """,
    "tinyres_max_pool2d_forward")


def max_pool2d_forward(x, kernel_size, stride, padding):
    """Maximum over each window; padding never wins (it is -inf), as in PyTorch.

    out[n, c, ho, wo] = max_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]
    argmax[n, c, ho, wo] = r*S + s of the first maximum (row-major order)

    x: (N, C, H, W) -> out: (N, C, Ho, Wo), argmax: (N, C, Ho, Wo) int32
    """
    height, width = x.shape[2:]
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding)
    out = cupy.full((*x.shape[:2], *out_hw), -cupy.inf, dtype=x.dtype)
    argmax = cupy.empty(out.shape, dtype=cupy.int32)
    _max_pool2d_forward_kernel(cupy.ascontiguousarray(x), height, width,
                               *_ints(kernel_size, out_hw, stride, padding), out, argmax)
    return out, argmax


_max_pool2d_backward_kernel = cupy.ElementwiseKernel(
    "raw T grad_output, raw int32 argmax, " + _WINDOW,
    "T dx",
    """
    // i indexes dx (N, C, H, W)
    const int w = i % width;
    const int h = i / width % height;
    // grad_output[n, c] starts at first: plane n*C + c is i / (H*W)
    const ptrdiff_t first = i / ((ptrdiff_t)height * width) * out_h * out_w;
    // pixel (h, w) is tap (r, s) of window (ho, wo) when ho*sh + r == h + ph and
    // wo*sw + s == w + pw; it receives that window's gradient only if it won it
    T total = 0;
    for (int r = 0; r < kernel_h; ++r) {
        const int top = h + ph - r;                 // must equal ho * sh
        if (top < 0 || top % sh != 0 || top / sh >= out_h) continue;
        for (int s = 0; s < kernel_w; ++s) {
            const int left = w + pw - s;            // must equal wo * sw
            if (left < 0 || left % sw != 0 || left / sw >= out_w) continue;
            const ptrdiff_t window = first + (ptrdiff_t)(top / sh) * out_w + left / sw;
            if (argmax[window] == r * kernel_w + s) total += grad_output[window];
        }
    }
    dx = total;
    """,
    "tinyres_max_pool2d_backward")


@backward_kernel
def max_pool2d_backward(grad_output, argmax, x_shape, kernel_size, stride, padding):
    """Send each output gradient to the input pixel that won its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_output[n, c, ho, wo]  where r*S + s == argmax[n, c, ho, wo]

    grad_output, argmax: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    dx = cupy.empty((batch, channels, height, width), dtype=grad_output.dtype)
    _max_pool2d_backward_kernel(cupy.ascontiguousarray(grad_output),
                                cupy.ascontiguousarray(argmax, dtype=cupy.int32), height, width,
                                *_ints(kernel_size, grad_output.shape[2:], stride, padding), dx)
    return dx


_avg_pool2d_forward_kernel = cupy.ElementwiseKernel(
    "raw T x, " + _WINDOW,
    "T out",
    """
    // i indexes out (N, C, Ho, Wo)
    const int wo = i % out_w;
    const int ho = i / out_w % out_h;
    // x[n, c] starts at image: plane n*C + c is i / (Ho*Wo)
    const ptrdiff_t image = i / ((ptrdiff_t)out_h * out_w) * height * width;
    T total = 0;
    for (int r = 0; r < kernel_h; ++r) {            // padded taps add zero: skip them
        const int h = ho * sh - ph + r;
        if (h < 0 || h >= height) continue;
        for (int s = 0; s < kernel_w; ++s) {
            const int w = wo * sw - pw + s;
            if (w < 0 || w >= width) continue;
            total += x[image + (ptrdiff_t)h * width + w];
        }
    }
    out = total / (T)(kernel_h * kernel_w);         // padding counts in the divisor
    """,
    "tinyres_avg_pool2d_forward")


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Mean over each window, zero padding counted in the divisor (PyTorch's default).

    out[n, c, ho, wo] = 1/(R*S) * sum_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]

    x: (N, C, H, W) -> out: (N, C, Ho, Wo)
    """
    height, width = x.shape[2:]
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding)
    out = cupy.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
    _avg_pool2d_forward_kernel(cupy.ascontiguousarray(x), height, width,
                               *_ints(kernel_size, out_hw, stride, padding), out)
    return out


_avg_pool2d_backward_kernel = cupy.ElementwiseKernel(
    "raw T grad_output, " + _WINDOW,
    "T dx",
    """
    // i indexes dx (N, C, H, W)
    const int w = i % width;
    const int h = i / width % height;
    // grad_output[n, c] starts at first: plane n*C + c is i / (H*W)
    const ptrdiff_t first = i / ((ptrdiff_t)height * width) * out_h * out_w;
    const T window_size = (T)(kernel_h * kernel_w);
    // every window that covers (h, w) gives it an equal share, taps in (r, s) order
    T total = 0;
    for (int r = 0; r < kernel_h; ++r) {
        const int top = h + ph - r;                 // must equal ho * sh
        if (top < 0 || top % sh != 0 || top / sh >= out_h) continue;
        for (int s = 0; s < kernel_w; ++s) {
            const int left = w + pw - s;            // must equal wo * sw
            if (left < 0 || left % sw != 0 || left / sw >= out_w) continue;
            total += grad_output[first + (ptrdiff_t)(top / sh) * out_w + left / sw] / window_size;
        }
    }
    dx = total;
    """,
    "tinyres_avg_pool2d_backward")


@backward_kernel
def avg_pool2d_backward(grad_output, x_shape, kernel_size, stride, padding):
    """Spread each output gradient evenly over its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_output[n, c, ho, wo] / (R*S)

    grad_output: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    dx = cupy.empty((batch, channels, height, width), dtype=grad_output.dtype)
    _avg_pool2d_backward_kernel(cupy.ascontiguousarray(grad_output), height, width,
                                *_ints(kernel_size, grad_output.shape[2:], stride, padding), dx)
    return dx


# --------------------------------------------------------------------------- batch norm
def _per_channel(vector, dtype):
    """(C,) -> (1, C, 1, 1) in ``dtype``, so a per-channel value broadcasts over (N, C, H, W)."""
    return vector.astype(dtype, copy=False).reshape(1, -1, 1, 1)


# Not raw: x and y are matched element by element, the (1, C, 1, 1) vectors broadcast.
_normalize_kernel = cupy.ElementwiseKernel(
    "T x, T mean, T scale, T shift",
    "T y",
    "y = (x - mean) * scale + shift;",
    "tinyres_batch_norm_normalize",
    options=_IEEE)


def batch_norm_forward_train(x, weight, bias, eps):
    """Normalize with the batch's own statistics, then scale and shift.

    mean_c = mean_{n,h,w} x,  var_c = mean_{n,h,w} (x - mean_c)^2   (biased)
    y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c

    x: (N, C, H, W), weight, bias: (C,) -> y: (N, C, H, W), mean, var, inv_std: (C,)
    """
    mean = x.mean(axis=(0, 2, 3))                   # CuPy's tree reductions, one block per channel
    var = x.var(axis=(0, 2, 3))                     # two passes: mean first, then (x - mean)^2
    inv_std = 1.0 / cupy.sqrt(var + eps)
    scale = inv_std * weight.astype(x.dtype, copy=False)
    y = _normalize_kernel(x, _per_channel(mean, x.dtype), _per_channel(scale, x.dtype),
                          _per_channel(bias, x.dtype))
    return y, mean, var, inv_std


# sum over (n, h, w) of grad_output * x_hat, without ever storing x_hat: the map runs per element,
# the reduce adds pairs up a tree, the post-map writes the channel's total.
_sum_grad_times_x_hat = cupy.ReductionKernel(
    "T grad, T x, T mean, T inv_std",
    "T total",
    "grad * ((x - mean) * inv_std)",                # map: one term grad_output * x_hat
    "a + b",                                        # reduce
    "total = a",                                    # post-map
    "0",                                            # identity
    "tinyres_batch_norm_dweight",
    options=_IEEE)

_batch_norm_dx_kernel = cupy.ElementwiseKernel(
    "T grad, T x, T mean, T inv_std, T factor, T dweight, T dbias, T count",
    "T dx",
    """
    const T x_hat = (x - mean) * inv_std;
    dx = factor * (count * grad - dbias - x_hat * dweight);
    """,
    "tinyres_batch_norm_dx",
    options=_IEEE)


@backward_kernel
def batch_norm_backward(grad_output, x, mean, inv_std, weight):
    """Gradients of training-mode batch norm in closed form (M = N*H*W values per channel).

    x_hat = (x - mean) * inv_std
    dbias   = sum(grad_output)
    dweight = sum(grad_output * x_hat)
    dx = weight * inv_std / M * (M*grad_output - dbias - x_hat * dweight)

    grad_output, x: (N, C, H, W), mean, inv_std, weight: (C,) -> dx: (N, C, H, W), dweight, dbias: (C,)
    """
    dtype = x.dtype
    count = x.size // x.shape[1]
    grad_output = grad_output.astype(dtype, copy=False)
    mean, inv_std = _per_channel(mean, dtype), _per_channel(inv_std, dtype)
    dbias = grad_output.sum(axis=(0, 2, 3))
    dweight = _sum_grad_times_x_hat(grad_output, x, mean, inv_std, axis=(0, 2, 3))
    factor = weight.astype(dtype, copy=False) * inv_std.reshape(-1) / count
    dx = _batch_norm_dx_kernel(grad_output, x, mean, inv_std, _per_channel(factor, dtype),
                               _per_channel(dweight, dtype), _per_channel(dbias, dtype),
                               dtype.type(count))
    return dx, dweight, dbias


# --------------------------------------------------------------------------- relu
_relu_forward_kernel = cupy.ElementwiseKernel(
    "T x", "T y",
    "y = x < 0 ? (T)0 : x;",                        # NaN passes through, as np.maximum
    "tinyres_relu_forward")

_relu_backward_kernel = cupy.ElementwiseKernel(
    "T grad, T out", "T dx",
    "dx = out <= 0 ? (T)0 : grad;",                 # NaN passes grad through, as PyTorch
    "tinyres_relu_backward")


def relu_forward(x):
    """y = max(x, 0), elementwise.  x: any shape -> same shape."""
    return _relu_forward_kernel(x)


@backward_kernel
def relu_backward(grad_output, out):
    """dx = 0 where the output is <= 0, else grad_output (so NaN passes it through).

    grad_output, out: same shape.
    """
    return _relu_backward_kernel(grad_output, out.astype(grad_output.dtype, copy=False))
