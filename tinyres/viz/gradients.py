"""Gradient norms per layer: how the size of dL/dW changes from the output back to the input."""
import numpy as np

from .figures import SERIES_COLORS, new_figure, save


def layer_gradient_norms(model):
    """``[(name, ||dL/dW||), ...]`` for every weight matrix or kernel, input side first.

    Reads ``.grad`` of each parameter with two or more axes (convolutions and the
    final linear layer), in the order ``named_parameters()`` lists them; call it after
    ``loss.backward()``.  A parameter without a gradient counts as 0.
    """
    norms = []
    for name, parameter in model.named_parameters():
        if parameter.ndim < 2:
            continue
        grad = parameter.grad
        norms.append((name, 0.0 if grad is None else float(np.linalg.norm(grad.numpy()))))
    return norms


def plot_gradient_norms(norms, path=None, title=None, log=True):
    """Gradient norm of each layer's weights against its depth, one line per network.

    norms: ``{network name: [(layer name, norm), ...]}`` as from :func:`layer_gradient_norms`
    (or plain lists of norms).  Layer 1 is the input side.  The y axis is logarithmic,
    so a gradient that shrinks by a constant factor per layer shows as a straight line.
    """
    figure = new_figure(7.5, 4)
    axes = figure.subplots()
    for index, (label, values) in enumerate(norms.items()):
        values = [value[1] if isinstance(value, tuple) else value for value in values]
        axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                  color=SERIES_COLORS[index % len(SERIES_COLORS)], label=label)
    if log:
        axes.set_yscale("log")
    axes.set(xlabel="layer (1 = next to the input)", ylabel="||dL/dW|| (gradient norm)",
             title=title or "Gradient norm per layer at initialization")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return save(figure, path)
