"""The forward passes of the gradient-check assignment, and the cases each backward is graded on.

Each exercise is a forward pass on NumPy arrays that returns ``(out, cache)``: the
output and a dict of what the backward pass may use (what tinyres's own op saves,
plus the inputs and the settings).  A student writes

    backward(grad_output, cache) -> the gradient of every input, same shapes as the inputs

where ``grad_output`` is dL/d(out).  The forward passes call tinyres's NumPy reference
kernels, so the cache includes the arrays tinyres keeps for its own backward.

    relu:        out = max(x, 0)                                  -> dx
    max_pool2d:  out = max over each k x k window                 -> dx
    conv2d:      out = conv2d(x, weight, bias, stride, padding, dilation)  -> (dx, dweight, dbias)
    batch_norm:  out = (x - mean_B) / sqrt(var_B + eps) * weight + bias    -> (dx, dweight, dbias)

:data:`EXERCISES` is the public half of the assignment's definition: for each exercise its
forward, its points (relu 1, max_pool2d 2, conv2d 3, batch_norm 3), its public
:class:`Case` s (shapes, settings, a seed each) and the hints of
:mod:`tinyres.lessons.hints`.  The hidden cases and the solutions are the other half, in
the course folder (:mod:`tinyres.lessons.course`).
"""
from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from . import hints
from ..backend import numpy_kernels
from ..functional.checks import pair


def relu_forward(x):
    """out = max(x, 0).  cache: ``x``, ``out``.  x: any shape -> same shape."""
    out = numpy_kernels.relu_forward(x)
    return out, {"x": x, "out": out}


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pooling.  cache: ``x``, ``argmax``, ``kernel_size``, ``stride``, ``padding``.

    out[n, c, ho, wo] = max_{r,s} x_padded[n, c, ho*sh + r, wo*sw + s]
    argmax[n, c, ho, wo] = r*S + s, the winning tap of that window (its first maximum).

    x: (N, C, H, W) -> out: (N, C, Ho, Wo), Ho = (H + 2*ph - R) // sh + 1
    """
    op = "max_pool2d_forward"
    kernel_size = pair(op, "kernel_size", kernel_size, minimum=1)
    stride = kernel_size if stride is None else pair(op, "stride", stride, minimum=1)
    padding = pair(op, "padding", padding, minimum=0)
    out, argmax = numpy_kernels.max_pool2d_forward(x, kernel_size, stride, padding)
    return out, {"x": x, "argmax": argmax, "kernel_size": kernel_size, "stride": stride,
                 "padding": padding}


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Convolution by im2col.  cache: ``x``, ``weight``, ``bias``, ``cols``, ``stride``,
    ``padding``, ``dilation``.

    cols = im2col(x): (C*R*S, N*Ho*Wo);  out = (weight.reshape(K, C*R*S) @ cols) as (N, K, Ho, Wo) + bias

    x: (N, C, H, W), weight: (K, C, R, S), bias: (K,) -> out: (N, K, Ho, Wo)
    """
    op = "conv2d_forward"
    stride, dilation = pair(op, "stride", stride, minimum=1), pair(op, "dilation", dilation, minimum=1)
    padding = pair(op, "padding", padding, minimum=0)
    cols = numpy_kernels.im2col(x, weight.shape[2:], stride, padding, dilation)
    out = numpy_kernels.conv2d_forward(x, weight, stride, padding, dilation)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out, {"x": x, "weight": weight, "bias": bias, "cols": cols, "stride": stride,
                 "padding": padding, "dilation": dilation}


def batch_norm_forward(x, weight, bias, eps=1e-5):
    """Training-mode batch norm.  cache: ``x``, ``x_hat``, ``mean``, ``var``, ``inv_std``,
    ``weight``, ``eps``.

    mean, var: per channel over (N, H, W) (var biased);  inv_std = 1 / sqrt(var + eps)
    x_hat = (x - mean) * inv_std;   out = x_hat * weight + bias

    x: (N, C, H, W), weight, bias: (C,) -> out: (N, C, H, W)
    """
    out, mean, var, inv_std = numpy_kernels.batch_norm_forward_train(x, weight, bias, eps)
    x_hat = (x - mean.reshape(1, -1, 1, 1)) * inv_std.reshape(1, -1, 1, 1)
    return out, {"x": x, "x_hat": x_hat, "mean": mean, "var": var, "inv_std": inv_std,
                 "weight": weight, "eps": eps}


@dataclass(frozen=True)
class Case:
    """One graded case: the input shapes, the op's settings and the seed of its random inputs.

    ``name`` (``"max_pool2d: x (1, 2, 7, 7), k 3, stride 2, pad 1"``) starts with the
    exercise, as every score file lists it.  Hidden cases come from the course folder,
    never from this package.
    """
    exercise: str
    description: str
    shapes: tuple
    settings: dict
    seed: int
    hidden: bool = False

    @property
    def name(self):
        return f"{self.exercise}: {self.description}"

    def spec(self):
        """``(description, shapes, settings, seed)``: the plain-Python form a notebook can hold."""
        return (self.description, [tuple(shape) for shape in self.shapes], dict(self.settings),
                self.seed)


@dataclass
class Exercise:
    """One exercise: its forward, the names of its inputs and gradients, its points and public cases.

    ``tinyres_op`` is the tinyres function with the same meaning, whose gradients are
    the reference; ``hints`` are the checks of :mod:`tinyres.lessons.hints` that name a
    typical bug from the shape of a wrong answer.
    """
    name: str
    forward: callable
    inputs: tuple
    gradients: tuple
    tinyres_op: callable
    points: int
    cases: list = field(default_factory=list)
    hints: tuple = ()
    needs_positive: tuple = ()   # inputs drawn away from 0 (ReLU's kink)

    def make_case(self, description, shapes, settings=None, seed=0, hidden=False):
        """A :class:`Case` of this exercise (shapes as lists or tuples)."""
        return Case(self.name, description, tuple(tuple(shape) for shape in shapes),
                    dict(settings or {}), int(seed), hidden)

    def inputs_for(self, case):
        """The case's float64 inputs, drawn from its seed: ``[x, (weight, bias)]``."""
        rng = np.random.default_rng(case.seed)
        arrays = [rng.standard_normal(shape) for shape in case.shapes]
        for index, name in enumerate(self.inputs):
            if name in self.needs_positive:  # keep inputs away from a kink
                arrays[index] = np.sign(arrays[index]) * (0.1 + np.abs(arrays[index]))
        grad_output = rng.standard_normal(self.forward(*arrays, **case.settings)[0].shape)
        return arrays, grad_output


def _tinyres_batch_norm(x, weight, bias, eps=1e-5):
    return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)


def _tinyres_max_pool2d(x, kernel_size, stride=None, padding=0):
    return F.max_pool2d(x, kernel_size, stride, padding)


def _exercise(name, forward, inputs, gradients, tinyres_op, points, cases, **options):
    exercise = Exercise(name, forward, inputs, gradients, tinyres_op, points,
                        hints=hints.HINTS[name], **options)
    exercise.cases = [exercise.make_case(description, shapes, settings, seed)
                      for seed, (description, shapes, settings) in enumerate(cases)]
    return exercise


POINTS = {"relu": 1, "max_pool2d": 2, "conv2d": 3, "batch_norm": 3}   # 9 in all

EXERCISES = {
    "relu": _exercise(
        "relu", relu_forward, ("x",), ("dx",), F.relu, POINTS["relu"],
        cases=[("x (4, 5)", [(4, 5)], {}),
               ("x (2, 3, 4, 4)", [(2, 3, 4, 4)], {})],
        needs_positive=("x",)),
    "max_pool2d": _exercise(
        "max_pool2d", max_pool2d_forward, ("x",), ("dx",), _tinyres_max_pool2d,
        POINTS["max_pool2d"],
        cases=[("x (2, 3, 6, 6), k 2, stride 2", [(2, 3, 6, 6)], dict(kernel_size=2, stride=2)),
               ("x (1, 2, 7, 7), k 3, stride 2, pad 1", [(1, 2, 7, 7)],
                dict(kernel_size=3, stride=2, padding=1)),
               ("x (2, 2, 5, 5), k 3, stride 1 (overlapping)", [(2, 2, 5, 5)],
                dict(kernel_size=3, stride=1))]),
    "conv2d": _exercise(
        "conv2d", conv2d_forward, ("x", "weight", "bias"), ("dx", "dweight", "dbias"), F.conv2d,
        POINTS["conv2d"],
        cases=[("x (2, 3, 5, 5), w (4, 3, 3, 3), pad 1", [(2, 3, 5, 5), (4, 3, 3, 3), (4,)],
                dict(stride=1, padding=1)),
               ("x (2, 2, 7, 7), w (3, 2, 3, 3), stride 2, pad 1", [(2, 2, 7, 7), (3, 2, 3, 3), (3,)],
                dict(stride=2, padding=1)),
               ("x (1, 2, 7, 7), w (2, 2, 3, 3), pad 2, dilation 2", [(1, 2, 7, 7), (2, 2, 3, 3), (2,)],
                dict(stride=1, padding=2, dilation=2)),
               ("x (2, 3, 4, 4), w (2, 3, 1, 1)", [(2, 3, 4, 4), (2, 3, 1, 1), (2,)], {})]),
    "batch_norm": _exercise(
        "batch_norm", batch_norm_forward, ("x", "weight", "bias"), ("dx", "dweight", "dbias"),
        _tinyres_batch_norm, POINTS["batch_norm"],
        cases=[("x (4, 3, 3, 3)", [(4, 3, 3, 3), (3,), (3,)], {}),
               ("x (8, 2, 1, 1)", [(8, 2, 1, 1), (2,), (2,)], {}),
               ("x (2, 4, 5, 5)", [(2, 4, 5, 5), (4,), (4,)], {})]),
}
