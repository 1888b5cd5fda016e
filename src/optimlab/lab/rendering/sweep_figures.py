"""The sweep's pictures: the final metric against the lr, and the lr × λ heatmaps."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from optimlab.lab.rendering.figures import (
    LINE_STYLES,
    MARKERS,
    REFERENCE,
    Style,
    colours,
    legend_outside,
    new_figure,
    spans_decades,
    styles,
)
from optimlab.lab.running.sweep import Point, SweepResults, lines_of


def line_styles(sweep: SweepResults) -> dict[str, Style]:
    """The lines' styles: with λ swept, each optimizer's colour for all its lines, and a
    line style and marker per λ; else one style per optimizer."""
    if not sweep.weight_decays:
        return styles([line.label for line in sweep.lines])
    palette = colours([base.label for base in sweep.bases])
    count = len(sweep.lines)
    chosen = {}
    for base in sweep.bases:
        for j, line in enumerate(lines_of(base, sweep.weight_decays)):
            chosen[line.label] = Style(palette[base.label], LINE_STYLES[j % len(LINE_STYLES)],
                                       MARKERS[j % len(MARKERS)], len(chosen), count)
    return chosen


def sweep_figure(points: dict[str, list[Point]], title: str, ylabel: str,
                 higher_is_better: bool, target: float | None = None,
                 chance: float | None = None, look: dict[str, Style] | None = None) -> Figure:
    """Final metric vs lr (log x), a line per optimizer; ✕ on the floor where a run
    diverged or ended no better than chance (a failed run has no useful final value, but
    it is not dropped)."""
    figure, (axes,) = new_figure(title, "learning rate (log scale)", ylabel,
                                 size=(8.6, 4.6))
    axes.set_xscale("log")
    look = look or styles(list(points))
    floor = axes.get_xaxis_transform()  # x in data, y in axes fraction
    every: list[float] = []
    any_failed = False
    for row, (label, series) in enumerate(points.items()):
        # a failed point breaks the line (nan): no segment is drawn across it
        scored = [(p.lr, math.nan if p.final is None or p.failed else p.final)
                  for p in series]
        finite = [value for _, value in scored if not math.isnan(value)]
        if finite:
            every += finite
            axes.plot(*zip(*scored, strict=True), label=label,
                      **look[label].line(len(scored), markevery=1))
        else:  # failed at every lr: still in the legend
            axes.plot([], [], label=f"{label} (failed at every lr)",
                      **look[label].line(1, markevery=1))
        for point in series:
            if point.failed:
                any_failed = True
                # one row of ✕ per optimizer along the floor, so that none hides another
                axes.plot(point.lr, 0.03 + 0.045 * row, marker="X", markersize=9,
                          color=look[label].colour, markeredgecolor="black",
                          linestyle="none", transform=floor, clip_on=False)
    if target is not None:
        axes.axhline(target, color=REFERENCE, linestyle="--", linewidth=1, label="target")
    if chance is not None and every and min(every) <= chance * 1.5:
        axes.axhline(chance, color=REFERENCE, linestyle=":", linewidth=1, label="chance")
    if any_failed:
        axes.plot([], [], marker="X", color="white", markeredgecolor="black",
                  linestyle="none", label="failed at this lr\n(diverged, or chance)")
    if not higher_is_better and spans_decades(every):
        axes.set_yscale("log")
    legend_outside(axes)
    return figure


def cell_text(point: Point | None) -> str:
    if point is None:
        return ""
    if point.final is None or point.failed == point.runs:
        return "✕\ndiverged" if point.diverged else "✕\nchance"
    text = f"{point.final:.3g}"
    return text + ("\n(✕ some)" if point.failed else "")


def heatmap_figure(sweep: SweepResults, title: str, label: str) -> Figure:
    """One panel per optimizer: the final metric over lr (x) × λ (y), on one colour scale
    (brighter is better), every cell's value written in it, failed cells grey with ✕, the
    best cell of each panel framed and starred."""
    bases, lrs, wds = sweep.bases, sweep.lrs, sweep.weight_decays or []
    metric = sweep.results.task.headline
    grids = {base.label: sweep.grid(base) for base in bases}
    good = [p.final for grid in grids.values() for p in grid.values()
            if p.final is not None and not p.failed]
    norm = Normalize(min(good), max(good)) if good else Normalize(0, 1)
    colour_map = plt.get_cmap("viridis" if metric.higher_is_better else "viridis_r")
    columns = min(3, len(bases))
    rows = math.ceil(len(bases) / columns)
    width = 0.62 * len(lrs) + 1.2
    figure, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                figsize=(width * columns + 1.0, 0.5 * len(wds) * rows + 1.6))
    for panel, base in zip(axes.flat, bases, strict=False):
        draw_heatmap(panel, grids[base.label], lrs, wds, norm, colour_map)
        best = sweep.best_cell(base)
        if best is not None:
            wd, point = best
            x, y = lrs.index(point.lr), wds.index(wd)
            panel.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, linewidth=3,
                                      edgecolor="black"))
            panel.text(x - 0.45, y + 0.45, "★", ha="left", va="top", fontsize=9,
                       color="black")
            panel.set_title(f"{base.label}\nbest ★ lr={point.lr:g}, λ={wd:g}", fontsize=10)
        else:
            panel.set_title(base.label, fontsize=10)
    for panel in list(axes.flat)[len(bases):]:
        panel.set_visible(False)
    figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colour_map), ax=axes,
                    label=label, shrink=0.9)
    figure.suptitle(title)
    return figure


def draw_heatmap(panel, grid: dict[tuple[float, float], Point], lrs: list[float],
                 wds: list[float], norm: Normalize, colour_map) -> None:
    """The cells of one optimizer's lr × λ grid."""
    for (wd, lr), point in grid.items():
        x, y = lrs.index(lr), wds.index(wd)
        failed = point.final is None or point.failed == point.runs
        colour = "#dddddd" if failed else colour_map(norm(point.final))
        panel.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=colour,
                                  edgecolor="white"))
        dark = not failed and norm(point.final) < 0.55
        panel.text(x, y, cell_text(point), ha="center", va="center", fontsize=7.5,
                   color="white" if dark else "black")
    panel.set_xlim(-0.5, len(lrs) - 0.5)
    panel.set_ylim(-0.5, len(wds) - 0.5)
    panel.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], rotation=45, fontsize=8)
    panel.set_yticks(range(len(wds)), [f"{wd:g}" for wd in wds], fontsize=8)
    panel.set_xlabel("learning rate")
    panel.set_ylabel("weight decay λ")
