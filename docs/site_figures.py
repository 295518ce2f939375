"""The pictures of the concept pages, drawn by tinyres itself each time the site is built.

Each entry of :data:`FIGURES` names a PNG under ``figures/drawn/`` and the function that
draws it with tinyres's own plotting code (:mod:`tinyres.viz`), so a picture shows what
the code does today.  Pages embed them as ``../figures/drawn/<name>.png``.
"""
import io

import numpy as np

DPI = 110


def autograd_graph():
    """The graph of lesson 1, L = (a b + c) a, with a used twice."""
    import tinyres as tr
    from tinyres import viz

    a, b, c = (tr.tensor(value, requires_grad=True) for value in (2.0, -3.0, 10.0))
    e = a * b
    d = e + c
    loss = d * a
    return viz.draw_graph(loss, names=dict(a=a, b=b, c=c, e=e, d=d, L=loss),
                          title="L = (a*b + c) * a")


def im2col_columns():
    """im2col of a 4 x 4 image under a 3 x 3 kernel with padding 1, one column outlined."""
    from tinyres import viz

    return viz.draw_im2col(np.arange(1.0, 17.0).reshape(4, 4), kernel_size=3, padding=1,
                           column=5)


def batch_norm_channels():
    """Three channels before and after training-mode batch norm: each ends at mean 0, std 1."""
    import tinyres as tr
    import tinyres.functional as F
    from tinyres import viz
    from tinyres.viz import SERIES_COLORS

    rng = np.random.default_rng(0)
    means, scales = np.array([-3.0, 1.0, 5.0]), np.array([0.5, 2.0, 1.0])
    x = rng.standard_normal((64, 3, 8, 8)) * scales[None, :, None, None] \
        + means[None, :, None, None]
    y = F.batch_norm(tr.tensor(x), None, None, training=True).numpy()
    figure = viz.new_figure(9, 3.2)
    before, after = figure.subplots(1, 2, sharey=True)
    for channel in range(3):
        style = dict(bins=40, alpha=0.55, color=SERIES_COLORS[channel], label=f"channel {channel}")
        before.hist(x[:, channel].ravel(), **style)
        after.hist(y[:, channel].ravel(), **style)
    before.set(title="x: each channel has its own mean and scale", xlabel="value",
               ylabel="count")
    after.set(title="batch_norm(x), training mode: mean 0, variance 1", xlabel="value")
    before.legend(fontsize=8)
    return figure


def residual_blocks():
    """The basic and the bottleneck block (He et al., Fig. 5)."""
    from tinyres import viz

    return viz.draw_residual_blocks()


def shortcut_options():
    """Shortcut options A, B and C where the shape changes and where it does not."""
    from tinyres import viz

    return viz.draw_shortcut_options()


FIGURES = {"autograd-graph": autograd_graph, "im2col": im2col_columns,
           "batch-norm-channels": batch_norm_channels, "residual-blocks": residual_blocks,
           "shortcut-options": shortcut_options}


def png(name):
    """The PNG bytes of figure ``name``."""
    buffer = io.BytesIO()
    FIGURES[name]().savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
