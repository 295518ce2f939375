"""The lessons' pictures, re-exported from :mod:`tinyres.viz`, where they live.

Kept so that ``from tinyres.lessons import pictures`` goes on working in the lessons
that use it (``pictures.plot_kernel_timings(...)``); new code imports :mod:`tinyres.viz`.
Nothing is defined here: the graph (:mod:`tinyres.viz.graph`), im2col
(:mod:`tinyres.viz.im2col`), gradient norms, kernel timings, the confusion matrix, the
image grid and the figure helpers (:mod:`tinyres.viz.figures`) are each in their module.
"""
from ..viz.confusion import confusion_matrix, plot_confusion_matrix
from ..viz.figures import HIGHLIGHT_COLOR, SERIES_COLORS, in_notebook, new_figure, save_or_show
from ..viz.gradients import layer_gradient_norms, plot_gradient_norms
from ..viz.graph import CONSTANT_COLOR, LEAF_COLOR, OP_COLOR, RESULT_COLOR, draw_graph, graph_nodes
from ..viz.im2col import draw_im2col
from ..viz.images import show_images
from ..viz.timings import plot_kernel_timings

__all__ = ["CONSTANT_COLOR", "HIGHLIGHT_COLOR", "LEAF_COLOR", "OP_COLOR", "RESULT_COLOR",
           "SERIES_COLORS", "confusion_matrix", "draw_graph", "draw_im2col", "graph_nodes",
           "in_notebook", "layer_gradient_norms", "new_figure", "plot_confusion_matrix",
           "plot_gradient_norms", "plot_kernel_timings", "save_or_show", "show_images"]
