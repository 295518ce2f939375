"""A chart of times relative to PyTorch: horizontal bars from 1 on a log axis centred on 1.

A ratio of 2 (twice PyTorch's time) and one of 1/2 (half its time) are the same distance
from 1 on a log axis, so the bars are drawn from 1 outwards: right is slower than PyTorch,
left is faster.  The limits are symmetric: 1/4 .. 4, or 1/8 .. 8 when a ratio needs it;
a bar beyond that is cut at the edge and carries its number inside.
Sized for a page about 800 px wide: 8 inches, text of 9 pt and more.
"""
import math

import numpy as np

FONT_POINTS = 9
WIDTH_INCHES = 8.0
ROW_INCHES = 0.34                 # per shape: the bars of every backend side by side
AXIS_INCHES = 5.4                 # the axis, once the shape labels are drawn beside it
LABEL_INCHES = 0.4                # one ratio label ("0.85") at FONT_POINTS
COLOURS = {"numpy": "#4c72b0", "numba": "#dd8452", "cupy": "#55a868"}


def label_octaves(limit):
    """Octaves of the axis that one ratio label covers: 2 log2(L) * LABEL_INCHES / AXIS_INCHES.

    An axis from 1/L to L spans 2 log2 L octaves over AXIS_INCHES.
    """
    return 2 * math.log2(limit) * LABEL_INCHES / AXIS_INCHES


def symmetric_limit(ratios, smallest=4.0, largest=8.0):
    """The smallest power of two L >= ``smallest`` with every ratio and its label inside [1/L, L].

    At most ``largest``: a ratio beyond it is drawn to the edge (the NumPy reference's
    elementwise kernels take 10-30 times PyTorch's time, and an axis wide enough for them
    would shrink every other bar to a stub).
    """
    finite = [abs(math.log2(r)) for r in ratios if r and np.isfinite(r) and r > 0]
    extreme = max(finite, default=0.0)
    limit = smallest
    while extreme + label_octaves(limit) > math.log2(limit) and limit < largest:
        limit *= 2
    return limit


def _ratio_label(ratio):
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def _power_of_two_label(value):
    return f"{value:g}" if value >= 1 else f"1/{1 / value:g}"


def _draw_bar(axis, y, ratio, height, colour, limit):
    """One bar from 1 to ``ratio`` (cut at the axis's edge), with its number at its end.

    The number sits beyond the bar's end where there is room, else inside it in white.
    """
    shown = min(max(ratio, 1 / limit), limit)
    axis.barh(y, shown - 1.0, left=1.0, height=height, color=colour)
    slower = ratio >= 1
    if abs(math.log2(shown)) + label_octaves(limit) <= math.log2(limit):
        axis.text(ratio * 1.06 if slower else ratio / 1.06, y, _ratio_label(ratio), va="center",
                  ha="left" if slower else "right", fontsize=FONT_POINTS)
        return
    cut = "" if shown == ratio else " >" if slower else " <"
    axis.text(shown / 1.06 if slower else shown * 1.06, y, _ratio_label(ratio) + cut, va="center",
              ha="right" if slower else "left", color="white", fontsize=FONT_POINTS, fontweight="bold")


def plot_ratios(panels, path):
    """Draw the panels into ``path`` (a PNG).

    panels: [(panel title, [(row label, {implementation: time / PyTorch's time})])];
    one panel per op, one row per shape, one bar per implementation (one colour each).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    implementations = list(dict.fromkeys(name for _, panel_rows in panels
                                         for _, ratios in panel_rows for name in ratios))
    colours = {name: COLOURS.get(name, f"C{index + 3}") for index, name in enumerate(implementations)}
    limit = symmetric_limit([r for _, panel_rows in panels for _, ratios in panel_rows
                             for r in ratios.values()])
    heights = [len(panel_rows) + 0.9 for _, panel_rows in panels]   # + room for the title
    with plt.rc_context({"font.size": FONT_POINTS}):
        figure, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                                    figsize=(WIDTH_INCHES, ROW_INCHES * sum(heights) + 1.3),
                                    gridspec_kw={"height_ratios": heights})
        bar_height = 0.8 / max(1, len(implementations))
        for axis, (panel_title, panel_rows) in zip(axes[:, 0], panels):
            for row, (_, ratios) in enumerate(panel_rows):
                for index, name in enumerate(implementations):
                    ratio = ratios.get(name)
                    if ratio is None or not np.isfinite(ratio):
                        continue
                    y = row + (index - (len(implementations) - 1) / 2) * bar_height
                    _draw_bar(axis, y, ratio, bar_height, colours[name], limit)
            axis.axvline(1.0, color="black", linewidth=1.2)
            axis.set_yticks(range(len(panel_rows)), [label for label, _ in panel_rows])
            axis.set_ylim(len(panel_rows) - 0.5, -0.5)         # the first row on top
            axis.set_title(panel_title, loc="left", fontsize=FONT_POINTS + 1, fontweight="bold")
            axis.grid(axis="x", alpha=0.3)
        axis = axes[-1, 0]
        axis.set_xscale("log", base=2)
        axis.set_xlim(1 / limit, limit)
        ticks = [2.0 ** power for power in range(-int(math.log2(limit)), int(math.log2(limit)) + 1)]
        axis.set_xticks(ticks, [_power_of_two_label(t) for t in ticks])
        axis.minorticks_off()
        axis.set_xlabel("time / PyTorch's time (log scale):  left of 1 faster, right of 1 slower")
        top = axes[0, 0]
        top.text(1.0, 1.0, "PyTorch", transform=top.get_xaxis_transform(), ha="center",
                 va="bottom", fontsize=FONT_POINTS, fontweight="bold")
        handles = [Patch(color=colours[name], label=f"tinyres {name}")
                   for name in implementations]
        handles.append(Line2D([], [], color="black", label="PyTorch = 1"))
        figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
                      bbox_to_anchor=(0.5, 1.0))
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.3 / figure.get_figheight()))
        figure.savefig(path, dpi=110)
        plt.close(figure)
