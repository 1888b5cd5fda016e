"""Figures: matplotlib drawings of records (never of text), one function per picture.

Each optimizer keeps its colour in every figure of every report (``colours``); legends sit
outside the axes so that they never cover a curve; a y axis turns logarithmic when the
values it shows span more than a decade.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, and none is wanted in tests
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from optimlab.lab.records import Run

NAMED_COLOURS = {"sgd": "#7f7f7f", "momentum": "#1f77b4", "nesterov": "#17becf",
                 "adagrad": "#8c564b", "rmsprop": "#2ca02c", "adam": "#d62728",
                 "adamw": "#9467bd"}
SPARE_COLOURS = ["#ff7f0e", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39",
                 "#7b4173", "#3182bd", "#e6550d", "#31a354"]
BAND_ALPHA = 0.18
DPI = 110


def colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per spec label: a named optimizer's own colour (to its first spec), then
    spare colours, so that ``adam`` is the same red in every report."""
    chosen: dict[str, str] = {}
    spare = iter(SPARE_COLOURS * (1 + len(labels) // len(SPARE_COLOURS)))
    for label in labels:
        own = NAMED_COLOURS.get(label.partition(":")[0])
        chosen[label] = own if own and own not in chosen.values() else next(spare)
    return chosen


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def new_figure(title: str, xlabel: str, ylabel: str, size: tuple[float, float] = (8.0, 4.2),
               panels: int = 1):
    """A figure and its list of axes (a wide main panel, then narrower ones), labelled."""
    figure, axes = plt.subplots(1, panels, figsize=size, layout="constrained", squeeze=False,
                                width_ratios=[2] + [1] * (panels - 1))
    axes = list(axes[0])
    axes[0].set_title(title)
    for panel in axes:
        panel.set_xlabel(xlabel)
        panel.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    return figure, axes


def spans_decades(values: Sequence[float]) -> bool:
    """True when positive values span more than a factor of 10 (a log axis helps)."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return len(positive) > 1 and max(positive) / min(positive) > 10 and len(positive) == len(
        [v for v in values if math.isfinite(v)])


def legend_outside(axes, source=None) -> None:
    """The legend of ``source``'s lines (default: ``axes``'s), right of ``axes``."""
    handles, labels = (source or axes).get_legend_handles_labels()
    if handles:
        axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    fontsize="small", frameon=False)


def seed_stats(runs: Sequence[Run], metric: str, x: str = "step"):
    """Per step over seeds: x (step, or mean wall time), mean, min and max of ``metric``."""
    by_step: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for step, wall, value in zip(*run.series(metric), strict=True):
            by_step.setdefault(step, []).append((wall, value))
    steps = sorted(by_step)
    xs = [step if x == "step" else sum(w for w, _ in by_step[step]) / len(by_step[step])
          for step in steps]
    values = [[v for _, v in by_step[step]] for step in steps]
    return (xs, [sum(v) / len(v) for v in values], [min(v) for v in values],
            [max(v) for v in values])


def mark_divergence(axes, runs: Sequence[Run], metric: str, colour: str, x: str) -> bool:
    """An ✕ where each diverged run's curve ends; True if any was drawn."""
    drawn = False
    for run in runs:
        if run.diverged_at is None:
            continue
        steps, walls, values = run.series(metric)
        if values:
            axes.plot(steps[-1] if x == "step" else walls[-1], values[-1], marker="X",
                      markersize=10, color=colour, markeredgecolor="black", linestyle="none")
            drawn = True
    return drawn


def draw_curves(axes, groups: dict[str, Sequence[Run]], metric: str, x: str,
                after: float = 0.0) -> list[float]:
    """Mean line and min–max band per optimizer from ``after`` on; the values drawn."""
    palette = colours(list(groups))
    drawn: list[float] = []
    for label, runs in groups.items():
        xs, mean, low, high = seed_stats(runs, metric, x)
        kept = [i for i, value in enumerate(xs) if value >= after]
        if not kept:
            continue
        xs, mean, low, high = ([series[i] for i in kept] for series in (xs, mean, low, high))
        drawn += low + high
        axes.plot(xs, mean, color=palette[label], label=label, linewidth=1.6)
        if len(runs) > 1:
            axes.fill_between(xs, low, high, color=palette[label], alpha=BAND_ALPHA,
                              linewidth=0)
    return drawn


def curves(groups: dict[str, Sequence[Run]], metric: str, title: str, xlabel: str,
           ylabel: str, x: str = "step", target: float | None = None,
           zoom: bool = False, log: bool | None = None,
           target_label: str = "target") -> Figure:
    """Mean over seeds as a line and min–max over seeds as a band, per optimizer.

    ``zoom`` adds a panel on the right with the second half of the x range on its own y
    range, where curves that the full view squeezes together come apart (for a linear
    axis only: a log axis already spreads them). ``log``: None = when the values span
    decades; False for bounded scores such as accuracy.
    """
    stats = {label: seed_stats(runs, metric, x) for label, runs in groups.items()}
    every = [v for xs, _, low, high in stats.values() for v in low + high]
    log = spans_decades(every) if log is None else log
    panels = 2 if zoom and not log and every else 1
    figure, axes = new_figure(title, xlabel, ylabel, size=(9.5 if panels == 2 else 8.0, 4.2),
                              panels=panels)
    main = axes[0]
    draw_curves(main, groups, metric, x)
    palette = colours(list(groups))
    diverged = any([mark_divergence(main, runs, metric, palette[label], x)
                    for label, runs in groups.items()])
    if panels == 2:
        half = max(xs[-1] for xs, *_ in stats.values() if xs) / 2
        draw_curves(axes[1], groups, metric, x, after=half)
        axes[1].set_title("second half, zoomed")
    for panel in axes:
        if target is not None:
            panel.axhline(target, color="black", linestyle="--", linewidth=1,
                          label=target_label)
    if diverged:
        main.plot([], [], marker="X", color="white", markeredgecolor="black",
                  linestyle="none", label="diverged (loss → non-finite)")
    if log:
        main.set_yscale("log")
    legend_outside(axes[-1], main)
    return figure


def lr_figure(groups: dict[str, Sequence[Run]], title: str) -> Figure:
    """The lr each optimizer used. Equal lrs would hide each other, so each line is
    thinner than the one before: they show as nested stripes."""
    figure, (axes,) = new_figure(title, "step", "learning rate")
    palette = colours(list(groups))
    every: list[float] = []
    for index, (label, runs) in enumerate(groups.items()):
        steps, _, values = runs[0].series("lr") if runs else ([], [], [])
        every += values
        axes.plot(steps, values, color=palette[label], label=label,
                  linewidth=1.2 + 1.0 * (len(groups) - 1 - index), solid_capstyle="butt")
    if spans_decades([v for v in every if v > 0]):
        axes.set_yscale("log")  # lrs decades apart; a warmup's lr 0 falls off the axis
        peaks = [max(runs[0].series("lr")[2], default=0) for runs in groups.values() if runs]
        # a decay to 0 would stretch the axis down to 1e-7: show two decades below the peaks
        axes.set_ylim(bottom=min(p for p in peaks if p > 0) / 100)
    legend_outside(axes)
    return figure


def sweep_figure(points: dict[str, list], title: str, ylabel: str, higher_is_better: bool,
                 target: float | None = None) -> Figure:
    """Final metric vs lr (log x), a line per optimizer; ✕ on the floor where a run
    diverged (a diverged run has no final value, but it is not dropped)."""
    figure, (axes,) = new_figure(title, "learning rate (log scale)", ylabel)
    axes.set_xscale("log")
    palette = colours(list(points))
    floor = axes.get_xaxis_transform()  # x in data, y in axes fraction
    every: list[float] = []
    any_diverged = False
    for row, (label, series) in enumerate(points.items()):
        scored = [(p.lr, p.final) for p in series if p.final is not None]
        if scored:
            every += [value for _, value in scored]
            axes.plot(*zip(*scored, strict=True), marker="o", color=palette[label],
                      label=label, linewidth=1.6, markersize=5)
        for point in series:
            if point.diverged:
                any_diverged = True
                # one row of ✕ per optimizer along the floor, so that none hides another
                axes.plot(point.lr, 0.03 + 0.045 * row, marker="X", markersize=9,
                          color=palette[label],
                          markeredgecolor="black", linestyle="none", transform=floor,
                          clip_on=False)
    if target is not None:
        axes.axhline(target, color="black", linestyle="--", linewidth=1, label="target")
    if any_diverged:
        axes.plot([], [], marker="X", color="white", markeredgecolor="black",
                  linestyle="none", label="diverged at this lr")
    if not higher_is_better and spans_decades(every):
        axes.set_yscale("log")
    legend_outside(axes)
    return figure
