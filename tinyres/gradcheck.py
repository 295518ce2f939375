"""Finite-difference gradient checking: does backward() agree with the definition of a derivative?

Central differences have error O(eps^2), so in float64 with eps = 1e-6 they agree
with a correct analytic gradient to about 1e-9:

    dL/dx_i ~= (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

A non-scalar output y is reduced to the scalar L = sum(y * v) with a fixed random v,
so every output element takes part (a scalar output is used as it is).  ``mode="full"`` checks every input element
(2 forward passes each -- the teaching mode); ``mode="random"`` checks directional
derivatives along a few random unit directions d,

    <grad L, d> ~= (L(x + eps d) - L(x - eps d)) / (2 eps),

which costs 2 forward passes per direction whatever the input size, cheap enough
for a whole residual network.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

from .autograd import no_grad
from .backend import xp_of
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when an analytic gradient disagrees; ``.report`` has the details."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


@dataclass
class InputCheck:
    """The comparison for one input tensor."""
    index: int
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple        # element index (mode="full") or direction number (mode="random")
    analytic: float           # the analytic value at the worst element / direction
    numeric: float            # the finite-difference value there
    passed: bool


@dataclass
class GradcheckReport:
    """Per-input results of a gradient check; ``str()`` is a readable table."""
    function: str
    mode: str
    inputs: list = field(default_factory=list)

    @property
    def passed(self):
        return all(check.passed for check in self.inputs)

    def __str__(self):
        lines = [f"gradcheck of {self.function} (mode={self.mode!r}): "
                 f"{'passed' if self.passed else 'FAILED'}",
                 f"{'input':>5}  {'shape':<18} {'max abs err':>12} {'max rel err':>12}  "
                 f"{'worst at':<16} {'analytic':>14} {'numeric':>14}"]
        for c in self.inputs:
            lines.append(f"{c.index:>5}  {str(c.shape):<18} {c.max_abs_error:12.3e} "
                         f"{c.max_rel_error:12.3e}  {str(c.worst_index):<16} {c.analytic:14.7g} "
                         f"{c.numeric:14.7g}{'' if c.passed else '   <-- mismatch'}")
        return "\n".join(lines)


def rel_error(a, b):
    """Largest relative error between two arrays, as used in course notes.

    max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)
    """
    a, b = (np.asarray(v.numpy() if isinstance(v, Tensor) else v, dtype=np.float64) for v in (a, b))
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _name(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode="full", num_directions=3,
              seed=0, raise_exception=True):
    """Compare the gradients from backward() with central finite differences.

    fn: callable taking the ``inputs`` tensors and returning a Tensor of any shape.
    inputs: a Tensor or a sequence of Tensors; those with ``requires_grad`` are checked.
    An element passes when |analytic - numeric| <= atol + rtol * |numeric|.

    Returns a :class:`GradcheckReport`; raises :class:`GradcheckError` carrying it on a
    mismatch unless ``raise_exception=False``.  Warns when an input is not float64,
    since float32 round-off swamps the finite differences.
    """
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'random', got {mode!r}")
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} must be a Tensor, got {type(t).__name__}")
        if t.requires_grad and t.dtype != np.float64:
            warnings.warn(f"gradcheck: input {i} is {t.dtype}; finite differences need float64 "
                          "to be trustworthy", stacklevel=2)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")

    rng = np.random.default_rng(seed)
    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(output).__name__}")
    xp = xp_of(output.data)
    if output.size == 1:
        projection = xp.ones(output.shape, dtype=output.dtype)   # a scalar loss is checked as is
    else:
        projection = xp.asarray(rng.standard_normal(output.shape)).astype(output.dtype)

    def scalar_loss():
        with no_grad():
            return float((fn(*inputs).data * projection).sum())

    for t in inputs:
        t.grad = None
    (output * Tensor(projection)).sum().backward()
    analytic = {i: (inputs[i].grad.numpy().astype(np.float64) if inputs[i].grad is not None
                    else np.zeros(inputs[i].shape)) for i in checked}

    report = GradcheckReport(function=_name(fn), mode=mode)
    for i in checked:
        data = inputs[i].data
        if mode == "full":
            numeric = np.zeros(data.shape)
            for position in np.ndindex(data.shape):
                numeric[position] = _central_difference(data, position, eps, scalar_loss)
            got, expected, where = analytic[i].ravel(), numeric.ravel(), list(np.ndindex(data.shape))
        else:
            got, expected, where = [], [], list(range(num_directions))
            for _ in range(num_directions):
                direction = rng.standard_normal(data.shape)
                direction /= np.linalg.norm(direction)
                got.append(float((analytic[i] * direction).sum()))
                expected.append(_directional_difference(data, xp.asarray(direction).astype(data.dtype),
                                                        eps, scalar_loss))
            got, expected = np.array(got), np.array(expected)
        report.inputs.append(_compare(i, data.shape, got, expected, where, atol, rtol))
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


def _central_difference(data, position, eps, loss):
    original = data[position].item()
    data[position] = original + eps
    plus = loss()
    data[position] = original - eps
    minus = loss()
    data[position] = original
    return (plus - minus) / (2 * eps)


def _directional_difference(data, direction, eps, loss):
    original = data.copy()
    data += eps * direction
    plus = loss()
    data[...] = original - eps * direction
    minus = loss()
    data[...] = original
    return (plus - minus) / (2 * eps)


def _compare(index, shape, analytic, numeric, where, atol, rtol):
    error = np.abs(analytic - numeric)
    relative = error / np.maximum(np.abs(numeric), 1e-12)
    excess = error - (atol + rtol * np.abs(numeric))
    worst = int(np.argmax(excess)) if error.size else 0
    return InputCheck(
        index=index, shape=tuple(shape),
        max_abs_error=float(error.max(initial=0.0)), max_rel_error=float(relative.max(initial=0.0)),
        worst_index=where[worst] if error.size else (), analytic=float(analytic[worst]) if error.size else 0.0,
        numeric=float(numeric[worst]) if error.size else 0.0, passed=bool(np.all(excess <= 0)))
