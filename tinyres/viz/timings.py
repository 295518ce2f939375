"""Kernel timings as grouped bars: one group per case, one bar per implementation."""
from .figures import SERIES_COLORS, new_figure, save


def plot_kernel_timings(timings, path=None, title=None, unit="ms", log=True):
    """Grouped horizontal bars: one group per case, one bar per implementation.

    timings: ``{case label: {implementation: time}}``, e.g.
    ``{"conv2d fwd": {"numpy": 3.1, "numba": 1.2, "torch": 0.4}}``; a missing entry is
    left out.  Shorter is faster; the x axis is logarithmic by default.
    """
    cases = list(timings)
    implementations = []
    for values in timings.values():
        implementations += [name for name in values if name not in implementations]
    height = 0.8 / max(1, len(implementations))
    figure = new_figure(9, 1.3 + 0.25 * len(cases) * max(2, len(implementations)))
    axes = figure.subplots()
    for index, name in enumerate(implementations):
        rows = [row for row, case in enumerate(cases) if name in timings[case]]
        values = [timings[cases[row]][name] for row in rows]
        positions = [row + (index - (len(implementations) - 1) / 2) * height for row in rows]
        bars = axes.barh(positions, values, height=height * 0.95, label=name,
                         color=SERIES_COLORS[index % len(SERIES_COLORS)])
        axes.bar_label(bars, [f"{value:.0f}" if value >= 100 else f"{value:.3g}" for value in values],
                       padding=2, fontsize=7)
    axes.set_yticks(range(len(cases)), cases)
    axes.invert_yaxis()
    if log:
        axes.set_xscale("log")
    axes.margins(x=0.15)
    axes.set(xlabel=f"time ({unit}, shorter is faster)", title=title or "Kernel timings")
    axes.grid(alpha=0.3, axis="x", which="both")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return save(figure, path)
