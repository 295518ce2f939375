"""Max pooling with overlapping windows, drawn: who wins which window, and where the gradient goes.

The picture runs the NumPy reference kernels on a tiny image and shows what the backward
pass must do where windows overlap: a pixel that wins several windows receives the sum of
their gradients.
"""
import numpy as np
from matplotlib.patches import Rectangle

from ..backend import numpy_kernels
from .figures import SERIES_COLORS, new_figure, save


def pool_windows(image, kernel_size, stride):
    """Every max-pooling window of a 2-D ``image`` with its winner.

    Returns ``[(ho, wo, (row, col) of the window's top-left pixel, (row, col) of its
    winner), ...]`` in row-major order of the output, the winner being the first maximum
    as :func:`tinyres.backend.numpy_kernels.max_pool2d_forward` picks it.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel_w = kernel_size[1]
    _, argmax = numpy_kernels.max_pool2d_forward(image[None, None], kernel_size, stride, (0, 0))
    windows = []
    for (ho, wo), tap in np.ndenumerate(argmax[0, 0]):
        corner = (ho * stride[0], wo * stride[1])
        windows.append((ho, wo, corner, (corner[0] + tap // kernel_w, corner[1] + tap % kernel_w)))
    return windows


def draw_max_pool_windows(image, kernel_size=3, stride=2, grad_output=None, path=None):
    """Max pooling with overlapping windows: who wins which window, and where the gradient goes.

    image: (H, W).  grad_output: (Ho, Wo) upstream gradient (default 1, 2, 3, ... so that
    sums can be read off).  Left: the image with each window outlined in its own colour
    and its winner ringed.  Middle: the pooled output, each cell in its window's colour,
    with its gradient.  Right: dL/dx from :func:`tinyres.backend.numpy_kernels.max_pool2d_backward`:
    every window hands its gradient to its winner, and a pixel that wins several windows
    receives the **sum** of their gradients.
    """
    pair = lambda v: (v, v) if np.isscalar(v) else tuple(v)  # noqa: E731
    kernel_size, stride = pair(kernel_size), pair(stride)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"draw_max_pool_windows: image must be (H, W), got shape {image.shape}")
    out, argmax = numpy_kernels.max_pool2d_forward(image[None, None], kernel_size, stride, (0, 0))
    out = out[0, 0]
    if grad_output is None:
        grad_output = np.arange(1, out.size + 1, dtype=np.float64).reshape(out.shape)
    grad_output = np.asarray(grad_output, dtype=np.float64)
    if grad_output.shape != out.shape:
        raise ValueError(f"draw_max_pool_windows: grad_output must be {out.shape}, "
                         f"got {grad_output.shape}")
    dx = numpy_kernels.max_pool2d_backward(grad_output[None, None], argmax, (1, 1, *image.shape),
                                           kernel_size, stride, (0, 0))[0, 0]
    windows = pool_windows(image, kernel_size, stride)
    wins = np.zeros(image.shape, dtype=int)
    for *_, winner in windows:
        wins[winner] += 1
    colors = [SERIES_COLORS[index % len(SERIES_COLORS)] for index in range(len(windows))]

    figure = new_figure(2.4 + 0.6 * (2 * image.shape[1] + out.shape[1]), 2.0 + 0.6 * image.shape[0])
    image_axes, out_axes, grad_axes = figure.subplots(
        1, 3, width_ratios=[image.shape[1], out.shape[1], image.shape[1]])
    for axes, values in ((image_axes, image), (grad_axes, dx)):
        axes.imshow(np.zeros(values.shape), cmap="Greys", vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(image):
        image_axes.text(col, row, f"{value:g}", ha="center", va="center", fontsize=11)
    for index, ((ho, wo, corner, winner), color) in enumerate(zip(windows, colors)):
        inset = 0.06 + 0.07 * (index % 4)            # nested outlines keep overlaps visible
        image_axes.add_patch(Rectangle(
            (corner[1] - 0.5 + inset, corner[0] - 0.5 + inset), kernel_size[1] - 2 * inset,
            kernel_size[0] - 2 * inset, fill=False, edgecolor=color, linewidth=2))
        ring = 0.36 + 0.07 * (wins[winner] > 1) * (index % 3)
        image_axes.add_patch(Rectangle((winner[1] - ring, winner[0] - ring), 2 * ring, 2 * ring,
                                       fill=False, edgecolor=color, linewidth=1.6, linestyle="--"))
        out_axes.add_patch(Rectangle((wo - 0.5, ho - 0.5), 1, 1, facecolor=color, alpha=0.35))
        out_axes.text(wo, ho, f"{out[ho, wo]:g}\ngrad {grad_output[ho, wo]:g}", ha="center",
                      va="center", fontsize=10)
    out_axes.imshow(np.zeros(out.shape), cmap="Greys", vmin=0, vmax=1, alpha=0.0)
    for (row, col), value in np.ndenumerate(dx):
        shared = wins[row, col] > 1
        grad_axes.text(col, row, f"{value:g}", ha="center", va="center", fontsize=11,
                       fontweight="bold" if shared else "normal",
                       color="tab:red" if shared else ("black" if value else "0.6"))
        if shared:
            grad_axes.add_patch(Rectangle((col - 0.45, row - 0.45), 0.9, 0.9, fill=False,
                                          edgecolor="tab:red", linewidth=2))
    for axes, values in ((image_axes, image), (out_axes, out), (grad_axes, dx)):
        axes.set_xticks(np.arange(values.shape[1] + 1) - 0.5, minor=True)   # pixel borders
        axes.set_yticks(np.arange(values.shape[0] + 1) - 0.5, minor=True)
        axes.grid(which="minor", color="0.85", linewidth=0.8)
        axes.tick_params(which="both", length=0)
        axes.set_xticks([])
        axes.set_yticks([])
    image_axes.set_title(f"x: {kernel_size[0]}x{kernel_size[1]} windows, stride {stride[0]}\n"
                         "(winners ringed)", fontsize=10.5)
    out_axes.set_title("out = max per window\nand its gradient", fontsize=10.5)
    sums = []
    for position in [tuple(int(i) for i in where) for where in np.argwhere(wins > 1)]:
        parts = [f"{grad_output[ho, wo]:g}" for ho, wo, _, winner in windows
                 if tuple(int(i) for i in winner) == position]
        sums.append(f"pixel {position} won {len(parts)}: {' + '.join(parts)} = {dx[position]:g}")
    grad_axes.set_title("dL/dx: each window's gradient goes to its winner"
                        + ("\n" + "; ".join(sums) if sums else ""), fontsize=10.5)
    return save(figure, path)
