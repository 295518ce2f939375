"""The fully connected layer: y = x W^T + b, one op with its own backward.

    dx = grad_output W,    dW = (x^T grad_output)^T,    db = sum over the batch of grad_output
"""
from ..autograd import Function
from .checks import check_same_dtype, check_tensor


class Linear(Function):
    """The fully connected layer as an autograd Function (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = x @ weight.T                                         # (N, out_features)
        return out if bias is None else out + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved
        want_x, want_weight, want_bias = ctx.needs_input_grad
        grad_x = grad_output @ weight if want_x else None              # (N, in_features)
        # (x^T grad_output)^T rather than grad_output^T x: the product that the tensor
        # expression x @ W.T + b sends back through its matmul and transpose, so both
        # agree to the last bit
        grad_weight = (x.T @ grad_output).T if want_weight else None   # (out_features, in_features)
        grad_bias = grad_output.sum(axis=0) if want_bias else None     # (out_features,)
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def cost(ctx, inputs, output):
        """Forward 2*N*in*out flops (a multiply-add is two); backward as much per dx and dW wanted."""
        x, weight, bias = inputs
        flops = 2 * x.shape[0] * weight.shape[0] * weight.shape[1]
        want_x, want_weight = ctx.needs_input_grad[:2]
        bias_bytes = 0 if bias is None else bias.nbytes
        return {"flops": flops, "bytes": x.nbytes + weight.nbytes + bias_bytes + output.nbytes,
                "backward_flops": (want_x + want_weight) * flops,
                "backward_bytes": output.nbytes + x.nbytes + weight.nbytes
                + want_x * x.nbytes + want_weight * weight.nbytes}


def linear(input, weight, bias=None):
    """Affine map, as ``torch.nn.functional.linear``: y = x W^T + b.

    input: (N, in_features), weight: (out_features, in_features), bias: (out_features,) -> (N, out_features)
    """
    op = "linear"
    check_tensor(op, "input", input, ndim=2)
    check_tensor(op, "weight", weight, ndim=2)
    check_same_dtype(op, input=input, weight=weight, bias=bias)
    if input.shape[1] != weight.shape[1]:
        raise ValueError(f"{op}: input has {input.shape[1]} features (shape {input.shape}) but weight "
                         f"{weight.shape} expects {weight.shape[1]} (weight is (out_features, in_features))")
    if bias is not None:
        if check_tensor(op, "bias", bias, ndim=1).shape[0] != weight.shape[0]:
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    return Linear.apply(input, weight, bias)
