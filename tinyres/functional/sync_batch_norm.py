"""Batch normalization whose statistics are those of the whole batch, spread over MPI ranks.

Each rank holds B/N images.  Plain batch norm would normalize them with their own mean
and variance; synchronized batch norm normalizes with the statistics of all B, so N
ranks compute exactly what one process with the whole batch computes.  Per channel,
with M = the number of values over all ranks:

    forward:   S1 = sum(x), S2 = sum(x^2)   summed over the ranks (one Allreduce)
               mean = S1 / M,  var = S2 / M - mean^2,  x_hat = (x - mean) / sqrt(var + eps)
               y = x_hat * weight + bias
    backward:  g1 = sum(grad_output), g2 = sum(grad_output * x_hat)   summed over the ranks (one Allreduce)
               dx = weight / sqrt(var + eps) / M * (M grad_output - g1 - x_hat g2)
               dweight, dbias = this rank's sum(grad_output * x_hat), sum(grad_output)

dweight and dbias stay local: ``DistributedDataParallel`` averages them with every other
gradient.  The sums are taken in float64, which keeps S2 / M - mean^2 accurate for
float32 inputs.
"""
from .. import distributed as dist
from ..autograd import Function
from ..backend import xp_of

CHANNEL_AXES = (0, 2, 3)


def _per_channel(values):
    return values.reshape(1, -1, 1, 1)


class SyncBatchNormTrain(Function):
    """Training-mode batch norm with the statistics of every rank's batch."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        xp, channels = xp_of(x), x.shape[1]
        local = xp.concatenate([x.sum(axis=CHANNEL_AXES, dtype=xp.float64),
                                (x * x).sum(axis=CHANNEL_AXES, dtype=xp.float64),
                                xp.asarray([x.size // channels], dtype=xp.float64)])
        totals = dist.all_reduce(local, op="sum")
        count = float(totals[-1])
        mean = totals[:channels] / count
        var = xp.maximum(totals[channels:2 * channels] / count - mean * mean, 0.0)
        inv_std = 1.0 / xp.sqrt(var + eps)
        x_hat = ((x - _per_channel(mean)) * _per_channel(inv_std)).astype(x.dtype, copy=False)
        scale = weight if weight is not None else xp.ones(channels, dtype=x.dtype)
        shift = bias if bias is not None else xp.zeros(channels, dtype=x.dtype)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
            running_var *= 1 - momentum
            running_var += (momentum * var * (count / (count - 1))).astype(running_var.dtype)
        ctx.save_for_backward(x_hat, inv_std.astype(x.dtype), scale)
        ctx.count = count
        return x_hat * _per_channel(scale) + _per_channel(shift)

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, inv_std, scale = ctx.saved
        xp, channels = xp_of(grad_output), grad_output.shape[1]
        grad_bias = grad_output.sum(axis=CHANNEL_AXES)
        grad_weight = (grad_output * x_hat).sum(axis=CHANNEL_AXES)
        totals = dist.all_reduce(xp.concatenate([grad_bias, grad_weight]).astype(xp.float64),
                                 op="sum")
        sum_dy = _per_channel(totals[:channels].astype(grad_output.dtype))
        sum_dy_x_hat = _per_channel(totals[channels:].astype(grad_output.dtype))
        count = ctx.count
        grad_x = _per_channel(scale * inv_std / count) * (
            count * grad_output - sum_dy - x_hat * sum_dy_x_hat)
        return grad_x, grad_weight, grad_bias, None, None, None, None


def sync_batch_norm(input, running_mean, running_var, weight=None, bias=None, momentum=0.1,
                    eps=1e-5):
    """Training-mode batch norm over the batches of every rank (see the module docstring).

    input: (N, C, H, W) this rank's share; running_mean, running_var: (C,) arrays or None,
    updated in place with the statistics of all ranks (the same on every rank);
    weight, bias: (C,) Tensors or None -> (N, C, H, W).
    """
    return SyncBatchNormTrain.apply(input, weight, bias, running_mean, running_var,
                                    momentum=momentum, eps=eps)
