"""Log-softmax and the cross-entropy loss, both numerically stable.

Subtracting the row maximum before exponentiating changes nothing mathematically
(it cancels in the ratio) but keeps ``exp`` from overflowing:

    log_softmax(x)_j = (x_j - m) - log sum_i exp(x_i - m),    m = max_i x_i
"""
import numpy as np

from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor
from ._checks import check_tensor


def _log_softmax(x, axis):
    xp = xp_of(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """y = log_softmax(x);  dx = dy - softmax(x) * sum_j dy_j."""

    @staticmethod
    def forward(ctx, x, axis):
        out = _log_softmax(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        softmax = xp_of(out).exp(out)
        return grad - softmax * grad.sum(axis=ctx.axis, keepdims=True), None


class CrossEntropy(Function):
    """L = -1/N sum_n log_softmax(x_n)[t_n];  dx = (softmax(x) - onehot(t)) / N."""

    @staticmethod
    def forward(ctx, logits, target):
        xp = xp_of(logits)
        log_probs = _log_softmax(logits, axis=1)
        rows = xp.arange(logits.shape[0])
        ctx.save_for_backward(log_probs, target)
        return -log_probs[rows, target].mean()

    @staticmethod
    def backward(ctx, grad):
        log_probs, target = ctx.saved
        xp = xp_of(log_probs)
        grad_logits = xp.exp(log_probs)
        grad_logits[xp.arange(target.shape[0]), target] -= 1
        return grad_logits * (grad / target.shape[0]), None


def log_softmax(input, dim):
    """Logarithm of the softmax along ``dim``: y_j = x_j - log sum_i exp(x_i).  Any shape -> same shape."""
    check_tensor("log_softmax", "input", input)
    if not -input.ndim <= dim < input.ndim:
        raise ValueError(f"log_softmax: dim {dim} is out of range for input of shape {input.shape}")
    return LogSoftmax.apply(input, dim % input.ndim)


def cross_entropy(input, target):
    """Mean cross-entropy between logits and integer class ids, as ``torch.nn.functional.cross_entropy``.

    L = -1/N sum_n log( exp(x[n, t_n]) / sum_j exp(x[n, j]) )

    input: (N, num_classes) logits; target: (N,) integer class ids in [0, num_classes) -> scalar
    """
    op = "cross_entropy"
    check_tensor(op, "input", input, ndim=2)
    target_data = target.data if isinstance(target, Tensor) else target
    if not hasattr(target_data, "dtype"):
        target_data = np.asarray(target_data)
    if target_data.ndim != 1 or target_data.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: target must have shape ({input.shape[0]},) to match input "
                         f"{input.shape}, got {target_data.shape}")
    if not np.issubdtype(target_data.dtype, np.integer):
        raise TypeError(f"{op}: target must hold integer class ids, got dtype {target_data.dtype}")
    low, high = int(target_data.min()), int(target_data.max())
    if low < 0 or high >= input.shape[1]:
        raise ValueError(f"{op}: target class ids must lie in [0, {input.shape[1]}), "
                         f"got values from {low} to {high}")
    if xp_of(target_data) is not xp_of(input.data):
        from ..backend import to_device
        target_data = to_device(target_data, input.device)
    return CrossEntropy.apply(input, target_data)
