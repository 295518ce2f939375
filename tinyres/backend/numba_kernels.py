"""The kernels of ``numpy_kernels`` compiled with Numba: same names, signatures and results.

Each public function is a thin Python wrapper -- it computes the output shape, allocates
the output and calls an ``_njit`` function that holds the loops -- so it reads line by
line against its NumPy twin.  Here the loops run over N, C, H and W explicitly, and
``numba.prange`` splits the outermost independent axis (a channel plane, a column row or
a channel) across the CPU cores; no two iterations ever write the same element, so the
threads need no locks.  Letters as in ``numpy_kernels``:

    N batch, C input channels, H x W input size, R x S kernel size,
    Ho x Wo output size, sh/sw strides, ph/pw paddings, dh/dw dilations.

Padding is never materialized: every loop visits only the output positions (or kernel
taps) whose input pixel lies inside the image, and treats the rest as the pad value.

``fastmath=False`` keeps IEEE rounding, so float64 results agree with the reference to
1e-12; sums that must be fast use several partial sums that we chose ourselves.
``cache=True`` stores the machine code beside this file, so only the first run on a
machine pays the compile time (about a second per kernel and dtype).
"""
import math

import numba
import numpy as np

from .shapes import conv_output_size

xp = np
name = "numba"


def _output_hw(height, width, kernel_size, stride, padding, dilation=(1, 1)):
    return (conv_output_size(height, kernel_size[0], stride[0], padding[0], dilation[0]),
            conv_output_size(width, kernel_size[1], stride[1], padding[1], dilation[1]))


def _ints(*pairs):
    """Flatten 2-tuples into plain Python ints, so every call compiles to one signature."""
    return tuple(int(value) for pair in pairs for value in pair)


@numba.njit(cache=True, inline="always")
def _valid_range(offset, stride, size, out_size):
    """Output positions o in [low, high) whose input index o*stride + offset lies in [0, size)."""
    low = 0
    while low < out_size and low * stride + offset < 0:
        low += 1
    high = out_size
    while high > low and (high - 1) * stride + offset >= size:
        high -= 1
    return low, high


# --------------------------------------------------------------------------- im2col
@numba.njit(parallel=True, cache=True, fastmath=False)
def _im2col_njit(x, cols, sh, sw, ph, pw, dh, dw):
    batch, channels, height, width = x.shape
    _, kernel_h, kernel_w, _, out_h, out_w = cols.shape
    # one column row (c, r, s) per iteration: each row is a contiguous N*Ho*Wo stripe
    for row in numba.prange(channels * kernel_h * kernel_w):
        c, tap = divmod(row, kernel_h * kernel_w)
        r, s = divmod(tap, kernel_w)
        top, left = r * dh - ph, s * dw - pw        # input pixel of output (0, 0) for this tap
        ho_low, ho_high = _valid_range(top, sh, height, out_h)
        wo_low, wo_high = _valid_range(left, sw, width, out_w)
        for n in range(batch):
            stripe = cols[c, r, s, n]               # (Ho, Wo)
            image = x[n, c]                         # (H, W)
            stripe[:ho_low] = 0                     # rows that read the top/bottom padding
            stripe[ho_high:] = 0
            for ho in range(ho_low, ho_high):
                source = image[ho * sh + top]
                target = stripe[ho]
                target[:wo_low] = 0                 # columns that read the left/right padding
                target[wo_high:] = 0
                for wo in range(wo_low, wo_high):
                    target[wo] = source[wo * sw + left]


def im2col(x, kernel_size, stride, padding, dilation):
    """Unfold every receptive field of ``x`` into a column, so a convolution becomes one GEMM.

    cols[(c, r, s), (n, ho, wo)] = x_padded[n, c, r*dh + ho*sh, s*dw + wo*sw]

    x: (N, C, H, W) -> cols: (C*R*S, N*Ho*Wo)
    """
    batch, channels, height, width = x.shape
    out_hw = _output_hw(height, width, kernel_size, stride, padding, dilation)
    cols = np.empty((channels, *kernel_size, batch, *out_hw), dtype=x.dtype)
    _im2col_njit(np.ascontiguousarray(x), cols, *_ints(stride, padding, dilation))
    return cols.reshape(channels * kernel_size[0] * kernel_size[1], -1)


@numba.njit(parallel=True, cache=True, fastmath=False)
def _col2im_njit(cols, dx, sh, sw, ph, pw, dh, dw):
    channels, kernel_h, kernel_w, batch, out_h, out_w = cols.shape
    height, width = dx.shape[2:]
    # one (n, c) image plane per iteration: the plane stays in cache while taps pile up
    for plane in numba.prange(batch * channels):
        n, c = divmod(plane, channels)
        image = dx[n, c]
        image[:] = 0
        # taps in (r, s) order, as the reference adds them, so the sums round the same way
        for r in range(kernel_h):
            top = r * dh - ph
            ho_low, ho_high = _valid_range(top, sh, height, out_h)
            for s in range(kernel_w):
                left = s * dw - pw
                wo_low, wo_high = _valid_range(left, sw, width, out_w)
                stripe = cols[c, r, s, n]
                for ho in range(ho_low, ho_high):
                    target = image[ho * sh + top]
                    source = stripe[ho]
                    # overlapping windows hit the same pixel, so this must be +=, never =
                    for wo in range(wo_low, wo_high):
                        target[wo * sw + left] += source[wo]


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """Adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from.

    dx_padded[n, c, r*dh + ho*sh, s*dw + wo*sw] += cols[(c, r, s), (n, ho, wo)]

    cols: (C*R*S, N*Ho*Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    out_hw = _output_hw(height, width, kernel_size, stride, padding, dilation)
    cols = np.ascontiguousarray(cols).reshape(channels, *kernel_size, batch, *out_hw)
    dx = np.empty((batch, channels, height, width), dtype=cols.dtype)
    _col2im_njit(cols, dx, *_ints(stride, padding, dilation))
    return dx


# --------------------------------------------------------------------------- pooling
@numba.njit(parallel=True, cache=True, fastmath=False)
def _max_pool2d_forward_njit(x, out, argmax, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2:]
    for plane in numba.prange(batch * channels):
        n, c = divmod(plane, channels)
        image = x[n, c]
        for ho in range(out_h):
            top = ho * sh - ph
            # only taps inside the image: padding is -inf and can never win
            r_low, r_high = max(0, -top), min(kernel_h, height - top)
            for wo in range(out_w):
                left = wo * sw - pw
                s_low, s_high = max(0, -left), min(kernel_w, width - left)
                best, best_tap = -np.inf, 0
                for r in range(r_low, r_high):
                    for s in range(s_low, s_high):
                        value = image[top + r, left + s]
                        if value > best:            # strict: ties keep the earlier tap
                            best, best_tap = value, r * kernel_w + s
                out[n, c, ho, wo] = best
                argmax[n, c, ho, wo] = best_tap


def max_pool2d_forward(x, kernel_size, stride, padding):
    """Maximum over each window; padding never wins (it is -inf), as in PyTorch.

    out[n, c, ho, wo] = max_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]
    argmax[n, c, ho, wo] = r*S + s of the first maximum (row-major order)

    x: (N, C, H, W) -> out: (N, C, Ho, Wo), argmax: (N, C, Ho, Wo) int32
    """
    height, width = x.shape[2:]
    out_hw = _output_hw(height, width, kernel_size, stride, padding)
    out = np.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int32)
    _max_pool2d_forward_njit(np.ascontiguousarray(x), out, argmax,
                             *_ints(kernel_size, stride, padding))
    return out, argmax


@numba.njit(parallel=True, cache=True, fastmath=False)
def _max_pool2d_backward_njit(grad_out, argmax, dx, kernel_w, sh, sw, ph, pw):
    batch, channels, out_h, out_w = grad_out.shape
    height, width = dx.shape[2:]
    for plane in numba.prange(batch * channels):
        n, c = divmod(plane, channels)
        image = dx[n, c]
        image[:] = 0
        for ho in range(out_h):
            for wo in range(out_w):
                r, s = divmod(argmax[n, c, ho, wo], kernel_w)
                h, w = ho * sh - ph + r, wo * sw - pw + s
                if 0 <= h < height and 0 <= w < width:      # a padding winner has no pixel
                    image[h, w] += grad_out[n, c, ho, wo]


def max_pool2d_backward(grad_out, argmax, x_shape, kernel_size, stride, padding):
    """Send each output gradient to the input pixel that won its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_out[n, c, ho, wo]  where r*S + s == argmax[n, c, ho, wo]

    grad_out, argmax: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    dx = np.empty(tuple(x_shape), dtype=grad_out.dtype)
    _max_pool2d_backward_njit(np.ascontiguousarray(grad_out),
                              np.ascontiguousarray(argmax, dtype=np.int32), dx,
                              int(kernel_size[1]), *_ints(stride, padding))
    return dx


@numba.njit(parallel=True, cache=True, fastmath=False)
def _avg_pool2d_forward_njit(x, out, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2:]
    window = x.dtype.type(kernel_h * kernel_w)     # padding counts in the divisor
    for plane in numba.prange(batch * channels):
        n, c = divmod(plane, channels)
        image = x[n, c]
        for ho in range(out_h):
            top = ho * sh - ph
            r_low, r_high = max(0, -top), min(kernel_h, height - top)
            for wo in range(out_w):
                left = wo * sw - pw
                s_low, s_high = max(0, -left), min(kernel_w, width - left)
                total = x.dtype.type(0)             # sum in x's dtype, as the reference
                for r in range(r_low, r_high):      # padded taps add zero: skip them
                    for s in range(s_low, s_high):
                        total += image[top + r, left + s]
                out[n, c, ho, wo] = total / window


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Mean over each window, zero padding counted in the divisor (PyTorch's default).

    out[n, c, ho, wo] = 1/(R*S) * sum_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]

    x: (N, C, H, W) -> out: (N, C, Ho, Wo)
    """
    height, width = x.shape[2:]
    out_hw = _output_hw(height, width, kernel_size, stride, padding)
    out = np.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
    _avg_pool2d_forward_njit(np.ascontiguousarray(x), out, *_ints(kernel_size, stride, padding))
    return out


@numba.njit(parallel=True, cache=True, fastmath=False)
def _avg_pool2d_backward_njit(grad_out, dx, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, out_h, out_w = grad_out.shape
    height, width = dx.shape[2:]
    window = grad_out.dtype.type(kernel_h * kernel_w)
    for plane in numba.prange(batch * channels):
        n, c = divmod(plane, channels)
        image, grad = dx[n, c], grad_out[n, c]
        image[:] = 0
        for r in range(kernel_h):                   # (r, s) order, as the reference adds
            top = r - ph
            ho_low, ho_high = _valid_range(top, sh, height, out_h)
            for s in range(kernel_w):
                left = s - pw
                wo_low, wo_high = _valid_range(left, sw, width, out_w)
                for ho in range(ho_low, ho_high):
                    for wo in range(wo_low, wo_high):
                        image[ho * sh + top, wo * sw + left] += grad[ho, wo] / window


def avg_pool2d_backward(grad_out, x_shape, kernel_size, stride, padding):
    """Spread each output gradient evenly over its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_out[n, c, ho, wo] / (R*S)

    grad_out: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    dx = np.empty(tuple(x_shape), dtype=grad_out.dtype)
    _avg_pool2d_backward_njit(np.ascontiguousarray(grad_out), dx,
                              *_ints(kernel_size, stride, padding))
    return dx


# --------------------------------------------------------------------------- batch norm
@numba.njit(cache=True)
def _shifted_sums(values, shift):
    """sum(v - shift) and sum((v - shift)^2) over a 1-D array, in float64.

    Four partial sums per total: one running sum would wait on every add's latency,
    four independent ones keep the adder busy (and fix the rounding order ourselves).
    """
    sums = np.zeros(4)
    squares = np.zeros(4)
    quads = values.size // 4
    for i in range(quads):
        for lane in range(4):
            d = np.float64(values[4 * i + lane]) - shift
            sums[lane] += d
            squares[lane] += d * d
    for i in range(4 * quads, values.size):
        d = np.float64(values[i]) - shift
        sums[0] += d
        squares[0] += d * d
    return sums.sum(), squares.sum()


@numba.njit(parallel=True, cache=True, fastmath=False)
def _batch_norm_forward_train_njit(x, weight, bias, eps, y, mean, var, inv_std):
    batch, channels, plane_size = x.shape           # x, y arrive as (N, C, H*W)
    for c in numba.prange(channels):
        # 1) one pass: each plane's shifted sums, merged into the running statistics with
        #    Chan's formula -- stable in float64 even when |mean| >> std
        count, running_mean, squared_deviations = 0, 0.0, 0.0
        for n in range(batch):
            plane = x[n, c]
            shift = np.float64(plane[0])            # any value near the data; avoids cancellation
            sum_d, sum_d2 = _shifted_sums(plane, shift)
            plane_mean = shift + sum_d / plane_size
            plane_squared_deviations = sum_d2 - sum_d * sum_d / plane_size
            total = count + plane_size
            delta = plane_mean - running_mean
            running_mean += delta * plane_size / total
            squared_deviations += plane_squared_deviations + delta * delta * count * plane_size / total
            count = total
        mean[c] = running_mean
        var[c] = squared_deviations / count         # biased, as the reference
        inv_std[c] = 1.0 / math.sqrt(var[c] + eps)
        # 2) fused normalize-scale-shift, in x's dtype like the reference
        center, scale, shift_out = mean[c], inv_std[c] * weight[c], bias[c]
        for n in range(batch):
            source, target = x[n, c], y[n, c]
            for i in range(plane_size):
                target[i] = (source[i] - center) * scale + shift_out


def batch_norm_forward_train(x, weight, bias, eps):
    """Normalize with the batch's own statistics, then scale and shift.

    mean_c = mean_{n,h,w} x,  var_c = mean_{n,h,w} (x - mean_c)^2   (biased)
    y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c

    x: (N, C, H, W), weight, bias: (C,) -> y: (N, C, H, W), mean, var, inv_std: (C,)
    """
    batch, channels = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(batch, channels, -1)
    y = np.empty(x3.shape, dtype=x.dtype)
    mean, var, inv_std = (np.empty(channels, dtype=x.dtype) for _ in range(3))
    _batch_norm_forward_train_njit(x3, np.ascontiguousarray(weight, dtype=x.dtype),
                                   np.ascontiguousarray(bias, dtype=x.dtype), float(eps),
                                   y, mean, var, inv_std)
    return y.reshape(x.shape), mean, var, inv_std


@numba.njit(cache=True)
def _gradient_sums(grad, values, center):
    """sum(dy) and sum(dy * (x - center)) over two 1-D arrays, in float64, four partial sums each."""
    sums = np.zeros(4)
    products = np.zeros(4)
    quads = grad.size // 4
    for i in range(quads):
        for lane in range(4):
            g = np.float64(grad[4 * i + lane])
            sums[lane] += g
            products[lane] += g * (np.float64(values[4 * i + lane]) - center)
    for i in range(4 * quads, grad.size):
        g = np.float64(grad[i])
        sums[0] += g
        products[0] += g * (np.float64(values[i]) - center)
    return sums.sum(), products.sum()


@numba.njit(parallel=True, cache=True, fastmath=False)
def _batch_norm_backward_njit(grad_out, x, mean, inv_std, weight, dx, dweight, dbias):
    batch, channels, plane_size = x.shape           # all (N, C, H*W)
    count = x.dtype.type(batch * plane_size)        # M in x's dtype, so step 2 stays in it
    for c in numba.prange(channels):
        # 1) the two reductions; dweight = inv_std * sum(dy * (x - mean)) = sum(dy * x_hat)
        sum_dy, sum_dy_centered = 0.0, 0.0
        for n in range(batch):
            plane_dy, plane_products = _gradient_sums(grad_out[n, c], x[n, c], np.float64(mean[c]))
            sum_dy += plane_dy
            sum_dy_centered += plane_products
        dbias[c] = sum_dy
        dweight[c] = sum_dy_centered * np.float64(inv_std[c])
        # 2) dx = weight * inv_std / M * (M*dy - dbias - x_hat * dweight), in x's dtype
        center, std_scale, d_w, d_b = mean[c], inv_std[c], dweight[c], dbias[c]
        factor = weight[c] * std_scale / count
        for n in range(batch):
            source, grad, target = x[n, c], grad_out[n, c], dx[n, c]
            for i in range(plane_size):
                x_hat = (source[i] - center) * std_scale
                target[i] = factor * (count * grad[i] - d_b - x_hat * d_w)


def batch_norm_backward(grad_out, x, mean, inv_std, weight):
    """Gradients of training-mode batch norm in closed form (M = N*H*W values per channel).

    x_hat = (x - mean) * inv_std
    dbias   = sum(dy)
    dweight = sum(dy * x_hat)
    dx = weight * inv_std / M * (M*dy - dbias - x_hat * dweight)

    grad_out, x: (N, C, H, W), mean, inv_std, weight: (C,) -> dx: (N, C, H, W), dweight, dbias: (C,)
    """
    batch, channels = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(batch, channels, -1)
    grad3 = np.ascontiguousarray(grad_out, dtype=x.dtype).reshape(x3.shape)
    dx = np.empty(x3.shape, dtype=x.dtype)
    dweight, dbias = np.empty(channels, dtype=x.dtype), np.empty(channels, dtype=x.dtype)
    per_channel = (np.ascontiguousarray(v, dtype=x.dtype) for v in (mean, inv_std, weight))
    _batch_norm_backward_njit(grad3, x3, *per_channel, dx, dweight, dbias)
    return dx.reshape(x.shape), dweight, dbias


# --------------------------------------------------------------------------- relu
@numba.njit(parallel=True, cache=True, fastmath=False)
def _relu_forward_njit(x, out):
    for i in numba.prange(x.size):
        out[i] = 0 if x[i] < 0 else x[i]            # NaN passes through, as np.maximum


def relu_forward(x):
    """y = max(x, 0), elementwise.  x: any shape -> same shape."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    _relu_forward_njit(flat, out)
    return out.reshape(np.shape(x))


@numba.njit(parallel=True, cache=True, fastmath=False)
def _relu_backward_njit(grad_out, out, dx):
    for i in numba.prange(grad_out.size):
        dx[i] = grad_out[i] if out[i] > 0 else 0


def relu_backward(grad_out, out):
    """dx = dy where the output is positive, else 0.  grad_out, out: same shape."""
    grad_flat = np.ascontiguousarray(grad_out).reshape(-1)
    dx = np.empty_like(grad_flat)
    _relu_backward_njit(grad_flat, np.ascontiguousarray(out).reshape(-1), dx)
    return dx.reshape(np.shape(grad_out))
