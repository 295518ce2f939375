"""Log-softmax and the cross-entropy loss, both numerically stable.

Subtracting the row maximum before exponentiating changes nothing mathematically
(it cancels in the ratio) but keeps ``exp`` from overflowing:

    log_softmax(x)_j = (x_j - m) - log sum_i exp(x_i - m),    m = max_i x_i
"""
import numbers

import numpy as np

from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor
from .checks import check_tensor, require_default


def _log_softmax(x, axis):
    xp = xp_of(x)
    if x.size == 0:   # nothing to normalize: an empty result, as PyTorch
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """y = log_softmax(x);  dx = grad_output - softmax(x) * sum_j grad_output_j."""

    @staticmethod
    def forward(ctx, x, axis):
        out = _log_softmax(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved
        softmax = xp_of(out).exp(out)
        return grad_output - softmax * grad_output.sum(axis=ctx.axis, keepdims=True), None


class CrossEntropy(Function):
    """L = -1/N sum_n log_softmax(x_n)[t_n];  dx = (softmax(x) - onehot(t)) / N."""

    @staticmethod
    def forward(ctx, logits, target):
        xp = xp_of(logits)
        log_probs = _log_softmax(logits, axis=1)
        ctx.save_for_backward(log_probs, target)
        if logits.shape[0] == 0:   # the mean over an empty batch is NaN, as in PyTorch
            return xp.array(xp.nan, dtype=logits.dtype)
        rows = xp.arange(logits.shape[0])
        return -log_probs[rows, target].mean()

    @staticmethod
    def backward(ctx, grad_output):
        log_probs, target = ctx.saved
        xp = xp_of(log_probs)
        grad_logits = xp.exp(log_probs)
        grad_logits[xp.arange(target.shape[0]), target] -= 1
        batch = max(target.shape[0], 1)   # an empty batch has an empty gradient
        return grad_logits * (grad_output / batch), None


def log_softmax(input, dim, _stacklevel=3, dtype=None):
    """Logarithm of the softmax along ``dim``, as ``torch.nn.functional.log_softmax``.

    y_j = x_j - log sum_i exp(x_i)

    input: any shape -> same shape.  A 0-d input takes dim 0 or -1 (and gives 0), and an
    empty input gives an empty result, as in PyTorch.  ``dtype`` may only name the
    input's own dtype: tinyres never converts silently (``_stacklevel`` is PyTorch's
    and ignored).
    """
    op = "log_softmax"
    check_tensor(op, "input", input)
    if dtype is not None and np.dtype(dtype) != input.dtype:
        raise TypeError(f"{op}: dtype={np.dtype(dtype)} would convert the {input.dtype} input; "
                        "tinyres never converts silently -- make the input that dtype first")
    span = max(input.ndim, 1)   # a 0-d tensor has one position: dim 0 or -1, as in PyTorch
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -span <= dim < span:
        raise ValueError(f"{op}: dim {dim!r} is out of range for input of shape {input.shape}")
    if input.ndim == 0:
        return LogSoftmax.apply(input.reshape(1), 0).reshape(())
    return LogSoftmax.apply(input, dim % input.ndim)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Mean cross-entropy between logits and integer class ids, as ``torch.nn.functional.cross_entropy``.

    L = -1/N sum_n log( exp(x[n, t_n]) / sum_j exp(x[n, j]) )

    input: (N, num_classes) logits; target: (N,) integer class ids in [0, num_classes) -> scalar
    (NaN for N = 0, as in PyTorch).  PyTorch's other arguments (class ``weight``,
    ``ignore_index``, ``reduction``, ``label_smoothing``, ...) must keep their defaults,
    and targets must be class ids, not class probabilities.
    """
    op = "cross_entropy"
    for name, value, default, instead in [
            ("weight", weight, None, "every class weighs the same"),
            ("size_average", size_average, None, "the loss is the mean over the batch"),
            ("reduce", reduce, None, "the loss is the mean over the batch"),
            ("ignore_index", ignore_index, -100, "every target counts"),
            ("reduction", reduction, "mean", "the loss is the mean over the batch"),
            ("label_smoothing", label_smoothing, 0.0, "targets are exact class ids")]:
        require_default(op, name, value, default, instead)
    check_tensor(op, "input", input, ndim=2)
    target_data = target.data if isinstance(target, Tensor) else target
    if not hasattr(target_data, "dtype"):
        target_data = np.asarray(target_data)
    if not np.issubdtype(target_data.dtype, np.integer):
        raise TypeError(f"{op}: target must hold integer class ids, got dtype {target_data.dtype} "
                        "(class probabilities as targets are not supported)")
    if target_data.ndim != 1 or target_data.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: target must have shape ({input.shape[0]},) to match input "
                         f"{input.shape}, got {target_data.shape}")
    if target_data.size:   # an empty batch has no ids to check
        low, high = int(target_data.min()), int(target_data.max())
        if low < 0 or high >= input.shape[1]:
            raise ValueError(f"{op}: target class ids must lie in [0, {input.shape[1]}), "
                             f"got values from {low} to {high}")
    if xp_of(target_data) is not xp_of(input.data):
        from ..backend import to_device
        target_data = to_device(target_data, input.device)
    return CrossEntropy.apply(input, target_data)
