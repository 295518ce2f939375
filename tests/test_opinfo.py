"""PyTorch's own op tests, run on tinyres: the OpInfo samples of every op tinyres has.

PyTorch checks each of its operators on the calls its OpInfo database lists
(``torch.testing._internal.common_methods_invocations.op_db``, which needs the
``expecttest`` package): ``sample_inputs`` (typical calls), ``reference_inputs`` (more
shapes, broadcasting, empty tensors, NaN and infinities) and ``error_inputs`` (calls
PyTorch rejects).  Here they go through tinyres's version of each op -- the functional
ops and the Tensor operators -- on each CPU backend, in float64 and float32.  Every
sample ends in one of these ways:

* compared -- tinyres takes the call as it is: its output, and the gradient of every
  input for the same random dL/d(output), equal PyTorch's within the dtype's RTOL;
* mapped -- the call uses a shape tinyres does not take (an unbatched (C, H, W) image,
  an (N, C) batch for batch norm, a 1-D matmul operand): tinyres refuses it with an
  error naming the op, and the call mapped onto tinyres's signature (a batch of one,
  ...) is compared instead;
* refused -- the call uses a feature tinyres lacks (groups, ceil_mode, class weights,
  ...): tinyres raises ValueError or TypeError naming the op and the feature;
* not expressible -- the call needs something tinyres's API has no place for (``out=``,
  a tensor of 65 dimensions, an unbound method called on a Python number): counted only.

Anything else -- another answer, an answer where a refusal was due, a refusal of a call
tinyres should take, an error that does not name the op -- fails the op's test, which
lists every such sample with what tinyres returned and what PyTorch returned.

``python tests/test_opinfo.py`` prints how the samples of every op ended.
"""
import collections
import functools
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest

import tinyres as tr
import tinyres.functional as F

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest", reason="PyTorch's OpInfo database imports expecttest; "
                                         "install it with `pip install expecttest`")

pytestmark = pytest.mark.slow   # 30 to 40 s on two cores: several thousand samples

# PyTorch's samples hold sums of hundreds of terms, extreme values and powers, so the
# float64 tolerance is looser than the rest of the suite's (tests/conftest.py).
RTOL = {"float64": 1e-7, "float32": 1e-4}


class Inexpressible(Exception):
    """The sample needs an argument that tinyres's API has no place for."""


# --------------------------------------------------------------------------- the ops
@dataclass(frozen=True)
class Op:
    """How one PyTorch op is called in tinyres.

    ``call`` takes PyTorch's arguments (tensors already made tinyres Tensors) and calls
    tinyres; ``lacks`` and ``takes`` read PyTorch's arguments by name (``parameters``
    names the positional ones): the feature tinyres lacks, or None, and whether tinyres
    takes the shapes as they are; ``mapped`` is the call for the shapes it does not take.
    """
    name: str                                   # what tinyres's errors call the op
    call: Callable
    parameters: tuple = ("input",)
    lacks: Callable = lambda arguments: None
    takes: Callable = lambda arguments: True
    mapped: Optional[Callable] = None


def _no_others(others):
    if others:
        raise Inexpressible(f"tinyres has no {', '.join(sorted(others))} argument here")


def _is_tensor(value):
    return isinstance(value, torch.Tensor)


def _lacking(features, *checks):
    """The ``features`` whose checks are true (tinyres's error must name one of them)."""
    return tuple(name for name, check in zip(features, checks) if check) or None


def _four_d(arguments):
    return arguments["input"].ndim == 4


def _batch_of_one(function):
    """``function`` for a single (C, H, W) image: run it on a batch of one, return the one result."""
    def call(input, *args, **kwargs):
        out = function(input.reshape(1, *input.shape), *args, **kwargs)
        return out.reshape(out.shape[1:])
    return call


def _pair_is(value, expected):
    return value == expected or tuple(np.broadcast_to(np.asarray(value), (2,))) == (expected, expected)


def _linear_mapped(input, weight, bias=None):
    """(*, in_features) -> (*, out_features) through tinyres's (N, in_features)."""
    out = F.linear(input.reshape(-1, input.shape[-1]), weight, bias)
    return out.reshape(*input.shape[:-1], weight.shape[0])


def _matmul_mapped(input, other):
    """A 1-D operand becomes a row (left) or a column (right), and that axis is dropped after."""
    left = input.reshape(1, -1) if input.ndim == 1 else input
    right = other.reshape(-1, 1) if other.ndim == 1 else other
    out = left @ right
    shape = list(out.shape)
    if other.ndim == 1:
        shape.pop(-1)
    if input.ndim == 1:
        shape.pop(-1 if other.ndim == 1 else -2)
    return out.reshape(tuple(shape))


def _buffer(value):
    return value.data if isinstance(value, tr.Tensor) else value


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
    # tinyres takes the running statistics as plain arrays (buffers), PyTorch as tensors
    return F.batch_norm(input, _buffer(running_mean), _buffer(running_var), weight, bias,
                        training, momentum, eps)


def _batch_norm_mapped(input, *args, **kwargs):
    """(N, C, *) -> (N, C, prod(*), 1): the statistics run over N and all the rest alike."""
    batch, channels = input.shape[:2]
    spread = math.prod(input.shape[2:])
    return _batch_norm(input.reshape(batch, channels, spread, 1), *args, **kwargs).reshape(input.shape)


def _cross_entropy_mapped(input, target, *args, **kwargs):
    """(N, C, d1, ...) logits -> (N*d1*..., C): PyTorch's mean runs over all N*d1*... positions."""
    classes = input.shape[1]
    rows = input.permute(0, *range(2, input.ndim), 1).reshape(-1, classes)
    return F.cross_entropy(rows, target.reshape(-1), *args, **kwargs)


def _reduction(method):
    """Tensor.sum / mean / max with PyTorch's argument names (dim, keepdim)."""
    def call(input, dim=None, keepdim=False, **others):
        _no_others(others)
        return getattr(input, method)(axis=dim, keepdims=keepdim)
    return call


def _operator(symbol):
    def call(input, other, alpha=1, **others):
        _no_others({k for k, v in others.items() if v is not None})  # div's rounding_mode=None
        if alpha != 1:
            other = other * alpha
        return symbol(input, other)
    return call


def _reflected(method):
    def call(input, other):
        if not isinstance(input, tr.Tensor):
            raise Inexpressible(f"{method} is called on a Python number")
        return getattr(input, method)(other)
    return call


def _empty_dim(arguments):
    # PyTorch reduces every axis for dim=(), NumPy none: tinyres refuses to guess
    return "axis" if arguments.get("dim", 0) in ((), []) else None


def _advanced_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(part, (list, torch.Tensor, bool)) for part in parts)


_REFLECTED_PARAMETERS = ("input", "other")

OPS = {
    # ------------------------------------------------------------------ tinyres.functional
    "nn.functional.relu": Op("relu", F.relu, ("input", "inplace"),
                             lacks=lambda a: "inplace" if a.get("inplace") else None),
    "nn.functional.conv2d": Op(
        "conv2d", F.conv2d, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
        lacks=lambda a: "groups" if a.get("groups", 1) != 1 else None,
        takes=_four_d, mapped=_batch_of_one(F.conv2d)),
    "nn.functional.linear": Op("linear", F.linear, ("input", "weight", "bias"),
                               takes=lambda a: a["input"].ndim == 2, mapped=_linear_mapped),
    "log_softmax": Op("log_softmax", F.log_softmax, ("input", "dim", "_stacklevel", "dtype")),
    "log_softmax.with_dtype": Op(
        "log_softmax", F.log_softmax, ("input", "dim", "_stacklevel", "dtype"),
        lacks=lambda a: "dtype" if a.get("dtype") not in (None, a["input"].dtype) else None),
    "nn.functional.cross_entropy": Op(
        "cross_entropy", F.cross_entropy,
        ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction",
         "label_smoothing"),
        lacks=lambda a: _lacking(("weight", "size_average", "reduce", "ignore_index", "reduction",
                                   "label_smoothing", "probabilities"),
                               a.get("weight") is not None, a.get("size_average") is not None,
                               a.get("reduce") is not None, a.get("ignore_index", -100) != -100,
                               a.get("reduction", "mean") != "mean",
                               a.get("label_smoothing", 0.0) != 0.0,
                               a["target"].is_floating_point()),
        takes=lambda a: a["input"].ndim == 2, mapped=_cross_entropy_mapped),
    "nn.functional.max_pool2d": Op(
        "max_pool2d", F.max_pool2d,
        ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
        lacks=lambda a: _lacking(("ceil_mode", "return_indices", "dilation"),
                               a.get("ceil_mode"), a.get("return_indices"),
                               not _pair_is(a.get("dilation", 1), 1)),
        takes=_four_d, mapped=_batch_of_one(F.max_pool2d)),
    "nn.functional.avg_pool2d": Op(
        "avg_pool2d", F.avg_pool2d,
        ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
         "divisor_override"),
        lacks=lambda a: _lacking(("ceil_mode", "count_include_pad", "divisor_override", "stride"),
                               a.get("ceil_mode"), a.get("count_include_pad") is False,
                               a.get("divisor_override") is not None, a.get("stride") == ()),
        takes=_four_d, mapped=_batch_of_one(F.avg_pool2d)),
    "nn.functional.adaptive_avg_pool2d": Op(
        "adaptive_avg_pool2d", F.adaptive_avg_pool2d, ("input", "output_size"),
        lacks=lambda a: None if a["output_size"] in (1, (1, 1), [1, 1]) else "output_size",
        takes=_four_d, mapped=_batch_of_one(F.adaptive_avg_pool2d)),
    "nn.functional.batch_norm": Op(
        "batch_norm", _batch_norm,
        ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
        lacks=lambda a: "dimensions" if a["input"].ndim < 2 else None,
        # below 2-D there is no channel axis to map: such a call is refused as it is
        takes=lambda a: a["input"].ndim in (0, 1, 4), mapped=_batch_norm_mapped),
    # ------------------------------------------------------------------ Tensor operators
    "add": Op("add", _operator(lambda a, b: a + b), ("input", "other", "alpha")),
    "sub": Op("sub", _operator(lambda a, b: a - b), ("input", "other", "alpha")),
    "mul": Op("mul", _operator(lambda a, b: a * b), ("input", "other")),
    "div.no_rounding_mode": Op("div", _operator(lambda a, b: a / b), ("input", "other")),
    "__radd__": Op("add", _reflected("__radd__"), _REFLECTED_PARAMETERS),
    "__rsub__": Op("sub", _reflected("__rsub__"), _REFLECTED_PARAMETERS),
    "__rmul__": Op("mul", _reflected("__rmul__"), _REFLECTED_PARAMETERS),
    "__rdiv__": Op("div", _reflected("__rtruediv__"), _REFLECTED_PARAMETERS),
    "neg": Op("neg", lambda input: -input),
    "pow": Op("pow", lambda input, exponent: input ** exponent, ("input", "exponent"),
              lacks=lambda a: "exponent" if _is_tensor(a["exponent"]) or not _is_tensor(a["input"])
              else None),
    "matmul": Op("matmul", lambda input, other: input @ other, ("input", "other"),
                 takes=lambda a: a["input"].ndim >= 2 and a["other"].ndim >= 2, mapped=_matmul_mapped),
    "exp": Op("exp", lambda input: input.exp()),
    "log": Op("log", lambda input: input.log()),
    "sum": Op("sum", _reduction("sum"), ("input", "dim", "keepdim"), lacks=_empty_dim),
    "mean": Op("mean", _reduction("mean"), ("input", "dim", "keepdim"), lacks=_empty_dim),
    "amax": Op("max", _reduction("max"), ("input", "dim", "keepdim"), lacks=_empty_dim),
    "max.reduction_no_dim": Op("max", lambda input: input.max()),
    "reshape": Op("reshape", lambda input, shape: input.reshape(shape), ("input", "shape")),
    "permute": Op("permute", lambda input, dims: input.permute(dims), ("input", "dims")),
    "transpose": Op("transpose", lambda input, dim0, dim1: input.transpose(dim0, dim1),
                    ("input", "dim0", "dim1")),
    "T": Op("T", lambda input: input.T),
    "__getitem__": Op("getitem", lambda input, index: input[index], ("input", "index"),
                      lacks=lambda a: "indexing" if _advanced_index(a["index"]) else None),
}

# the ops whose OpInfo lists calls that PyTorch rejects (those of pow and the reflected
# operators call PyTorch's unbound methods on Python numbers, which tinyres has no way to say)
ERROR_OPS = ["nn.functional.conv2d", "nn.functional.max_pool2d", "nn.functional.avg_pool2d",
             "nn.functional.adaptive_avg_pool2d", "neg", "mean", "amax", "reshape"]


# --------------------------------------------------------------------------- PyTorch's side
@functools.lru_cache(maxsize=None)
def _op_db():
    from torch.testing._internal.common_methods_invocations import op_db
    return {(info.name + (f".{info.variant_test_name}" if info.variant_test_name else "")): info
            for info in op_db}


def _arguments(op, sample):
    """PyTorch's arguments of ``sample`` by name."""
    named = dict(zip(op.parameters, (sample.input, *sample.args)))
    named.update(sample.kwargs)
    return named


def _torch_leaves(value):
    """The tensors in ``value`` that require grad, in the order _to_tinyres meets them."""
    if _is_tensor(value):
        return [value] if value.requires_grad else []
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _torch_leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _torch_leaves(item)]
    return []


def _describe(value):
    if _is_tensor(value):
        return f"tensor{tuple(value.shape)}:{str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) + "}"
    return repr(value)


@dataclass
class Record:
    """One PyTorch sample with PyTorch's answer (computed once, shared by the backends)."""
    source: str                 # "sample_inputs[3]" or "reference_inputs[40]"
    sample: object
    arguments: dict
    feature: Optional[tuple]    # the features tinyres lacks (its error names one), or None
    takes: bool                 # whether tinyres takes the shapes as they are
    expected: Optional[np.ndarray] = None
    expected_grads: tuple = ()
    grad_output: Optional[np.ndarray] = None

    @property
    def description(self):
        s = self.sample
        return f"{self.source}: input {_describe(s.input)}, args {_describe(tuple(s.args))}, " \
               f"kwargs {_describe(s.kwargs)}"


def _same_samples(first, second):
    def values(sample):
        return [sample.input, *sample.args, *sample.kwargs.values()]
    if _describe(values(first)) != _describe(values(second)):
        return False
    return all(torch.equal(a, b) for a, b in zip(values(first), values(second))
               if _is_tensor(a) and _is_tensor(b))


@functools.lru_cache(maxsize=None)
def _records(key, dtype):
    """Every sample of op ``key`` in ``dtype``, with PyTorch's output and input gradients."""
    info, op = _op_db()[key], OPS[key]
    torch_dtype = getattr(torch, dtype)
    samples = list(info.sample_inputs("cpu", torch_dtype, requires_grad=True))
    references = []
    if info.reference_inputs_func is not None:
        references = list(info.reference_inputs("cpu", torch_dtype, requires_grad=True))
        # reference_inputs begin with sample_inputs: run those once
        if len(references) >= len(samples) and all(map(_same_samples, samples, references)):
            references = references[len(samples):]
    labelled = [(f"sample_inputs[{i}]", s) for i, s in enumerate(samples)] + \
               [(f"reference_inputs[{len(samples) + i}]", s) for i, s in enumerate(references)]
    records = []
    for number, (source, sample) in enumerate(labelled):
        sample = sample.transform(_fresh_leaf)
        arguments = _arguments(op, sample)
        lacking = op.lacks(arguments)
        lacking = (lacking,) if isinstance(lacking, str) else lacking
        record = Record(source, sample, arguments, lacking, op.takes(arguments))
        if record.feature is None:
            _answer(info, record, np.random.default_rng(number))
        records.append(record)
    return records


def _fresh_leaf(value):
    """A copy with the same strides that is a leaf of its own: some samples hold views made
    leaves with requires_grad_(), and PyTorch's autograd sends no gradient to those."""
    if not _is_tensor(value):
        return value   # transform() hands dtypes over too
    return value.detach().clone().requires_grad_(value.requires_grad)


def _answer(info, record, rng):
    """PyTorch's output and, for a random dL/d(output), the gradient of every input."""
    sample = record.sample
    with warnings.catch_warnings():   # PyTorch's own notes (e.g. on padding="same")
        warnings.simplefilter("ignore")
        output = info(sample.input, *sample.args, **sample.kwargs)
    if not _is_tensor(output):
        return
    record.expected = output.detach().numpy().copy()
    leaves = _torch_leaves([sample.input, list(sample.args), sample.kwargs])
    if not output.requires_grad or not leaves:
        return
    record.grad_output = rng.standard_normal(output.shape).astype(record.expected.dtype)
    grads = torch.autograd.grad(output, leaves, torch.from_numpy(record.grad_output),
                                allow_unused=True)
    record.expected_grads = tuple(np.zeros(leaf.shape, record.expected.dtype) if grad is None
                                  else grad.numpy().copy() for grad, leaf in zip(grads, leaves))


# --------------------------------------------------------------------------- tinyres's side
def _to_tinyres(value, leaves):
    """PyTorch values -> tinyres values; tensors that require grad are appended to ``leaves``."""
    if _is_tensor(value):
        try:
            array = value.detach().numpy().copy(order="K")   # keeps a transposed layout
        except Exception as error:    # e.g. 65 dimensions: more than NumPy holds
            raise Inexpressible(f"NumPy cannot hold this tensor ({error})") from None
        tensor = tr.tensor(array, requires_grad=value.requires_grad)
        if value.requires_grad:
            leaves.append(tensor)
        return tensor
    if isinstance(value, torch.dtype):
        return np.dtype(str(value).removeprefix("torch."))
    if isinstance(value, list):
        return [_to_tinyres(item, leaves) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_tinyres(item, leaves) for item in value)
    if isinstance(value, dict):
        return {name: _to_tinyres(item, leaves) for name, item in value.items()}
    return value


def _attempt(call, sample):
    """Run ``call`` on the sample's arguments as tinyres values: (output, leaves, error)."""
    leaves = []
    input, args, kwargs = _to_tinyres([sample.input, list(sample.args), sample.kwargs], leaves)
    if not any(isinstance(v, tr.Tensor) for v in [input, *args, *kwargs.values()]):
        raise Inexpressible("the call holds no tensor, only Python numbers")
    try:
        return call(input, *args, **kwargs), leaves, None
    except Inexpressible:
        raise
    except Exception as error:     # judged by the caller: clear or not
        return None, leaves, error


def _is_clear(error, name, features=None):
    """A ValueError or TypeError that starts with the op's name (and names one of the features)."""
    text = str(error)
    return isinstance(error, (ValueError, TypeError)) and text.startswith(f"{name}:") \
        and (features is None or any(feature in text for feature in features))


def _said(error):
    return f"{type(error).__name__}: {error}"


def _show(array):
    array = np.asarray(array)
    if array.size <= 6:
        return np.array2string(array, precision=10, separator=", ")
    return f"an array of shape {array.shape}"


def _difference(what, ours, theirs, rtol):
    """None if ``ours`` equals ``theirs`` within ``rtol``, else a sentence saying where it differs.

    Entries near zero are judged against the array's largest finite magnitude, since the
    rounding error of a sum scales with its largest terms; NaN and infinities must match.
    """
    ours = np.asarray(ours)
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
        return (f"{what}: tinyres returned shape {ours.shape} {ours.dtype}, "
                f"PyTorch {theirs.shape} {theirs.dtype}")
    finite = np.abs(theirs[np.isfinite(theirs)])
    scale = max(1.0, float(finite.max(initial=0.0)))
    close = np.isclose(ours, theirs, rtol=rtol, atol=rtol * scale, equal_nan=True)
    if close.all():
        return None
    where = tuple(int(i) for i in np.argwhere(~close)[0])
    return (f"{what} differs in {int((~close).sum())} of {close.size} elements; at {where} "
            f"tinyres returned {ours[where]!r}, PyTorch {theirs[where]!r} "
            f"(tinyres {_show(ours)}, PyTorch {_show(theirs)})")


def _compare(record, output, leaves, rtol):
    """What differs between tinyres's output and gradients and PyTorch's (None if nothing)."""
    if not isinstance(output, tr.Tensor):
        return f"tinyres returned a {type(output).__name__}, not a Tensor"
    if record.expected is None:
        return f"tinyres returned shape {output.shape}, PyTorch no tensor"
    problem = _difference("output", output.numpy(), record.expected, rtol)
    if problem or record.grad_output is None:
        return problem
    if not output.requires_grad:
        return "tinyres's output has no graph, PyTorch's does"
    try:
        output.backward(record.grad_output)
    except Exception as error:
        return f"backward raised {_said(error)}"
    for number, (leaf, expected) in enumerate(zip(leaves, record.expected_grads)):
        grad = leaf.grad.numpy() if leaf.grad is not None else np.zeros(leaf.shape, leaf.dtype)
        problem = _difference(f"gradient of differentiable input {number}", grad, expected, rtol)
        if problem:
            return problem
    return None


def check_sample(op, record, rtol):
    """How tinyres handled one sample, and what went wrong: (ending, problem or None)."""
    try:
        if record.feature is not None:
            output, _, error = _attempt(op.call if record.takes else op.mapped, record.sample)
            lacking = " or ".join(map(repr, record.feature))
            if error is None:
                return "refused", f"gave an answer although tinyres lacks {lacking}"
            if not _is_clear(error, op.name, record.feature):
                return "refused", (f"expected an error naming {op.name!r} and {lacking}, "
                                   f"got {_said(error)}")
            return "refused", None
        ending = "compared"
        if not record.takes:
            ending = "mapped"
            _, _, error = _attempt(op.call, record.sample)
            if not _is_clear(error, op.name):
                return ending, (f"a shape tinyres does not take, yet it raised "
                                f"{_said(error) if error else 'nothing'}")
        output, leaves, error = _attempt(op.call if record.takes else op.mapped, record.sample)
    except Inexpressible:
        return "not expressible", None
    if error is not None:
        expected = "no tensor" if record.expected is None else f"shape {record.expected.shape}"
        kind = "refused a call PyTorch takes" if _is_clear(error, op.name) else "unclear error"
        return ending, f"{kind}: tinyres raised {_said(error)}; PyTorch returned {expected}"
    return ending, _compare(record, output, leaves, rtol)


def check_error_input(op, error_input):
    """Does tinyres reject, with a clear error, a call PyTorch rejects? (ending, problem or None)."""
    sample = error_input.sample_input
    if not _is_tensor(sample.input):
        return "not expressible", None   # PyTorch's unbound method called on a Python number
    arguments = _arguments(op, sample)
    calls = [op.call] if op.takes(arguments) or op.mapped is None else [op.call, op.mapped]
    rejected_by = f"PyTorch raised {error_input.error_type.__name__}: {error_input.error_regex}"
    for call in calls:
        try:
            output, _, error = _attempt(call, sample)
        except Inexpressible:
            return "not expressible", None
        if error is None:
            shape = getattr(output, "shape", type(output).__name__)
            return "rejected", f"tinyres returned {shape}; {rejected_by}"
        if not _is_clear(error, op.name):
            return "rejected", f"unclear error: tinyres raised {_said(error)}; {rejected_by}"
    return "rejected", None


# --------------------------------------------------------------------------- the tests
def _failure(title, problems, endings):
    lines = [f"{title}: {len(problems)} of {sum(endings.values())} samples failed "
             f"({dict(endings)})"]
    lines += [f"  {where}\n      {problem}" for where, problem in problems]
    return "\n".join(lines)


def run_samples(key, dtype):
    """(endings, problems) of every sample of op ``key`` in ``dtype`` on the current backend."""
    endings, problems = collections.Counter(), []
    with np.errstate(all="ignore"):   # the samples hold NaN, infinities and log(0) on purpose
        for record in _records(key, dtype):
            ending, problem = check_sample(OPS[key], record, RTOL[dtype])
            endings[ending] += 1
            if problem:
                problems.append((record.description, problem))
    return endings, problems


def run_error_inputs(key):
    """(endings, problems) of every error input of op ``key`` on the current backend."""
    endings, problems = collections.Counter(), []
    info = _op_db()[key]
    assert info.error_inputs_func is not None, f"PyTorch's OpInfo of {key} lists no error inputs"
    for number, error_input in enumerate(info.error_inputs("cpu")):
        ending, problem = check_error_input(OPS[key], error_input)
        endings[ending] += 1
        if problem:
            sample = error_input.sample_input
            problems.append((f"error_inputs[{number}]: input {_describe(sample.input)}, args "
                             f"{_describe(tuple(sample.args))}, kwargs {_describe(sample.kwargs)}",
                             problem))
    return endings, problems


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("key", list(OPS))
def test_opinfo_samples(key, dtype, backend):
    endings, problems = run_samples(key, dtype)
    assert not problems, _failure(f"{key} on {backend} in {dtype}", problems, endings)
    assert endings["compared"] + endings["mapped"] + endings["refused"] > 0, dict(endings)


@pytest.mark.parametrize("key", ERROR_OPS)
def test_opinfo_error_inputs(key, backend):
    endings, problems = run_error_inputs(key)
    assert not problems, _failure(f"{key} on {backend}", problems, endings)
    assert endings["rejected"] > 0, dict(endings)


if __name__ == "__main__":   # the table of endings: python tests/test_opinfo.py
    from tinyres.backend import CPU_BACKENDS, why_unavailable
    totals = collections.Counter()
    for backend in [b for b in CPU_BACKENDS if why_unavailable(b) is None]:
        with tr.use_backend(backend):
            for key in OPS:
                for dtype in RTOL:
                    endings, problems = run_samples(key, dtype)
                    totals.update(endings)
                    totals["failed"] += len(problems)
                    print(f"{key:36} {backend:6} {dtype:8} {sum(endings.values()):5} samples  "
                          f"{dict(endings)}  failed: {len(problems)}")
                    for where, problem in problems:
                        print(f"      {where}\n          {problem}")
            for key in ERROR_OPS:
                endings, problems = run_error_inputs(key)
                totals.update({f"error inputs {k}": v for k, v in endings.items()})
                totals["error inputs failed"] += len(problems)
                print(f"{key:36} {backend:6} errors   {sum(endings.values()):5} inputs   "
                      f"{dict(endings)}  failed: {len(problems)}")
                for where, problem in problems:
                    print(f"      {where}\n          {problem}")
    print("total:", dict(totals))
