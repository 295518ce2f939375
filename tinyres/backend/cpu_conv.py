"""How the Numba backend runs a convolution on the CPU: which algorithm, and how it uses the cores.

The maths is the textbook's (``numpy_kernels.conv2d_forward``): im2col, then one matrix
product.  Three strategies make it fast on a CPU, and :func:`conv2d_forward` /
:func:`conv2d_backward` pick one per call:

* **Winograd F(2x2, 3x3)** (``cpu_winograd.py``) for 3x3 kernels at stride 1 and
  dilation 1 with 8 input channels or more -- most of a ResNet.  It needs 16
  multiplications per 2x2 output tile where im2col needs 36, and its transforms are
  cheaper than im2col's copies.
* **One matrix product per image** for 1x1 kernels without padding (the bottleneck blocks'
  and the shortcuts' convolutions): there im2col would only copy x, so
  ``y[n] = W @ x[n]`` runs on x as it lies, in chunks of images over the cores.
* **im2col in batch chunks** for every other shape, below.

Why chunks rather than one big im2col and one big GEMM?  For the first ResNet-20 stage at
batch 128 the column matrix is 75 MB: far larger than the caches, so im2col, the GEMM and
col2im would each stream it through main memory, and BLAS runs its skinny (16 x 131072)
products at a third of its square-matrix speed.  Cut the batch into chunks of a few
samples (``cpu_threads.chunk_size``) and each chunk's columns stay in one core's L2 cache
from the moment im2col writes them until the GEMM has read them.  The chunks are spread
over the cores (``cpu_threads.map_chunks``), each core running the whole chain on its own.

Backward computes each chunk's columns again instead of keeping the whole matrix from
forward: recomputing a chunk that stays in cache is cheaper than reading tens of megabytes
back from memory, and it frees that memory.  dW is the sum of the chunks' dW, added in
chunk order, so it rounds the same way however many threads ran.  The products with W go
through ``cpu_gemm.matmul``, which hands a wide product to the BLAS in blocks of columns it
runs faster.

The Numba backend passes its own ``im2col`` and ``col2im`` in, so this module needs no
kernel module of its own.
"""
import contextlib

import numpy as np

from . import cpu_winograd
from .cpu_gemm import matmul, stacked_matmul
from .cpu_threads import chunk_size, map_chunks
from .shapes import conv_output_hw


_fast_paths_allowed = True      # False inside im2col_only(): every shape runs chunked im2col


# Below this many input channels im2col wins: its column matrix has only C*9 rows, while
# Winograd's output transform, paid per output channel, costs more than the products it
# saves (measured: docs/results/measurements.md).  The first layer of a ResNet is such a case.
WINOGRAD_MIN_CHANNELS = 8


def uses_winograd(weight_shape, stride, padding, dilation):
    """True when :func:`conv2d_forward` takes the Winograd path for this layer.

    weight_shape: (K, C, R, S).  3x3 kernels at stride 1 and dilation 1 with padding 0..2
    and at least :data:`WINOGRAD_MIN_CHANNELS` input channels, unless inside
    :func:`im2col_only`.
    """
    return _fast_paths_allowed and weight_shape[1] >= WINOGRAD_MIN_CHANNELS \
        and cpu_winograd.supports(weight_shape[2:], stride, padding, dilation)


def uses_pointwise(kernel_size, padding):
    """True when :func:`conv2d_forward` runs a 1x1 convolution as one product per image.

    1x1 kernels without padding (any stride; dilation means nothing for them), unless inside
    :func:`im2col_only`.
    """
    return _fast_paths_allowed and tuple(kernel_size) == (1, 1) and tuple(padding) == (0, 0)


def _takes_winograd(x, weight, stride, padding, dilation):
    """Whether this call runs Winograd: its geometry qualifies and the batch is not empty.

    An empty batch (a model summary's) runs im2col, since Winograd's filter transform would
    be all of its cost.
    """
    return x.shape[0] > 0 and uses_winograd(weight.shape, stride, padding, dilation)


@contextlib.contextmanager
def im2col_only():
    """Run every convolution in the block by chunked im2col, Winograd's and 1x1 shapes too.

    For comparing the algorithms on the same layer (lesson 8, the benchmarks, the tests).

    >>> with im2col_only():
    ...     y = F.conv2d(x, w, padding=1)
    """
    global _fast_paths_allowed
    previous, _fast_paths_allowed = _fast_paths_allowed, False
    try:
        yield
    finally:
        _fast_paths_allowed = previous


def conv2d_forward(x, weight, stride, padding, dilation, im2col):
    """y = conv2d(x, weight) without bias: Winograd or one product per image where they
    apply, else chunked im2col.

    x: (N, C, H, W), weight: (K, C, R, S) -> y: (N, K, Ho, Wo)
    """
    if _takes_winograd(x, weight, stride, padding, dilation):
        return cpu_winograd.conv3x3_forward(x, weight, padding)
    if uses_pointwise(weight.shape[2:], padding):
        return _pointwise_forward(x, weight, stride)
    batch, _, height, width = x.shape
    out_channels = weight.shape[0]
    out_h, out_w = conv_output_hw(height, width, weight.shape[2:], stride, padding, dilation)
    w_matrix = weight.reshape(out_channels, -1)                          # (K, C*R*S)
    out = np.empty((batch, out_channels, out_h, out_w), dtype=x.dtype)

    def forward_chunk(start, stop):
        cols = im2col(x[start:stop], weight.shape[2:], stride, padding, dilation)  # (C*R*S, n*Ho*Wo)
        out_matrix = matmul(w_matrix, cols)                              # (K, n*Ho*Wo)
        out[start:stop] = out_matrix.reshape(out_channels, stop - start, out_h, out_w) \
            .transpose(1, 0, 2, 3)                                       # (n, K, Ho, Wo)

    map_chunks(forward_chunk, batch, _chunk(x, weight, out_h, out_w))
    return out


def conv2d_backward(grad_output, x, weight, stride, padding, dilation, need_input, need_weight,
                    im2col, col2im):
    """dx and dW of :func:`conv2d_forward` (None where not needed), by the same strategy.

        dcols = W^T @ dY,   dx = col2im(dcols),   dW = dY @ cols^T   (per chunk, dW summed)

    grad_output: (N, K, Ho, Wo), x: (N, C, H, W), weight: (K, C, R, S)
    -> dx: (N, C, H, W) or None, dweight: (K, C, R, S) or None
    """
    kernel_size = weight.shape[2:]
    if _takes_winograd(x, weight, stride, padding, dilation):
        grad_x = cpu_winograd.conv3x3_backward_input(grad_output, weight, padding, x.shape) \
            if need_input else None
        grad_weight = cpu_winograd.conv3x3_backward_weight(grad_output, x, padding) \
            if need_weight else None
        return grad_x, grad_weight
    if uses_pointwise(kernel_size, padding):
        return _pointwise_backward(grad_output, x, weight, stride, need_input, need_weight)
    out_channels = weight.shape[0]
    w_matrix = weight.reshape(out_channels, -1)                          # (K, C*R*S)
    grad_x = np.empty_like(x) if need_input else None

    def backward_chunk(start, stop):
        # (n, K, Ho, Wo) -> (K, n*Ho*Wo), the layout of W @ cols
        grad_matrix = np.ascontiguousarray(
            grad_output[start:stop].transpose(1, 0, 2, 3)).reshape(out_channels, -1)
        if need_input:
            grad_cols = matmul(w_matrix.T, grad_matrix)                  # (C*R*S, n*Ho*Wo)
            grad_x[start:stop] = col2im(grad_cols, x[start:stop].shape, kernel_size, stride,
                                        padding, dilation)
        if not need_weight:
            return None
        cols = im2col(x[start:stop], kernel_size, stride, padding, dilation)  # (C*R*S, n*Ho*Wo)
        # dW = dY @ cols^T, computed as (cols @ dY^T)^T: the same numbers, but BLAS runs a
        # long outer dimension far faster than a long inner one
        return cols @ grad_matrix.T                                      # (C*R*S, K)

    if not (need_input or need_weight):
        return None, None
    out_h, out_w = grad_output.shape[2:]
    partial_dw = map_chunks(backward_chunk, x.shape[0], _chunk(x, weight, out_h, out_w))
    grad_weight = None
    if need_weight:   # the start value keeps an empty batch's gradient a zero matrix
        zero = np.zeros((w_matrix.shape[1], out_channels), dtype=weight.dtype)
        grad_weight = sum(partial_dw, zero).T.reshape(weight.shape)
    return grad_x, grad_weight


def _sampled(x, stride):
    """The pixels a 1x1 kernel at ``stride`` reads, as (N, C, Ho*Wo): x[:, :, ::sh, ::sw]."""
    if tuple(stride) != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    batch, channels, out_h, out_w = x.shape
    return x.reshape(batch, channels, out_h * out_w)   # a copy only where the stride skipped pixels


def _pointwise_forward(x, weight, stride):
    """y[n] = W @ x[n] over the sampled pixels: a 1x1 convolution needs no im2col.

    The images are spread over the cores in chunks, as im2col's are, so the products run
    on one BLAS thread each: a product left to the BLAS's own threads would leave them
    spinning on the cores for a while after it returns, slowing whatever runs next.

    x: (N, C, H, W), weight: (K, C, 1, 1) -> y: (N, K, Ho, Wo), Ho = ceil(H / sh)
    """
    batch, _, height, width = x.shape
    out_channels = weight.shape[0]
    out_h, out_w = conv_output_hw(height, width, (1, 1), stride, (0, 0), (1, 1))
    w_matrix, sampled = weight.reshape(weight.shape[:2]), _sampled(x, stride)   # (K, C), (N, C, P)
    y = np.empty((batch, out_channels, out_h * out_w), dtype=x.dtype)

    def forward_chunk(start, stop):
        stacked_matmul(w_matrix, sampled[start:stop], out=y[start:stop])

    map_chunks(forward_chunk, batch, _pointwise_chunk(sampled, out_channels))
    return y.reshape(batch, out_channels, out_h, out_w)


def _pointwise_backward(grad_output, x, weight, stride, need_input, need_weight):
    """dx and dW of :func:`_pointwise_forward` (None where not needed), chunk by chunk.

        dx[n] = W^T @ dY[n]  (on the sampled pixels, zero on the others),
        dW = sum_n dY[n] @ x[n]^T   (summed in chunk order, as the im2col path does)

    grad_output: (N, K, Ho, Wo), x: (N, C, H, W), weight: (K, C, 1, 1)
    """
    if not (need_input or need_weight):
        return None, None
    w_matrix = weight.reshape(weight.shape[:2])                          # (K, C)
    batch, out_channels, out_h, out_w = grad_output.shape
    grad_matrix = grad_output.reshape(batch, out_channels, out_h * out_w)   # (N, K, P)
    sampled = _sampled(x, stride) if need_weight else None              # (N, C, P)
    grad_sampled = np.empty((batch, x.shape[1], out_h * out_w), dtype=x.dtype) \
        if need_input else None

    def backward_chunk(start, stop):
        if need_input:
            stacked_matmul(w_matrix.T, grad_matrix[start:stop], out=grad_sampled[start:stop])
        if need_weight:
            return np.matmul(grad_matrix[start:stop],
                             sampled[start:stop].transpose(0, 2, 1)).sum(axis=0)   # (K, C)
        return None

    partial_dw = map_chunks(backward_chunk, batch, _pointwise_chunk(grad_matrix, x.shape[1]))
    grad_x = grad_weight = None
    if need_input:
        if tuple(stride) == (1, 1):
            grad_x = grad_sampled.reshape(x.shape)
        else:
            grad_x = np.zeros_like(x)
            grad_x[:, :, ::stride[0], ::stride[1]] = grad_sampled.reshape(
                x.shape[:2] + (out_h, out_w))
    if need_weight:   # the start value keeps an empty batch's gradient a zero matrix
        zero = np.zeros(w_matrix.shape, dtype=weight.dtype)
        grad_weight = sum(partial_dw, zero).reshape(weight.shape)
    return grad_x, grad_weight


def _pointwise_chunk(matrices, other_channels):
    """Images per chunk of a 1x1 convolution: its (channels, pixels) matrix and the other side's."""
    batch, channels, pixels = matrices.shape
    return chunk_size(batch, (channels + other_channels) * pixels * matrices.dtype.itemsize)


def _chunk(x, weight, out_h, out_w):
    """Samples per chunk: as many as fit one sample's C*R*S rows of Ho*Wo column entries each."""
    _, in_channels, kernel_h, kernel_w = weight.shape
    column_bytes = in_channels * kernel_h * kernel_w * out_h * out_w * x.dtype.itemsize
    return chunk_size(x.shape[0], column_bytes)
