"""A grid of images with a title under each (samples of a data set, misclassified digits)."""
import numpy as np

from .figures import new_figure, save


def show_images(images, titles=None, columns=8, path=None, title=None):
    """A grid of images (N, C, H, W) or (N, H, W), with an optional title under each."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.transpose(0, 2, 3, 1)
        if images.shape[-1] == 1:
            images = images[..., 0]
    count = len(images)
    if count == 0:
        raise ValueError("show_images: no images to show")
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = new_figure(1.3 * columns, 1.45 * rows + (0.4 if title else 0))
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for index, axes in enumerate(grid):
        axes.set_axis_off()
        if index >= count:
            continue
        axes.imshow(images[index], cmap="gray_r" if images[index].ndim == 2 else None)
        if titles is not None:
            axes.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    return save(figure, path)
