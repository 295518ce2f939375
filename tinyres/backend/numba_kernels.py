"""The kernels of ``numpy_kernels`` compiled with Numba: same names, signatures and results.

Each public function is a thin wrapper -- output shape, allocation, one call of an
``_njit`` function holding the loops -- so it reads line by line against its NumPy twin.
``numba.prange`` splits the outermost independent axis (an image plane or a channel) over
the cores; no two iterations write the same element, so no locks.  im2col and col2im are
the exception: they run single-threaded on one chunk of the batch each, from several
threads at once (see ``cpu_conv``); and ReLU, too cheap to pay for starting the
threads, runs on one core unless its array is large.  Padding
is never materialized: loops visit only the positions whose input pixel is inside the image.
Letters as in ``numpy_kernels``: N batch, C channels, H x W input, R x S kernel, Ho x Wo
output, sh/sw strides, ph/pw paddings, dh/dw dilations.

Why the loops look the way they do (measured: docs/results/measurements.md):

* inner loops index flat arrays with unsigned integers (``np.uint64``): Numba guards every
  signed index against Python's negative wraparound, and the guard stops LLVM from
  vectorizing (a contiguous row copy runs several times slower with it);
* sums keep one float64 partial sum per pixel position across the batch (an elementwise
  loop, which vectorizes) and add up those H*W partial sums at the end;
* ``fastmath=False`` keeps IEEE rounding, so float64 agrees with the reference to 1e-12;
* ``cache=True`` keeps the machine code in ``__pycache__``: only the first run on a machine
  compiles (a noticeable pause per kernel and dtype);
* parallel loops split their index with ``//`` and ``%``, as Numba types ``divmod`` of a
  ``prange`` index as a float.
"""
import math

import numpy as np

from . import cpu_conv                              # which conv algorithm, and the cores
from .cpu_threads import import_numba
from .guard import backward_kernel                 # *_backward refuse inside an answer
from .shapes import conv_output_hw

numba = import_numba()    # with the threading layer chosen (see cpu_threads)

xp = np
name = "numba"


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


@numba.njit(cache=True, inline="always")
def _copy_strided(target, target_start, source, source_start, source_step, count):
    """target[t0 + i] = source[s0 + i*step] for i < count, on flat arrays (unsigned)."""
    t0, s0, step = np.uint64(target_start), np.uint64(source_start), np.uint64(source_step)
    for i in range(np.uint64(count)):
        target[t0 + i] = source[s0 + i * step]


@numba.njit(cache=True, inline="always")
def _add_strided(target, target_start, target_step, source, source_start, source_step, count):
    """target[t0 + i*t_step] += source[s0 + i*s_step] for i < count, on flat arrays (unsigned)."""
    t0, t_step = np.uint64(target_start), np.uint64(target_step)
    s0, s_step = np.uint64(source_start), np.uint64(source_step)
    for i in range(np.uint64(count)):
        target[t0 + i * t_step] += source[s0 + i * s_step]


# --------------------------------------------------------------------------- im2col
# im2col and col2im run on one core and release the GIL: the convolution calls them from
# several threads at once, one chunk of the batch each (see ``cpu_conv``).
@numba.njit(nogil=True, cache=True, fastmath=False)
def _im2col_njit(x, cols, sh, sw, ph, pw, dh, dw):
    batch, channels, height, width = x.shape
    _, kernel_h, kernel_w, _, out_h, out_w = cols.shape
    pixels, stripe = height * width, out_h * out_w
    x_flat, cols_flat = x.reshape(-1), cols.reshape(-1)     # offsets below are plain integers
    # one column row (c, r, s) per iteration: each row is a contiguous N*Ho*Wo stripe
    for row in range(channels * kernel_h * kernel_w):
        c, tap = row // (kernel_h * kernel_w), row % (kernel_h * kernel_w)
        r, s = tap // kernel_w, tap % kernel_w
        top, left = r * dh - ph, s * dw - pw                # input pixel of output (0, 0)
        ho_low, ho_high = _valid_range(top, sh, height, out_h)
        wo_low, wo_high = _valid_range(left, sw, width, out_w)
        reads_padding = ho_low > 0 or ho_high < out_h or wo_low > 0 or wo_high < out_w
        for n in range(batch):
            image = (n * channels + c) * pixels             # offset of x[n, c, 0, 0]
            start = (row * batch + n) * stripe              # offset of cols[c, r, s, n, 0, 0]
            if reads_padding:
                # zero the whole stripe and let the copies overwrite its inside: cheaper
                # than zeroing the padded ends of every output row one by one
                cols_flat[start:start + stripe] = 0
            for ho in range(ho_low, ho_high):
                _copy_strided(cols_flat, start + ho * out_w + wo_low,
                              x_flat, image + (ho * sh + top) * width + wo_low * sw + left,
                              sw, wo_high - wo_low)


def im2col(x, kernel_size, stride, padding, dilation):
    """Unfold every receptive field of ``x`` into a column, so a convolution becomes one GEMM.

    cols[(c, r, s), (n, ho, wo)] = x_padded[n, c, r*dh + ho*sh, s*dw + wo*sw]

    x: (N, C, H, W) -> cols: (C*R*S, N*Ho*Wo)
    """
    batch, channels, height, width = x.shape
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding, dilation)
    cols = np.empty((channels, *kernel_size, batch, *out_hw), dtype=x.dtype)
    _im2col_njit(np.ascontiguousarray(x), cols, *_ints(stride, padding, dilation))
    return cols.reshape(channels * kernel_size[0] * kernel_size[1], -1)


@numba.njit(nogil=True, cache=True, fastmath=False)
def _col2im_njit(cols, dx, sh, sw, ph, pw, dh, dw):
    channels, kernel_h, kernel_w, batch, out_h, out_w = cols.shape
    height, width = dx.shape[2:]
    pixels, stripe = height * width, out_h * out_w
    cols_flat, dx_flat = cols.reshape(-1), dx.reshape(-1)
    # one (n, c) image plane per iteration: the plane stays in cache while taps pile up
    for plane in range(batch * channels):
        n, c = plane // channels, plane % channels
        image = plane * pixels                              # offset of dx[n, c, 0, 0]
        dx_flat[image:image + pixels] = 0
        # taps in (r, s) order, as the reference adds them, so the sums round the same way
        for r in range(kernel_h):
            top = r * dh - ph
            ho_low, ho_high = _valid_range(top, sh, height, out_h)
            for s in range(kernel_w):
                left = s * dw - pw
                wo_low, wo_high = _valid_range(left, sw, width, out_w)
                start = (((c * kernel_h + r) * kernel_w + s) * batch + n) * stripe
                for ho in range(ho_low, ho_high):
                    # overlapping windows hit the same pixel, so this must be +=, never =
                    _add_strided(dx_flat, image + (ho * sh + top) * width + wo_low * sw + left, sw,
                                 cols_flat, start + ho * out_w + wo_low, 1, wo_high - wo_low)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """Adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from.

    dx_padded[n, c, r*dh + ho*sh, s*dw + wo*sw] += cols[(c, r, s), (n, ho, wo)]

    cols: (C*R*S, N*Ho*Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding, dilation)
    cols = np.ascontiguousarray(cols).reshape(channels, *kernel_size, batch, *out_hw)
    dx = np.empty((batch, channels, height, width), dtype=cols.dtype)
    _col2im_njit(cols, dx, *_ints(stride, padding, dilation))
    return dx


# --------------------------------------------------------------------------- conv2d
def conv2d_forward(x, weight, stride, padding, dilation):
    """2-D cross-correlation without bias: Winograd for 3x3 stride-1 kernels, else im2col + GEMM.

    y[n, k, ho, wo] = sum_{c, r, s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

    ``cpu_conv`` picks the algorithm and spreads the batch over the cores.

    x: (N, C, H, W), weight: (K, C, R, S) -> y: (N, K, Ho, Wo)
    """
    return cpu_conv.conv2d_forward(np.ascontiguousarray(x), np.ascontiguousarray(weight),
                                   stride, padding, dilation, im2col=im2col)


@backward_kernel
def conv2d_backward(grad_output, x, weight, stride, padding, dilation,
                    need_input=True, need_weight=True):
    """Gradients of :func:`conv2d_forward` with respect to x and weight (None where not needed).

        dcols = W^T @ dY,   dx = col2im(dcols),   dW = dY @ cols^T

    grad_output: (N, K, Ho, Wo), x: (N, C, H, W), weight: (K, C, R, S)
    -> dx: (N, C, H, W) or None, dweight: (K, C, R, S) or None
    """
    return cpu_conv.conv2d_backward(
        np.ascontiguousarray(grad_output), np.ascontiguousarray(x), np.ascontiguousarray(weight),
        stride, padding, dilation, need_input, need_weight, im2col=im2col, col2im=col2im)


# --------------------------------------------------------------------------- pooling
@numba.njit(parallel=True, cache=True, fastmath=False)
def _max_pool2d_forward_njit(x, out, argmax, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2:]
    x_flat, out_flat, argmax_flat = x.reshape(-1), out.reshape(-1), argmax.reshape(-1)
    for plane in numba.prange(batch * channels):
        for ho in range(out_h):
            top = ho * sh - ph
            # only taps inside the image: padding is -inf and can never win
            r_low, r_high = max(0, -top), min(kernel_h, height - top)
            for wo in range(out_w):
                left = wo * sw - pw
                s_low = max(0, -left)                       # (s_high >= s_low: unsigned below)
                s_high = max(s_low, min(kernel_w, width - left))
                best, best_tap = -np.inf, 0
                for r in range(r_low, r_high):
                    # offset of x[n, c, top + r, left]
                    row = np.uint64((plane * height + top + r) * width + left)
                    for s in range(np.uint64(s_low), np.uint64(s_high)):
                        value = x_flat[row + s]
                        if value > best:            # strict: ties keep the earlier tap
                            best, best_tap = value, r * kernel_w + np.int64(s)
                index = (plane * out_h + ho) * out_w + wo
                out_flat[index] = best
                argmax_flat[index] = best_tap


def max_pool2d_forward(x, kernel_size, stride, padding):
    """Maximum over each window; padding never wins (it is -inf), as in PyTorch.

    out[n, c, ho, wo] = max_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]
    argmax[n, c, ho, wo] = r*S + s of the first maximum (row-major order)

    x: (N, C, H, W) -> out: (N, C, Ho, Wo), argmax: (N, C, Ho, Wo) int32
    """
    height, width = x.shape[2:]
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding)
    out = np.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int32)
    _max_pool2d_forward_njit(np.ascontiguousarray(x), out, argmax,
                             *_ints(kernel_size, stride, padding))
    return out, argmax


@numba.njit(parallel=True, cache=True, fastmath=False)
def _max_pool2d_backward_njit(grad_output, argmax, dx, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, out_h, out_w = grad_output.shape
    height, width = dx.shape[2:]
    grad_flat, argmax_flat, dx_flat = grad_output.reshape(-1), argmax.reshape(-1), dx.reshape(-1)
    # tap number r*S + s -> (r, s), looked up: an integer division per output costs more
    tap_row = np.empty(kernel_h * kernel_w, dtype=np.int64)
    tap_col = np.empty(kernel_h * kernel_w, dtype=np.int64)
    for tap in range(kernel_h * kernel_w):
        tap_row[tap], tap_col[tap] = tap // kernel_w, tap % kernel_w
    for plane in numba.prange(batch * channels):
        image = plane * height * width                      # offset of dx[n, c, 0, 0]
        dx_flat[image:image + height * width] = 0
        for ho in range(out_h):
            line = np.uint64((plane * out_h + ho) * out_w)  # offset of grad_output[n, c, ho, 0]
            for wo in range(np.uint64(out_w)):
                tap = np.uint64(argmax_flat[line + wo])
                h = ho * sh - ph + tap_row[tap]
                w = np.int64(wo) * sw - pw + tap_col[tap]
                if 0 <= h < height and 0 <= w < width:      # a padding winner has no pixel
                    dx_flat[np.uint64(image + h * width + w)] += grad_flat[line + wo]


@backward_kernel
def max_pool2d_backward(grad_output, argmax, x_shape, kernel_size, stride, padding):
    """Send each output gradient to the input pixel that won its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_output[n, c, ho, wo]  where r*S + s == argmax[n, c, ho, wo]

    grad_output, argmax: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    dx = np.empty(tuple(x_shape), dtype=grad_output.dtype)
    _max_pool2d_backward_njit(np.ascontiguousarray(grad_output),
                              np.ascontiguousarray(argmax, dtype=np.int32), dx,
                              *_ints(kernel_size, stride, padding))
    return dx


@numba.njit(parallel=True, cache=True, fastmath=False)
def _avg_pool2d_forward_njit(x, out, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2:]
    window = x.dtype.type(kernel_h * kernel_w)              # padding counts in the divisor
    x_flat, out_flat = x.reshape(-1), out.reshape(-1)
    for plane in numba.prange(batch * channels):
        image = plane * height * width                      # offset of x[n, c, 0, 0]
        for ho in range(out_h):
            line = (plane * out_h + ho) * out_w             # offset of out[n, c, ho, 0]
            out_flat[line:line + out_w] = 0
            top = ho * sh - ph
            # a whole output row gains one tap at a time, in (r, s) order like the
            # reference; padded taps would add zero, so they are skipped
            for r in range(max(0, -top), min(kernel_h, height - top)):
                for s in range(kernel_w):
                    wo_low, wo_high = _valid_range(s - pw, sw, width, out_w)
                    _add_strided(out_flat, line + wo_low, 1,
                                 x_flat, image + (top + r) * width + wo_low * sw + s - pw, sw,
                                 wo_high - wo_low)
            out_flat[line:line + out_w] /= window


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Mean over each window, zero padding counted in the divisor (PyTorch's default).

    out[n, c, ho, wo] = 1/(R*S) * sum_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]

    x: (N, C, H, W) -> out: (N, C, Ho, Wo)
    """
    height, width = x.shape[2:]
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding)
    out = np.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
    _avg_pool2d_forward_njit(np.ascontiguousarray(x), out, *_ints(kernel_size, stride, padding))
    return out


@numba.njit(parallel=True, cache=True, fastmath=False)
def _avg_pool2d_backward_njit(grad_output, dx, kernel_h, kernel_w, sh, sw, ph, pw):
    batch, channels, out_h, out_w = grad_output.shape
    height, width = dx.shape[2:]
    window = grad_output.dtype.type(kernel_h * kernel_w)
    grad_flat, dx_flat = grad_output.reshape(-1), dx.reshape(-1)
    for plane in numba.prange(batch * channels):
        image = plane * height * width                      # offset of dx[n, c, 0, 0]
        dx_flat[image:image + height * width] = 0
        start = plane * out_h * out_w
        share = grad_flat[start:start + out_h * out_w] / window   # what each tap receives
        for r in range(kernel_h):                           # (r, s) order, as the reference adds
            ho_low, ho_high = _valid_range(r - ph, sh, height, out_h)
            for s in range(kernel_w):
                wo_low, wo_high = _valid_range(s - pw, sw, width, out_w)
                for ho in range(ho_low, ho_high):
                    pixel = image + (ho * sh + r - ph) * width + wo_low * sw + s - pw
                    _add_strided(dx_flat, pixel, sw,
                                 share, ho * out_w + wo_low, 1, wo_high - wo_low)


@backward_kernel
def avg_pool2d_backward(grad_output, x_shape, kernel_size, stride, padding):
    """Spread each output gradient evenly over its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_output[n, c, ho, wo] / (R*S)

    grad_output: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    dx = np.empty(tuple(x_shape), dtype=grad_output.dtype)
    _avg_pool2d_backward_njit(np.ascontiguousarray(grad_output), dx,
                              *_ints(kernel_size, stride, padding))
    return dx


# --------------------------------------------------------------------------- batch norm
@numba.njit(parallel=True, cache=True, fastmath=False)
def _batch_norm_forward_train_njit(x, weight, bias, eps, y, mean, var, inv_std):
    batch, channels, plane_size = x.shape           # x, y arrive as (N, C, H*W)
    size = np.uint64(plane_size)
    for c in numba.prange(channels):
        # 1) one pass over the data: per pixel position i, float64 sums of d = x - shift
        #    and d^2, shifted by sample 0's value at i (which adds d = 0, hence n from 1).
        #    A shift inside the data keeps sum(d^2) - sum(d)^2/N from cancelling the way
        #    sum(x^2) - sum(x)^2/N does when |mean| >> std.
        first = x[0, c]
        sums, squares = np.zeros(plane_size), np.zeros(plane_size)
        for n in range(1, batch):
            plane = x[n, c]
            for i in range(size):
                d = np.float64(plane[i]) - np.float64(first[i])
                sums[i] += d
                squares[i] += d * d
        # 2) merge the H*W positions (each holds N values): the channel mean is the mean of
        #    their means; squared deviations add up, plus N*(position mean - mean)^2 each
        total = 0.0
        for i in range(size):
            total += np.float64(first[i]) + sums[i] / batch
        channel_mean = total / plane_size
        deviations = 0.0
        for i in range(size):
            spread = np.float64(first[i]) + sums[i] / batch - channel_mean
            deviations += squares[i] - sums[i] * sums[i] / batch + batch * spread * spread
        mean[c] = channel_mean
        var[c] = deviations / (batch * plane_size)  # biased, as the reference
        inv_std[c] = 1.0 / math.sqrt(var[c] + eps)
        # 3) fused normalize-scale-shift, in x's dtype like the reference
        center, scale, shift = mean[c], inv_std[c] * weight[c], bias[c]
        for n in range(batch):
            source, target = x[n, c], y[n, c]
            for i in range(size):
                target[i] = (source[i] - center) * scale + shift


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


@numba.njit(parallel=True, cache=True, fastmath=False)
def _batch_norm_backward_njit(grad_output, x, mean, inv_std, weight, dx, dweight, dbias):
    batch, channels, plane_size = x.shape           # all (N, C, H*W)
    size = np.uint64(plane_size)
    count = x.dtype.type(batch * plane_size)        # M in x's dtype: step 2 computes in it
    for c in numba.prange(channels):
        # 1) the two reductions, per pixel position first (float64), then over positions;
        #    dweight = inv_std * sum(grad_output * (x - mean)) = sum(grad_output * x_hat)
        center64 = np.float64(mean[c])
        sums, products = np.zeros(plane_size), np.zeros(plane_size)
        for n in range(batch):
            grad, source = grad_output[n, c], x[n, c]
            for i in range(size):
                g = np.float64(grad[i])
                sums[i] += g
                products[i] += g * (np.float64(source[i]) - center64)
        dbias[c] = sums.sum()
        dweight[c] = products.sum() * np.float64(inv_std[c])
        # 2) dx = weight * inv_std / M * (M*grad_output - dbias - x_hat * dweight), in x's dtype
        center, std_scale, d_weight, d_bias = mean[c], inv_std[c], dweight[c], dbias[c]
        factor = weight[c] * std_scale / count
        for n in range(batch):
            source, grad, target = x[n, c], grad_output[n, c], dx[n, c]
            for i in range(size):
                x_hat = (source[i] - center) * std_scale
                target[i] = factor * (count * grad[i] - d_bias - x_hat * d_weight)


@backward_kernel
def batch_norm_backward(grad_output, x, mean, inv_std, weight):
    """Gradients of training-mode batch norm in closed form (M = N*H*W values per channel).

    x_hat = (x - mean) * inv_std
    dbias   = sum(grad_output)
    dweight = sum(grad_output * x_hat)
    dx = weight * inv_std / M * (M*grad_output - dbias - x_hat * dweight)

    grad_output, x: (N, C, H, W), mean, inv_std, weight: (C,) -> dx: (N, C, H, W), dweight, dbias: (C,)
    """
    batch, channels = x.shape[:2]
    x3 = np.ascontiguousarray(x).reshape(batch, channels, -1)
    grad3 = np.ascontiguousarray(grad_output, dtype=x.dtype).reshape(x3.shape)
    dx = np.empty(x3.shape, dtype=x.dtype)
    dweight, dbias = np.empty(channels, dtype=x.dtype), np.empty(channels, dtype=x.dtype)
    per_channel = (np.ascontiguousarray(v, dtype=x.dtype) for v in (mean, inv_std, weight))
    _batch_norm_backward_njit(grad3, x3, *per_channel, dx, dweight, dbias)
    return dx.reshape(x.shape), dweight, dbias


# --------------------------------------------------------------------------- relu
# Starting a parallel loop under Numba's work-queue layer (its threads hand the work over
# through locks) costs as much as one core running ReLU over a large array (measured:
# docs/results/measurements.md).  So ReLU runs on one core below RELU_PARALLEL_SIZE
# numbers, and splits into one block per thread above it.
RELU_PARALLEL_SIZE = 1 << 21


@numba.njit(cache=True, inline="always")
def _relu_forward_block(x, out, start, stop):
    zero = x.dtype.type(0)
    for i in range(np.uint64(start), np.uint64(stop)):
        out[i] = zero if x[i] < 0 else x[i]         # NaN passes through, as np.maximum


@numba.njit(cache=True, inline="always")
def _relu_backward_block(grad_output, out, dx, start, stop):
    zero = grad_output.dtype.type(0)
    for i in range(np.uint64(start), np.uint64(stop)):
        dx[i] = zero if out[i] <= 0 else grad_output[i]   # NaN passes grad_output through, as PyTorch


@numba.njit(nogil=True, cache=True, fastmath=False)
def _relu_forward_serial(x, out):
    _relu_forward_block(x, out, 0, x.size)


@numba.njit(parallel=True, cache=True, fastmath=False)
def _relu_forward_parallel(x, out, blocks):
    for block in numba.prange(blocks):
        _relu_forward_block(x, out, x.size * block // blocks, x.size * (block + 1) // blocks)


@numba.njit(nogil=True, cache=True, fastmath=False)
def _relu_backward_serial(grad_output, out, dx):
    _relu_backward_block(grad_output, out, dx, 0, dx.size)


@numba.njit(parallel=True, cache=True, fastmath=False)
def _relu_backward_parallel(grad_output, out, dx, blocks):
    for block in numba.prange(blocks):
        _relu_backward_block(grad_output, out, dx, dx.size * block // blocks,
                             dx.size * (block + 1) // blocks)


def _relu_blocks(size):
    """How many threads share a ReLU over ``size`` numbers (1: no parallel loop at all)."""
    return numba.get_num_threads() if size >= RELU_PARALLEL_SIZE else 1


def relu_forward(x):
    """y = max(x, 0), elementwise.  x: any shape -> same shape."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    blocks = _relu_blocks(flat.size)
    if blocks > 1:
        _relu_forward_parallel(flat, out, blocks)
    else:
        _relu_forward_serial(flat, out)
    return out.reshape(np.shape(x))


@backward_kernel
def relu_backward(grad_output, out):
    """dx = 0 where the output is <= 0, else grad_output (so NaN passes it through).

    grad_output, out: same shape.
    """
    grad_flat = np.ascontiguousarray(grad_output).reshape(-1)
    dx = np.empty_like(grad_flat)
    out_flat = np.ascontiguousarray(out).reshape(-1)
    blocks = _relu_blocks(dx.size)
    if blocks > 1:
        _relu_backward_parallel(grad_flat, out_flat, dx, blocks)
    else:
        _relu_backward_serial(grad_flat, out_flat, dx)
    return dx.reshape(np.shape(grad_output))
