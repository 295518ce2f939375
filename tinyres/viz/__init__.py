"""Plots, one module per concept; every name is also here, ``viz.plot_history``, ``viz.draw_graph``.

* :mod:`~tinyres.viz.figures` -- making, saving and showing a figure (one DPI for all);
* :mod:`~tinyres.viz.curves` -- training curves and He et al.'s degradation figure;
* :mod:`~tinyres.viz.graph` -- the computational graph behind a tensor;
* :mod:`~tinyres.viz.im2col` -- which pixels land in which column;
* :mod:`~tinyres.viz.gradients` -- gradient norms per layer;
* :mod:`~tinyres.viz.timings` -- kernel timings;
* :mod:`~tinyres.viz.confusion` and :mod:`~tinyres.viz.images` -- a classifier's results;
* :mod:`~tinyres.viz.blocks` and :mod:`~tinyres.viz.pooling` -- diagrams of residual blocks
  and of overlapping max-pooling windows.

Every function returns its figure and, given ``path``, also writes it.  The package sits
below the lessons: :mod:`tinyres.lessons` imports it, never the reverse.
"""
from .blocks import (block_steps, draw_block_on, draw_residual_block, draw_residual_blocks,
                     draw_shortcut_options, shortcut_kind, shortcut_step)
from .confusion import confusion_matrix, plot_confusion_matrix
from .curves import DEPTH_COLORS, plot_degradation, plot_history
from .figures import DPI, SERIES_COLORS, in_notebook, new_figure, save, save_or_show
from .gradients import layer_gradient_norms, plot_gradient_norms
from .graph import draw_graph, graph_nodes
from .im2col import draw_im2col
from .images import show_images
from .pooling import draw_max_pool_windows, pool_windows
from .timings import plot_kernel_timings

__all__ = ["DEPTH_COLORS", "DPI", "SERIES_COLORS", "block_steps", "confusion_matrix",
           "draw_block_on", "draw_graph", "draw_im2col", "draw_max_pool_windows",
           "draw_residual_block", "draw_residual_blocks", "draw_shortcut_options", "graph_nodes",
           "in_notebook", "layer_gradient_norms", "new_figure", "plot_confusion_matrix",
           "plot_degradation", "plot_gradient_norms", "plot_history", "plot_kernel_timings",
           "pool_windows", "save", "save_or_show", "shortcut_kind", "shortcut_step",
           "show_images"]
