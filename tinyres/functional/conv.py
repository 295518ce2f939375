"""2-D convolution by im2col: unfold the receptive fields into columns, then one GEMM.

    y[n, k, ho, wo] = b[k] + sum_{c, r, s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

With ``cols = im2col(x)`` of shape (C*R*S, N*Ho*Wo) and ``W = w.reshape(K, C*R*S)``
the sum is the matrix product ``W @ cols`` (K, N*Ho*Wo).  Backward reuses the same
two matrices:

    dW = dY @ cols^T,    dcols = W^T @ dY,    dx = col2im(dcols),    db = sum over n, ho, wo of dY

Every sample's columns are independent, so the batch is processed in chunks of a few
samples (``kernels.chunk_size``), which the CPU backends spread over their cores
(``kernels.map_chunks``; see ``backend/cpu_threads.py`` for why this is several times
faster than one batch-sized GEMM).  Backward computes each chunk's columns again
instead of keeping the whole (C*R*S, N*Ho*Wo) matrix from forward: recomputing a chunk
that stays in cache is cheaper than reading a matrix of tens of megabytes back from
memory, and it frees that memory.  dW is the sum of the chunks' dW, added in chunk order.
The products with W go through ``kernels.matmul``, which on the CPU hands a wide product
to the BLAS in blocks of columns it runs faster (``backend/cpu_gemm.py``).
"""
from ..autograd import Function
from ..backend import kernels_for
from ..backend.shapes import conv_output_size
from ._checks import check_same_dtype, check_tensor, check_window_fits, pair, require_default


class Conv2d(Function):
    """The convolution as an autograd Function (see the module docstring for the maths)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        kernels = kernels_for(x, weight, bias, op="conv2d")
        xp = kernels.xp
        out_channels, _, kernel_h, kernel_w = weight.shape
        batch, _, height, width = x.shape
        out_h = conv_output_size(height, kernel_h, stride[0], padding[0], dilation[0])
        out_w = conv_output_size(width, kernel_w, stride[1], padding[1], dilation[1])
        geometry = ((kernel_h, kernel_w), stride, padding, dilation)
        w_matrix = weight.reshape(out_channels, -1)                    # (K, C*R*S)
        out = xp.empty((batch, out_channels, out_h, out_w), dtype=x.dtype)

        def forward_chunk(start, stop):
            cols = kernels.im2col(x[start:stop], *geometry)             # (C*R*S, n*Ho*Wo)
            out_matrix = kernels.matmul(w_matrix, cols)              # (K, n*Ho*Wo)
            out[start:stop] = out_matrix.reshape(out_channels, stop - start, out_h, out_w) \
                .transpose(1, 0, 2, 3)                                  # (n, K, Ho, Wo)

        chunk = kernels.chunk_size(batch, _column_bytes_per_sample(x, weight, out_h, out_w))
        kernels.map_chunks(forward_chunk, batch, chunk)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)

        ctx.save_for_backward(x, weight)
        ctx.geometry = geometry
        ctx.chunk = chunk
        ctx.kernels = kernels
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved
        kernels, geometry = ctx.kernels, ctx.geometry
        out_channels = weight.shape[0]
        w_matrix = weight.reshape(out_channels, -1)                    # (K, C*R*S)
        want_x, want_w, want_b = ctx.needs_input_grad[:3]
        grad_x = kernels.xp.empty_like(x) if want_x else None
        grad_weight = grad_bias = None

        def backward_chunk(start, stop):
            # (n, K, Ho, Wo) -> (K, n*Ho*Wo), the layout of W @ cols
            grad_matrix = kernels.xp.ascontiguousarray(
                grad[start:stop].transpose(1, 0, 2, 3)).reshape(out_channels, -1)
            if want_x:
                grad_cols = kernels.matmul(w_matrix.T, grad_matrix)  # (C*R*S, n*Ho*Wo)
                grad_x[start:stop] = kernels.col2im(grad_cols, x[start:stop].shape, *geometry)
            if not want_w:
                return None
            cols = kernels.im2col(x[start:stop], *geometry)             # (C*R*S, n*Ho*Wo)
            # dW = dY @ cols^T, computed as (cols @ dY^T)^T: the same numbers, but BLAS
            # runs a long outer dimension far faster than a long inner one
            return cols @ grad_matrix.T                                 # (C*R*S, K)

        # only dx and dW need the chunks; db is one sum over the whole batch
        partial_dw = kernels.map_chunks(backward_chunk, x.shape[0], ctx.chunk) \
            if want_x or want_w else []
        if want_w:   # the start value keeps an empty batch's gradient a zero matrix
            zero = kernels.xp.zeros((w_matrix.shape[1], out_channels), dtype=weight.dtype)
            grad_weight = sum(partial_dw, zero).T.reshape(weight.shape)
        if want_b:
            grad_bias = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None, None


def conv_padding(op, padding, kernel_size, stride, dilation):
    """PyTorch's ``padding`` argument -> (padding on both sides, extra padding after).

    An int or a pair pads both sides alike (no extra).  ``"valid"`` is no padding.
    ``"same"`` keeps the size at stride 1: the total d*(k-1) of each axis is split as
    total // 2 before and the rest after, so an odd total pads one more at the end.
    """
    if not isinstance(padding, str):
        return pair(op, "padding", padding, minimum=0), (0, 0)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a pair of ints, "
                         f"got {padding!r}")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1 (the output keeps the input's "
                         f"size only then), got stride={stride}; pad with numbers instead")
    totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    # total // 2 on both sides, and an odd total's last row or column after the image
    return tuple(total // 2 for total in totals), tuple(total % 2 for total in totals)


def _column_bytes_per_sample(x, weight, out_h, out_w):
    """Bytes of one sample's im2col columns: C*R*S rows of Ho*Wo numbers."""
    _, in_channels, kernel_h, kernel_w = weight.shape
    return in_channels * kernel_h * kernel_w * out_h * out_w * x.dtype.itemsize


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    y[n, k, ho, wo] = b[k] + sum_{c,r,s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

    input: (N, C, H, W), weight: (K, C, R, S), bias: (K,) or None -> (N, K, Ho, Wo)
    Ho = (H + 2*ph - dh*(R-1) - 1) // sh + 1, and likewise Wo.

    ``padding`` is an int, a pair (ph, pw), ``"valid"`` (no padding) or ``"same"`` (Ho = H,
    Wo = W; stride 1 only): "same" pads dh*(R-1) rows in all, and when that is odd the
    extra row goes at the bottom (and the extra column at the right), as PyTorch does.
    ``groups`` must be 1: every filter sees all input channels.
    """
    op = "conv2d"
    check_tensor(op, "input", input, ndim=4)
    check_tensor(op, "weight", weight, ndim=4)
    if bias is not None:
        check_tensor(op, "bias", bias, ndim=1)
    check_same_dtype(op, input=input, weight=weight, bias=bias)
    require_default(op, "groups", groups, 1, "every filter sees all input channels")
    stride = pair(op, "stride", stride, minimum=1)
    dilation = pair(op, "dilation", dilation, minimum=1)
    padding, extra = conv_padding(op, padding, weight.shape[2:], stride, dilation)
    if input.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{op}: input has {input.shape[1]} channels (shape {input.shape}) but weight expects "
            f"{weight.shape[1]} (shape {weight.shape} is (out_channels, in_channels, R, S))")
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},) "
                         f"-- one value per output channel of weight {weight.shape}")
    if extra != (0, 0):   # "same" with an odd total: one more row / column after the image
        input = input.pad(((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    check_window_fits(op, input.shape, weight.shape[2:], padding, dilation)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation)
