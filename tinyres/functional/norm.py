"""Batch normalization (Ioffe & Szegedy, 2015), with exactly PyTorch's semantics.

Training mode normalizes each channel with the batch's own statistics over N, H, W
and updates the running statistics in place:

    y = (x - mean_B) / sqrt(var_B + eps) * weight + bias
    running_mean <- (1 - momentum) * running_mean + momentum * mean_B
    running_var  <- (1 - momentum) * running_var  + momentum * var_B * M / (M - 1)

(M = N*H*W; the running variance is the unbiased estimate, the normalization uses
the biased one).  Evaluation mode is a fixed per-channel affine map using the
running statistics, so it is written with ordinary tensor operators.
"""
from ..autograd import Function
from ..backend import kernels_for, xp_of
from ..tensor import Tensor
from .checks import check_same_dtype, check_tensor


class BatchNormTrain(Function):
    """Training-mode batch norm; backward uses the closed-form gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        kernels = kernels_for(x, weight, running_mean, op="batch_norm")
        xp, channels = kernels.xp, x.shape[1]
        scale = weight if weight is not None else xp.ones(channels, dtype=x.dtype)
        shift = bias if bias is not None else xp.zeros(channels, dtype=x.dtype)
        y, mean, var, inv_std = kernels.batch_norm_forward_train(x, scale, shift, eps)
        if running_mean is not None:
            count = x.size // channels
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (count / (count - 1))
        ctx.save_for_backward(x, mean, inv_std, scale)
        ctx.kernels = kernels
        return y

    @staticmethod
    def backward(ctx, grad_output):
        x, mean, inv_std, scale = ctx.saved
        grad_x, grad_weight, grad_bias = ctx.kernels.batch_norm_backward(
            grad_output, x, mean, inv_std, scale)
        return grad_x, grad_weight, grad_bias, None, None, None, None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    training:  y = (x - mean_B) / sqrt(var_B + eps) * weight + bias, running stats updated in place
    eval:      y = (x - running_mean) / sqrt(running_var + eps) * weight + bias

    input: (N, C, H, W); running_mean, running_var: (C,) arrays or None; weight, bias: (C,) Tensors or None
    """
    op = "batch_norm"
    check_tensor(op, "input", input, ndim=4)
    check_same_dtype(op, input=input, weight=weight, bias=bias)
    channels = input.shape[1]
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and check_tensor(op, name, value, ndim=1).shape != (channels,):
            raise ValueError(f"{op}: {name} has shape {value.shape}, expected ({channels},) for input {input.shape}")
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is None:
            continue
        if isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a plain array (a buffer), not a Tensor; pass tensor.data")
        if value.shape != (channels,) or value.dtype != input.dtype:
            raise ValueError(f"{op}: {name} must have shape ({channels},) and dtype {input.dtype}, "
                             f"got shape {value.shape} and dtype {value.dtype}")
    if training:
        if channels == 0 or input.size // channels <= 1:
            raise ValueError(f"{op}: training mode needs more than one value per channel, "
                             f"got input shape {input.shape}")
        return BatchNormTrain.apply(input, weight, bias, running_mean, running_var,
                                    momentum=momentum, eps=eps)
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: evaluation mode (training=False) needs running_mean and running_var")
    xp = xp_of(input.data)
    inv_std = Tensor(1.0 / xp.sqrt(running_var + eps))
    scale = inv_std if weight is None else weight * inv_std
    shift = -(Tensor(running_mean) * scale)
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(1, channels, 1, 1) + shift.reshape(1, channels, 1, 1)
