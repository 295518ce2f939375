"""``summary(model, input_shape)``: each layer's output shape, parameters and multiply-accumulates.

The cost of a network is counted the way published tables count it (torchvision's
"GFLOPS" column, the ResNet paper's "FLOPs"): multiply-accumulates (MACs) of the
convolutions and the fully connected layer, per sample,

    conv:   K * C * R * S * Ho * Wo     (every output pixel of every output channel
                                         sums C*R*S products)
    linear: in_features * out_features

and 0 for batch norm, ReLU, pooling and the additions, which are cheap by comparison.
One MAC is two FLOPs, so "4.1 GFLOPs" in the paper's sense means 4.1 G MACs.

How the shapes are found: a real forward pass with forward hooks on every leaf layer,
but on an *empty batch* (N = 0).  Every op computes its output shape exactly as for a
real batch, yet there are no numbers to multiply, so even ResNet-152 at 224x224
costs milliseconds.  ``empty_batch=False`` runs a real batch of zeros instead (the
table is the same).
"""
import numbers
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..tensor import Tensor, zeros


def _conv_macs(module, output_shape):
    # weight.size = K*C*R*S products for each output pixel
    return module.weight.size * output_shape[2] * output_shape[3]


def _linear_macs(module, output_shape):
    return module.weight.size  # in_features * out_features


MAC_COUNTERS = {nn.Conv2d: _conv_macs, nn.Linear: _linear_macs}


@dataclass
class Row:
    """One call of one leaf layer."""
    name: str            # dotted name, e.g. "layer1.0.conv1"
    type: str            # class name, e.g. "Conv2d"
    output_shape: tuple  # with the batch size of ``input_shape``
    params: int          # parameters of this layer (counted at its first call only)
    macs: int            # multiply-accumulates for one sample


@dataclass
class Summary:
    """What :func:`summary` found; ``str()`` is a table, one row per leaf-layer call."""
    model_name: str
    input_shape: tuple
    rows: list
    total_params: int
    trainable_params: int
    total_macs: int      # per sample

    def __str__(self):
        name_width = max([len(f"{r.name} ({r.type})") for r in self.rows] + [12]) + 2
        shape_width = max([len(str(r.output_shape)) for r in self.rows] + [12]) + 2
        header = f"{'Layer (type)':<{name_width}}{'Output shape':<{shape_width}}{'Params':>12}{'MACs':>16}"
        rule = "-" * len(header)
        lines = [f"{self.model_name} summary for input {self.input_shape}", rule, header, rule]
        for r in self.rows:
            lines.append(f"{r.name + ' (' + r.type + ')':<{name_width}}{str(r.output_shape):<{shape_width}}"
                         f"{r.params:>12,}{r.macs:>16,}")
        lines += ["=" * len(header),
                  f"Total params:     {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Total MACs:       {self.total_macs:,} = {self.total_macs / 1e9:.2f} G per sample "
                  "(conv + linear multiply-accumulates)"]
        return "\n".join(lines)


def _check_input_shape(input_shape):
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (3, 4)
            or not all(isinstance(s, numbers.Integral) and s > 0 for s in input_shape)):
        raise ValueError(f"summary: input_shape must be (N, C, H, W) or (C, H, W) with positive "
                         f"sizes, e.g. (1, 3, 224, 224); got {input_shape!r}")
    shape = tuple(int(s) for s in input_shape)
    return shape if len(shape) == 4 else (1,) + shape


def summary(model, input_shape, empty_batch=True):
    """Run ``model`` once on zeros of ``input_shape`` and tabulate every leaf layer.

    model: an ``nn.Module``; input_shape: (N, C, H, W) or (C, H, W) (then N = 1).
    Runs under ``no_grad`` in eval mode and restores each module's mode afterwards.
    The input has the dtype and device of the model's parameters (float32 by default).
    Returns a :class:`Summary` with ``rows``, ``total_params``, ``total_macs`` (per sample).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: expected an nn.Module, got {type(model).__name__}")
    input_shape = _check_input_shape(input_shape)
    parameters = list(model.parameters())
    dtype = parameters[0].dtype if parameters else np.float32
    device = parameters[0].device if parameters else "cpu"
    # batch norm without running statistics normalizes by the batch even in eval mode,
    # which an empty batch cannot do: such models need the real batch
    batch_statistics = any(isinstance(m, nn.BatchNorm2d) and not m.track_running_stats
                           for m in model.modules())
    probe_batch = 0 if empty_batch and not batch_statistics else input_shape[0]
    probe_shape = (probe_batch,) + input_shape[1:]

    rows, counted, handles = [], set(), []

    def record(name):
        def hook(module, inputs, output):
            shape = tuple(output.shape) if isinstance(output, Tensor) else ()
            counter = MAC_COUNTERS.get(type(module))
            params = 0
            if id(module) not in counted:  # a layer called twice holds its parameters once
                counted.add(id(module))
                params = sum(p.size for p in module.parameters(recurse=False))
            rows.append(Row(name=name, type=type(module).__name__,
                            output_shape=(input_shape[0],) + shape[1:] if shape else shape,
                            params=params, macs=int(counter(module, shape)) if counter else 0))
        return hook

    modes = {id(m): (m, m.training) for m in model.modules()}
    try:
        for name, module in model.named_modules():
            if not any(True for _ in module.children()):  # a leaf (the model itself if it has no children)
                handles.append(module.register_forward_hook(record(name or type(module).__name__)))
        model.eval()
        with no_grad():
            model(zeros(probe_shape, dtype=dtype, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.values():
            object.__setattr__(module, "training", training)

    return Summary(model_name=type(model).__name__, input_shape=input_shape, rows=rows,
                   total_params=sum(p.size for p in parameters),
                   trainable_params=sum(p.size for p in parameters if p.requires_grad),
                   total_macs=sum(r.macs for r in rows))
