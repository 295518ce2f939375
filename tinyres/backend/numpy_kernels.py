"""Reference kernels in vectorized NumPy: the readable definition of every algorithm.

Every backend module (``numba_kernels``, ``cupy_kernels``) has these same functions
with the same signatures and results; the tests hold them to it.  Letters:

    N batch, C input channels, H x W input size, R x S kernel size,
    Ho x Wo output size, sh/sw strides, ph/pw paddings, dh/dw dilations.

The loops here run over the R*S kernel offsets only -- never over N, H or W.  Each
offset ``(r, s)`` reads one strided slice of the padded input: every output pixel's
tap ``(r, s)`` sits at ``(r*dh + ho*sh, s*dw + wo*sw)``.

This module is the textbook: nothing here is about threads, caches or the BLAS.  The
faster CPU strategies (batch chunks over the cores, Winograd's transforms) live in
``cpu_conv.py`` and ``cpu_winograd.py``, used by the Numba backend.
"""
import numpy as np

from .guard import backward_kernel                 # *_backward refuse inside an answer
from .shapes import conv_output_hw

xp = np
name = "numpy"



def _tap(padded, r, s, out_hw, stride, dilation):
    """The strided view of ``padded`` (N, C, Hp, Wp) that kernel tap (r, s) reads: (N, C, Ho, Wo)."""
    (out_h, out_w), (sh, sw), (dh, dw) = out_hw, stride, dilation
    top, left = r * dh, s * dw
    return padded[:, :, top:top + sh * (out_h - 1) + 1:sh, left:left + sw * (out_w - 1) + 1:sw]


def _pad(x, padding, value=0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


# --------------------------------------------------------------------------- im2col
def im2col(x, kernel_size, stride, padding, dilation):
    """Unfold every receptive field of ``x`` into a column, so a convolution becomes one GEMM.

    cols[(c, r, s), (n, ho, wo)] = x_padded[n, c, r*dh + ho*sh, s*dw + wo*sw]

    x: (N, C, H, W) -> cols: (C*R*S, N*Ho*Wo)
    """
    batch, channels, height, width = x.shape
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding, dilation)
    padded = _pad(x, padding)
    cols = np.empty((channels, *kernel_size, batch, *out_hw), dtype=x.dtype)
    for r in range(kernel_size[0]):
        for s in range(kernel_size[1]):
            # (N, C, Ho, Wo) -> (C, N, Ho, Wo): rows are channels, columns are output pixels
            cols[:, r, s] = _tap(padded, r, s, out_hw, stride, dilation).transpose(1, 0, 2, 3)
    return cols.reshape(channels * kernel_size[0] * kernel_size[1], -1)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """Adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from.

    dx_padded[n, c, r*dh + ho*sh, s*dw + wo*sw] += cols[(c, r, s), (n, ho, wo)]

    cols: (C*R*S, N*Ho*Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    (ph, pw) = padding
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding, dilation)
    cols = cols.reshape(channels, *kernel_size, batch, *out_hw)
    padded = np.zeros((batch, channels, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for r in range(kernel_size[0]):
        for s in range(kernel_size[1]):
            # overlapping windows hit the same pixel, so this must be +=, never =
            _tap(padded, r, s, out_hw, stride, dilation)[...] += cols[:, r, s].transpose(1, 0, 2, 3)
    return padded[:, :, ph:ph + height, pw:pw + width]


# --------------------------------------------------------------------------- conv2d
def conv2d_forward(x, weight, stride, padding, dilation):
    """2-D cross-correlation as one im2col and one matrix product (no bias).

    y[n, k, ho, wo] = sum_{c, r, s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

    With cols = im2col(x) (C*R*S, N*Ho*Wo) and W = w.reshape(K, C*R*S), the sum is W @ cols.

    x: (N, C, H, W), weight: (K, C, R, S) -> y: (N, K, Ho, Wo)
    """
    batch, _, height, width = x.shape
    out_channels = weight.shape[0]
    out_h, out_w = conv_output_hw(height, width, weight.shape[2:], stride, padding, dilation)
    cols = im2col(x, weight.shape[2:], stride, padding, dilation)      # (C*R*S, N*Ho*Wo)
    y = weight.reshape(out_channels, -1) @ cols                         # (K, N*Ho*Wo)
    # the columns are ordered (n, ho, wo): bring the batch axis first
    return np.ascontiguousarray(y.reshape(out_channels, batch, out_h, out_w).transpose(1, 0, 2, 3))


@backward_kernel
def conv2d_backward(grad_output, x, weight, stride, padding, dilation,
                    need_input=True, need_weight=True):
    """Gradients of :func:`conv2d_forward` with respect to x and weight (None where not needed).

    With dY = grad_output as (K, N*Ho*Wo), the layout of W @ cols:

        dcols = W^T @ dY,   dx = col2im(dcols),   dW = dY @ cols^T

    grad_output: (N, K, Ho, Wo), x: (N, C, H, W), weight: (K, C, R, S)
    -> dx: (N, C, H, W) or None, dweight: (K, C, R, S) or None
    """
    out_channels = weight.shape[0]
    w_matrix = weight.reshape(out_channels, -1)                          # (K, C*R*S)
    grad_matrix = grad_output.transpose(1, 0, 2, 3).reshape(out_channels, -1)   # (K, N*Ho*Wo)
    grad_x = grad_weight = None
    if need_input:
        grad_x = col2im(w_matrix.T @ grad_matrix, x.shape, weight.shape[2:], stride, padding,
                        dilation)
    if need_weight:
        # backward unfolds x again rather than keep forward's columns: the textbook keeps
        # only what the op saved (x and weight)
        cols = im2col(x, weight.shape[2:], stride, padding, dilation)   # (C*R*S, N*Ho*Wo)
        grad_weight = (grad_matrix @ cols.T).reshape(weight.shape)
    return grad_x, grad_weight


# --------------------------------------------------------------------------- pooling
def max_pool2d_forward(x, kernel_size, stride, padding):
    """Maximum over each window; padding never wins (it is -inf), as in PyTorch.

    out[n, c, ho, wo] = max_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]
    argmax[n, c, ho, wo] = r*S + s of the first maximum (row-major order)

    x: (N, C, H, W) -> out: (N, C, Ho, Wo), argmax: (N, C, Ho, Wo) int32
    """
    height, width = x.shape[2:]
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding)
    padded = _pad(x, padding, value=-np.inf)
    out = np.full((*x.shape[:2], *out_hw), -np.inf, dtype=x.dtype)
    argmax = np.zeros(out.shape, dtype=np.int32)
    for r in range(kernel_size[0]):
        for s in range(kernel_size[1]):
            candidate = _tap(padded, r, s, out_hw, stride, (1, 1))
            better = candidate > out        # strict: ties keep the earlier tap
            out = np.where(better, candidate, out)
            argmax[better] = r * kernel_size[1] + s
    return out, argmax


@backward_kernel
def max_pool2d_backward(grad_output, argmax, x_shape, kernel_size, stride, padding):
    """Send each output gradient to the input pixel that won its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_output[n, c, ho, wo]  where r*S + s == argmax[n, c, ho, wo]

    grad_output, argmax: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    ph, pw = padding
    out_hw = grad_output.shape[2:]
    padded = np.zeros((batch, channels, height + 2 * ph, width + 2 * pw), dtype=grad_output.dtype)
    for r in range(kernel_size[0]):
        for s in range(kernel_size[1]):
            won = argmax == r * kernel_size[1] + s
            _tap(padded, r, s, out_hw, stride, (1, 1))[...] += np.where(won, grad_output, 0)
    return padded[:, :, ph:ph + height, pw:pw + width]


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Mean over each window, zero padding counted in the divisor (PyTorch's default).

    out[n, c, ho, wo] = 1/(R*S) * sum_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]

    x: (N, C, H, W) -> out: (N, C, Ho, Wo)
    """
    height, width = x.shape[2:]
    out_hw = conv_output_hw(height, width, kernel_size, stride, padding)
    padded = _pad(x, padding)
    out = np.zeros((*x.shape[:2], *out_hw), dtype=x.dtype)
    for r in range(kernel_size[0]):
        for s in range(kernel_size[1]):
            out += _tap(padded, r, s, out_hw, stride, (1, 1))
    out /= kernel_size[0] * kernel_size[1]
    return out


@backward_kernel
def avg_pool2d_backward(grad_output, x_shape, kernel_size, stride, padding):
    """Spread each output gradient evenly over its window.

    dx[n, c, ho*sh + r, wo*sw + s] += grad_output[n, c, ho, wo] / (R*S)

    grad_output: (N, C, Ho, Wo) -> dx: (N, C, H, W)
    """
    batch, channels, height, width = x_shape
    ph, pw = padding
    out_hw = grad_output.shape[2:]
    share = grad_output / (kernel_size[0] * kernel_size[1])
    padded = np.zeros((batch, channels, height + 2 * ph, width + 2 * pw), dtype=grad_output.dtype)
    for r in range(kernel_size[0]):
        for s in range(kernel_size[1]):
            _tap(padded, r, s, out_hw, stride, (1, 1))[...] += share
    return padded[:, :, ph:ph + height, pw:pw + width]


# --------------------------------------------------------------------------- batch norm
def _per_channel(vector):
    """(C,) -> (1, C, 1, 1), so a per-channel value broadcasts over (N, C, H, W)."""
    return vector.reshape(1, -1, 1, 1)


def batch_norm_forward_train(x, weight, bias, eps):
    """Normalize with the batch's own statistics, then scale and shift.

    mean_c = mean_{n,h,w} x,  var_c = mean_{n,h,w} (x - mean_c)^2   (biased)
    y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c

    x: (N, C, H, W), weight, bias: (C,) -> y: (N, C, H, W), mean, var, inv_std: (C,)
    """
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    inv_std = 1.0 / np.sqrt(var + eps)
    y = (x - _per_channel(mean)) * _per_channel(inv_std * weight) + _per_channel(bias)
    return y, mean, var, inv_std


@backward_kernel
def batch_norm_backward(grad_output, x, mean, inv_std, weight):
    """Gradients of training-mode batch norm in closed form (M = N*H*W values per channel).

    x_hat = (x - mean) * inv_std
    dbias   = sum(grad_output)
    dweight = sum(grad_output * x_hat)
    dx = weight * inv_std / M * (M*grad_output - dbias - x_hat * dweight)

    grad_output, x: (N, C, H, W), mean, inv_std, weight: (C,) -> dx: (N, C, H, W), dweight, dbias: (C,)
    """
    count = x.size // x.shape[1]
    x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
    dbias = grad_output.sum(axis=(0, 2, 3))
    dweight = (grad_output * x_hat).sum(axis=(0, 2, 3))
    dx = _per_channel(weight * inv_std / count) * (
        count * grad_output - _per_channel(dbias) - x_hat * _per_channel(dweight))
    return dx, dweight, dbias


# --------------------------------------------------------------------------- relu
def relu_forward(x):
    """y = max(x, 0), elementwise.  x: any shape -> same shape."""
    return np.maximum(x, 0)


@backward_kernel
def relu_backward(grad_output, out):
    """dx = 0 where the output is <= 0, else grad_output.  grad_output, out: same shape.

    Written as "zero where out <= 0" rather than "grad_output where out > 0", as PyTorch does: the
    two differ only at NaN, where the comparison is false and grad_output passes through.
    """
    return np.where(out <= 0, 0, grad_output).astype(grad_output.dtype, copy=False)
