"""2-D convolution by im2col: unfold the receptive fields into columns, then one GEMM.

    y[n, k, ho, wo] = b[k] + sum_{c, r, s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

With ``cols = im2col(x)`` of shape (C*R*S, N*Ho*Wo) and ``W = w.reshape(K, C*R*S)``
the sum is the matrix product ``W @ cols`` (K, N*Ho*Wo).  Backward reuses the same
two matrices:

    dW = dY @ cols^T,    dcols = W^T @ dY,    dx = col2im(dcols),    db = sum over n, ho, wo of dY
"""
from ..autograd import Function
from ..backend import kernels_for
from ..backend.shapes import conv_output_size
from ._checks import check_same_dtype, check_tensor, check_window_fits, pair


class Conv2d(Function):
    """The convolution as an autograd Function (see the module docstring for the maths)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        kernels = kernels_for(x, weight, bias, op="conv2d")
        out_channels, _, kernel_h, kernel_w = weight.shape
        batch, _, height, width = x.shape
        out_h = conv_output_size(height, kernel_h, stride[0], padding[0], dilation[0])
        out_w = conv_output_size(width, kernel_w, stride[1], padding[1], dilation[1])

        cols = kernels.im2col(x, (kernel_h, kernel_w), stride, padding, dilation)
        out = weight.reshape(out_channels, -1) @ cols                  # (K, N*Ho*Wo)
        out = out.reshape(out_channels, batch, out_h, out_w).transpose(1, 0, 2, 3)
        out = kernels.xp.ascontiguousarray(out)                        # (N, K, Ho, Wo)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)

        ctx.save_for_backward(cols, weight)
        ctx.geometry = (x.shape, (kernel_h, kernel_w), stride, padding, dilation)
        ctx.kernels = kernels
        return out

    @staticmethod
    def backward(ctx, grad):
        cols, weight = ctx.saved
        x_shape, kernel_size, stride, padding, dilation = ctx.geometry
        out_channels = weight.shape[0]
        # (N, K, Ho, Wo) -> (K, N*Ho*Wo), the layout of the forward GEMM's output
        grad_matrix = grad.transpose(1, 0, 2, 3).reshape(out_channels, -1)

        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_cols = weight.reshape(out_channels, -1).T @ grad_matrix
            grad_x = ctx.kernels.col2im(grad_cols, x_shape, kernel_size, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            # dW = dY @ cols^T, computed as (cols @ dY^T)^T: the same numbers, but BLAS
            # parallelizes a long outer dimension far better than a long inner one
            grad_weight = (cols @ grad_matrix.T).T.reshape(weight.shape)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None, None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d`` (groups=1).

    y[n, k, ho, wo] = b[k] + sum_{c,r,s} w[k, c, r, s] * x_pad[n, c, ho*sh + r*dh, wo*sw + s*dw]

    input: (N, C, H, W), weight: (K, C, R, S), bias: (K,) or None -> (N, K, Ho, Wo)
    Ho = (H + 2*ph - dh*(R-1) - 1) // sh + 1, and likewise Wo.
    """
    op = "conv2d"
    check_tensor(op, "input", input, ndim=4)
    check_tensor(op, "weight", weight, ndim=4)
    if bias is not None:
        check_tensor(op, "bias", bias, ndim=1)
    check_same_dtype(op, input=input, weight=weight, bias=bias)
    stride = pair(op, "stride", stride, minimum=1)
    padding = pair(op, "padding", padding, minimum=0)
    dilation = pair(op, "dilation", dilation, minimum=1)
    if input.shape[1] != weight.shape[1]:
        raise ValueError(
            f"{op}: input has {input.shape[1]} channels (shape {input.shape}) but weight expects "
            f"{weight.shape[1]} (shape {weight.shape} is (out_channels, in_channels, R, S))")
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},) "
                         f"-- one value per output channel of weight {weight.shape}")
    check_window_fits(op, input.shape, weight.shape[2:], padding, dilation)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation)
