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

A finite difference is only meaningful where the function is smooth between x - eps
and x + eps.  Where a step carries some op's input across a point where its derivative
jumps -- ReLU's input across 0, two values of a max-pooling window past each other --
the central difference averages two slopes and disagrees with any correct backward.
For each mismatch gradcheck runs the two steps again, asks every op on the way where
its kinks are (:meth:`tinyres.autograd.Function.kinks`) and, when one was crossed and
the analytic value equals the slope on one side of the step, says so: which element,
which op, and what to do.  Such a mismatch still fails the check (the finite difference
proved nothing there), but it is reported apart from the real ones, and a mismatch that
crosses no kink, or matches neither side, is never blamed on one.
"""
import contextlib
import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np

from .autograd import format_index, no_grad, record_kinks
from .backend import to_device, xp_of
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when an analytic gradient disagrees; ``.report`` has the details."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


@dataclass
class Mismatch:
    """One element (or direction) where the analytic and numeric gradients disagree."""
    where: object             # element index (mode="full") or direction number (mode="random")
    label: str                # how the report names it: "x[1, 2] = 1e-07", "x along random direction 2"
    analytic: float           # the analytic value there
    numeric: float            # the central difference there
    kink: str = None          # why the step straddles a point without a derivative; None: real
    note: str = None          # for a real mismatch next to a kink: why it is not blamed on it

    def __str__(self):
        if self.kink:
            return f"{self.label}: {self.kink}"
        text = f"{self.label}: analytic {self.analytic:.7g}, numeric {self.numeric:.7g}"
        return f"{text} ({self.note})" if self.note else text


@dataclass
class InputCheck:
    """The comparison for one input tensor.

    analytic, numeric: the gradient from backward() and the central difference, at the
    worst element (or direction).
    """
    index: int                # the input's position in gradcheck's ``inputs``
    shape: tuple              # the input's shape
    max_abs_error: float      # the largest |analytic - numeric|
    max_rel_error: float      # the largest |analytic - numeric| / |numeric|
    worst_index: tuple        # element index (mode="full") or direction number (mode="random")
    analytic: float
    numeric: float
    passed: bool              # every element (direction) within atol + rtol * |numeric|
    name: str = ""            # the input's name: fn's parameter name, or "input 0"
    mismatches: list = field(default_factory=list)   # every Mismatch, at a kink or real

    @property
    def at_kinks(self):
        """The mismatches explained by a finite difference that straddles a kink or a tie."""
        return [m for m in self.mismatches if m.kink]

    @property
    def real_mismatches(self):
        """The mismatches that no kink explains: the analytic gradient disagrees."""
        return [m for m in self.mismatches if not m.kink]


@dataclass
class GradcheckReport:
    """Per-input results of a gradient check; ``str()`` is a readable table, then the
    mismatches at kinks and the real ones, each under its own heading."""
    function: str             # the name of the checked callable
    mode: str                 # "full" (every element) or "random" (random directions)
    inputs: list = field(default_factory=list)   # one InputCheck per input that requires grad

    @property
    def passed(self):
        return all(check.passed for check in self.inputs)

    @property
    def at_kinks(self):
        """Every mismatch explained by a kink or a tie, over all inputs."""
        return [m for check in self.inputs for m in check.at_kinks]

    @property
    def real_mismatches(self):
        """Every mismatch that no kink explains, over all inputs."""
        return [m for check in self.inputs for m in check.real_mismatches]

    def __str__(self):
        lines = [f"gradcheck of {self.function} (mode={self.mode!r}): "
                 f"{'passed' if self.passed else 'FAILED'}",
                 f"{'input':>5}  {'shape':<18} {'max abs err':>12} {'max rel err':>12}  "
                 f"{'worst at':<16} {'analytic':>14} {'numeric':>14}"]
        for c in self.inputs:
            marker = "" if c.passed else "   <-- mismatch" if c.real_mismatches \
                else "   <-- mismatch at a kink"
            lines.append(f"{c.index:>5}  {str(c.shape):<18} {c.max_abs_error:12.3e} "
                         f"{c.max_rel_error:12.3e}  {str(c.worst_index):<16} {c.analytic:14.7g} "
                         f"{c.numeric:14.7g}{marker}")
        for c in self.inputs:
            for found, heading in (
                    (c.at_kinks, "where the finite difference straddles a point at which the "
                                 "function is not differentiable (not a bug in backward)"),
                    (c.real_mismatches, "where the analytic and numeric gradients disagree "
                                        "(no kink explains them)")):
                if found:
                    count = f"{len(found)} mismatch{'es' if len(found) > 1 else ''}"
                    lines.append(f"{c.name}: {count} {heading}:")
                    lines += [f"  {m}" for m in found[:_LISTED]]
                    if len(found) > _LISTED:
                        lines.append(f"  ... and {len(found) - _LISTED} more")
        return "\n".join(lines)


_LISTED = 10   # mismatches of each kind spelled out per input


def rel_error(a, b):
    """Largest relative error between two arrays, as used in course notes.

    max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)
    """
    a, b = (np.asarray(v.numpy() if isinstance(v, Tensor) else v, dtype=np.float64) for v in (a, b))
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _name(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _input_names(fn, count):
    """fn's positional parameter names ("x", "w", ...), else "input 0", "input 1", ..."""
    try:
        parameters = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters[:count]]
    return names + [f"input {i}" for i in range(len(names), count)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode="full", num_directions=3,
              seed=0, raise_exception=True):
    """Compare the gradients from backward() with central finite differences.

    fn: callable taking the ``inputs`` tensors and returning a Tensor of any shape.
    inputs: a Tensor or a sequence of Tensors; those with ``requires_grad`` are checked.
    An element passes when |analytic - numeric| <= atol + rtol * |numeric|.

    Returns a :class:`GradcheckReport`; raises :class:`GradcheckError` carrying it on a
    mismatch unless ``raise_exception=False``.  Each mismatch is examined: one whose ±eps
    step crosses a kink or a tie of an op on the way (and whose analytic value is the
    slope on one side of it) is reported with the element, the op and the reason, apart
    from the real mismatches.  Warns when an input is not float64, since float32
    round-off swamps the finite differences.
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

    names = _input_names(fn, len(inputs))
    report = GradcheckReport(function=_name(fn), mode=mode)
    for i in checked:
        data = inputs[i].data
        if mode == "full":
            where = list(np.ndindex(data.shape))
            numeric = np.array([_central_difference(data, position, eps, scalar_loss)
                                for position in where])
            got = analytic[i].ravel()
        else:
            directions = []
            for _ in range(num_directions):
                direction = rng.standard_normal(data.shape)
                directions.append(direction / np.linalg.norm(direction))
            where = [xp.asarray(d).astype(data.dtype) for d in directions]
            got = np.array([float((analytic[i] * d).sum()) for d in directions])
            numeric = np.array([_central_difference(data, d, eps, scalar_loss) for d in where])
        check = _compare(i, data.shape, got, numeric, where if mode == "full"
                         else list(range(num_directions)), atol, rtol)
        check.name = names[i]
        check.mismatches = _examine(data, names[i], where, got, numeric, eps, atol, rtol,
                                    scalar_loss)
        report.inputs.append(check)
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


@contextlib.contextmanager
def _moved(data, where, step):
    """``data`` moved by ``step``: at element ``where`` (a tuple) or along direction ``where``."""
    if isinstance(where, tuple):
        original = data[where].item()
        data[where] = original + step
    else:
        original = data.copy()
        data += step * where
    try:
        yield
    finally:
        if isinstance(where, tuple):
            data[where] = original
        else:
            data[...] = original


def _central_difference(data, where, eps, loss):
    with _moved(data, where, eps):
        plus = loss()
    with _moved(data, where, -eps):
        minus = loss()
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


# --------------------------------------------------------------------------- kinks and ties
def _examine(data, name, where, analytic, numeric, eps, atol, rtol, loss):
    """A :class:`Mismatch` for every element or direction that fails, each examined for kinks."""
    failing = np.flatnonzero(np.abs(analytic - numeric) > atol + rtol * np.abs(numeric))
    if failing.size == 0:
        return []
    center_loss, center_kinks = _run_recording(data, None, 0.0, loss)
    element = name if name.isidentifier() else f"{name}, element "   # x[1, 2] / input 0, element [1, 2]
    mismatches = []
    for k in failing:
        full = isinstance(where[k], tuple)
        label = (f"{element}{format_index(where[k])} = {data[where[k]].item():.3g}" if full
                 else f"{name} along random direction {k}")
        mismatch = Mismatch(where[k] if full else int(k), label, float(analytic[k]),
                            float(numeric[k]))
        plus_loss, plus_kinks = _run_recording(data, where[k], eps, loss)
        minus_loss, minus_kinks = _run_recording(data, where[k], -eps, loss)
        crossed = _crossed(center_kinks, plus_kinks, minus_kinks)
        if crossed is not None:
            # a correct backward gives the slope of the side the unmoved input lies on
            sides = ((plus_loss - center_loss) / eps, (center_loss - minus_loss) / eps)
            if any(abs(analytic[k] - side) <= atol + rtol * abs(side) for side in sides):
                mismatch.kink = crossed
            else:
                mismatch.note = ("the ±eps step also crosses a kink, but the analytic value "
                                 f"matches neither one-sided slope "
                                 f"({sides[0]:.7g}, {sides[1]:.7g})")
        mismatches.append(mismatch)
    return mismatches


def _run_recording(data, where, step, loss):
    """The loss with ``data`` moved by ``step`` at ``where`` (None: unmoved), and each op's kinks."""
    with contextlib.ExitStack() as stack:
        if where is not None:
            stack.enter_context(_moved(data, where, step))
        kinks = stack.enter_context(record_kinks())
        return loss(), kinks


def _crossed(center, plus, minus):
    """The reason of the first op whose branch differs between the three runs, else None."""
    if not len(center) == len(plus) == len(minus):
        return None   # the step changed which ops ran: nothing to compare op by op
    for (_, here), (_, up), (_, down) in zip(center, plus, minus):
        branch = np.asarray(to_device(here.branch, "cpu"))
        for other in (up, down):
            moved = np.asarray(to_device(other.branch, "cpu"))
            if moved.shape == branch.shape and (moved != branch).any():
                index = tuple(int(i) for i in np.argwhere(moved != branch)[0])
                return f"{here.describe(index)}: the finite difference straddles it; {here.advice}"
    return None
