"""2-D convolution by im2col: unfold the receptive fields into columns, then one GEMM.

    y[n, k, ho, wo] = b[k] + sum_{c, r, s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

With ``cols = im2col(x)`` of shape (C*R*S, N*Ho*Wo) and ``W = w.reshape(K, C*R*S)``
the sum is the matrix product ``W @ cols`` (K, N*Ho*Wo).  Backward reuses the same
two matrices:

    dW = dY @ cols^T,    dcols = W^T @ dY,    dx = col2im(dcols),    db = sum over n, ho, wo of dY

This module checks the arguments, calls the backend's ``conv2d_forward`` and
``conv2d_backward`` kernels, adds the bias and keeps what backward needs (x and w).
The textbook kernels are in ``backend/numpy_kernels.py``: one im2col, one GEMM, col2im.
The speed lives in the Numba backend: ``backend/cpu_conv.py`` chooses Winograd's
F(2x2, 3x3) for 3x3 stride-1 kernels (``backend/cpu_winograd.py``, with its readable
twin in ``backend/winograd.py``) and otherwise runs im2col in cache-sized batch chunks
spread over the cores.  Every path computes the same sums; the tests hold them to it.
"""
from ..autograd import Function
from ..backend import kernels_for
from .checks import check_same_dtype, check_tensor, check_window_fits, pair, require_default


class Conv2d(Function):
    """The convolution as an autograd Function (see the module docstring for the maths)."""

    @staticmethod
    def cost(ctx, inputs, output):
        """Forward 2*N*K*Ho*Wo*C*R*S flops (a multiply-add is two); backward as much per dx and dW wanted."""
        x, weight = inputs[0], inputs[1]
        batch, out_channels, out_h, out_w = output.shape
        _, in_channels, kernel_h, kernel_w = weight.shape
        flops = 2 * batch * out_channels * out_h * out_w * in_channels * kernel_h * kernel_w
        want_x, want_weight = ctx.needs_input_grad[:2]
        return {"flops": flops, "bytes": x.nbytes + weight.nbytes + output.nbytes,
                "backward_flops": (want_x + want_weight) * flops,
                "backward_bytes": output.nbytes + x.nbytes + weight.nbytes
                + want_x * x.nbytes + want_weight * weight.nbytes}

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        kernels = kernels_for(x, weight, bias, op="conv2d")
        out = kernels.conv2d_forward(x, weight, stride, padding, dilation)   # (N, K, Ho, Wo)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation)
        ctx.kernels = kernels
        return out

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved
        want_x, want_w, want_b = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        if want_x or want_w:
            grad_x, grad_weight = ctx.kernels.conv2d_backward(
                grad_output, x, weight, *ctx.geometry, need_input=want_x, need_weight=want_w)
        if want_b:
            grad_bias = grad_output.sum(axis=(0, 2, 3))
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
