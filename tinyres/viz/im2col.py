"""im2col, drawn: which pixels of a small image land in which column of the unfolded matrix."""
import numpy as np
from matplotlib.patches import Rectangle

from ..backend import numpy_kernels
from ..backend.shapes import conv_output_size
from .figures import HIGHLIGHT_COLOR, new_figure, save


def draw_im2col(image, kernel_size, stride=1, padding=0, dilation=1, column=0, path=None):
    """im2col on a tiny one-channel image: which pixels land in which column.

    image: (H, W).  Left: the padded image, each pixel numbered (padding shown as 0),
    with the receptive field of output pixel ``column`` (in row-major order) outlined.
    Right: ``im2col``'s (R*S, Ho*Wo) matrix of those numbers, that column outlined;
    it reads the outlined pixels top to bottom in (r, s) order.
    The matrix is computed by :func:`tinyres.backend.numpy_kernels.im2col` itself.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"draw_im2col: image must be (H, W), got shape {image.shape}")
    pair = lambda v: (v, v) if np.isscalar(v) else tuple(v)  # noqa: E731
    kernel_size, stride, padding, dilation = map(pair, (kernel_size, stride, padding, dilation))
    height, width = image.shape
    cols = numpy_kernels.im2col(image[None, None], kernel_size, stride, padding, dilation)
    # the same unfolding of 1-based pixel numbers says where every entry came from
    numbers = np.arange(1, height * width + 1, dtype=np.float64).reshape(1, 1, height, width)
    sources = numpy_kernels.im2col(numbers, kernel_size, stride, padding, dilation).astype(int)
    if not 0 <= column < cols.shape[1]:
        raise ValueError(f"draw_im2col: column must lie in [0, {cols.shape[1]}), got {column}")
    padded = np.pad(image, (padding[0:1] * 2, padding[1:2] * 2))
    padded_numbers = np.pad(numbers[0, 0], (padding[0:1] * 2, padding[1:2] * 2)).astype(int)

    figure = new_figure(3.0 + 0.42 * (padded.shape[1] + cols.shape[1]),
                        1.2 + 0.42 * max(padded.shape[0], cols.shape[0]))
    image_axes, cols_axes = figure.subplots(1, 2, width_ratios=[padded.shape[1], cols.shape[1]])
    image_axes.imshow(padded, cmap="Blues", vmin=min(0, image.min()), vmax=image.max() * 1.6)
    for (row, col), value in np.ndenumerate(padded_numbers):
        image_axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                        color="0.55" if value == 0 else "black")
    out_w = conv_output_size(width, kernel_size[1], stride[1], padding[1], dilation[1])
    out_row, out_col = divmod(column, out_w)
    for r in range(kernel_size[0]):      # tap (r, s) of output (ho, wo) reads padded pixel
        for s in range(kernel_size[1]):  # (ho*sh + r*dh, wo*sw + s*dw)
            row, col = out_row * stride[0] + r * dilation[0], out_col * stride[1] + s * dilation[1]
            image_axes.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False,
                                           edgecolor=HIGHLIGHT_COLOR, linewidth=2))
    image_axes.set_title(f"padded image {padded.shape[0]}x{padded.shape[1]}\n"
                         f"(receptive field of output ({out_row}, {out_col}))", fontsize=9)
    cols_axes.imshow(np.where(sources == 0, 0, cols), cmap="Blues",
                     vmin=min(0, image.min()), vmax=image.max() * 1.6, aspect="equal")
    for (row, col), value in np.ndenumerate(sources):
        cols_axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                       color="0.55" if value == 0 else "black")
    cols_axes.add_patch(Rectangle((column - 0.5, -0.5), 1, cols.shape[0], fill=False,
                                  edgecolor=HIGHLIGHT_COLOR, linewidth=2))
    cols_axes.set_title(f"cols = im2col(x): {cols.shape[0]} x {cols.shape[1]}\n"
                        "(rows: kernel taps (r, s); columns: output pixels)", fontsize=9)
    cols_axes.set_yticks(range(cols.shape[0]),
                         [f"({r},{s})" for r in range(kernel_size[0]) for s in range(kernel_size[1])],
                         fontsize=7)
    cols_axes.set_xticks(range(cols.shape[1]), range(cols.shape[1]), fontsize=7)
    image_axes.set_xticks([])
    image_axes.set_yticks([])
    figure.suptitle(f"kernel {kernel_size[0]}x{kernel_size[1]}, stride {stride[0]}, "
                    f"padding {padding[0]}, dilation {dilation[0]}", fontsize=10)
    return save(figure, path)
