"""The one place that makes and saves figures: every plot of :mod:`tinyres.viz` uses it.

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so plotting
from a script or a test never opens a window nor leaves global state behind: outside a
notebook a figure is drawn by the Agg (PNG) canvas; in a notebook a returned figure is
displayed inline.  Every PNG, written to a file or shown inline, has the same resolution,
:data:`DPI` dots per inch.
"""
import io
import os
import sys

from matplotlib.figure import Figure

DPI = 110   # dots per inch of every PNG, saved or shown inline

# Colours shared by the pictures: one per series (network, implementation, window) and
# one that marks what a picture is about.
SERIES_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")
HIGHLIGHT_COLOR = "tab:red"


def in_notebook():
    """True inside a Jupyter kernel (where figures are drawn inline).

    Asked of the running IPython shell, not of the imported modules: a script or a test
    that merely imports ``ipykernel`` (to start a kernel, say) is not a notebook.
    """
    if "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return getattr(shell, "kernel", None) is not None


def _png_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _register_inline_display():
    """Teach the notebook to draw a bare ``Figure`` (one not made by pyplot) as a PNG."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _png_bytes)


def new_figure(width, height):
    """An empty figure of ``width`` x ``height`` inches that can be drawn without a display.

    In a notebook, a cell that ends with the figure shows it inline.
    """
    figure = Figure(figsize=(width, height), layout="constrained")
    if in_notebook():
        _register_inline_display()
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(figure)
    return figure


def save(figure, path=None):
    """Write ``figure`` to ``path`` at :data:`DPI` (making its folder); returns the figure.

    The format follows the file name (``.png``: PNG).  With ``path=None`` nothing is
    written, so every plot ends with ``return save(figure, path)``.
    """
    if path is not None:
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        figure.savefig(path, dpi=DPI)
    return figure


def save_or_show(figure, path=None):
    """Show ``figure`` inline in a notebook; elsewhere write it to ``path`` as a PNG.

    In a notebook the figure is displayed, and also saved when ``path`` is given.
    Outside a notebook ``path`` defaults to ``"<figure label>.png"`` (or ``figure.png``)
    in the current folder.  Returns the path written, or None when nothing was saved.
    """
    if in_notebook():
        from IPython.display import display
        _register_inline_display()
        display(figure)
        if path is None:
            return None
    elif path is None:
        path = (figure.get_label() or "figure") + ".png"
    save(figure, path)
    return os.fspath(path)
