"""Figures: matplotlib drawings of records (never of text), one function per picture.

Every spec stays visible: each has a colour from the Okabe–Ito palette (colour-blind
safe; a named optimizer keeps its colour in every report), a line style and a marker, so
that curves that coincide are still told apart. Legends sit outside the axes so that they
never cover a curve; a y axis turns logarithmic when the values it shows span more than a
decade. A diverged run is drawn on its own, ending in ✕, and left out of the axis limits:
one run climbing to 1e32 must not flatten every other curve.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, and none is wanted in tests
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from optimlab.lab.running.records import DIVERGED, Run

# Okabe & Ito's palette (distinct under every common colour-vision deficiency); its
# yellow is too faint on white, so the spares continue with Paul Tol's muted scheme.
NAMED_COLOURS = {"sgd": "#000000", "momentum": "#0072B2", "nesterov": "#56B4E9",
                 "adagrad": "#E69F00", "rmsprop": "#009E73", "adam": "#D55E00",
                 "adamw": "#CC79A7"}
SPARE_COLOURS = ["#332288", "#117733", "#44AA99", "#882255", "#999933", "#AA4499",
                 "#88CCEE", "#CC6677", "#DDCC77"]
LINE_STYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "D", "v", "P", "p", "<", "h", ">"]  # "^" and "X" mark events
MARKS_PER_LINE = 8
REFERENCE = "#777777"  # targets and thresholds: grey, dashed (black is sgd's)
BAND_ALPHA = 0.18
DPI = 110


@dataclass(frozen=True)
class Style:
    """How one spec is drawn: colour, line style, marker, and its index (which offsets
    its markers so that two coinciding lines show both)."""

    colour: str
    linestyle: str
    marker: str
    index: int
    count: int

    def line(self, points: int, **extra) -> dict:
        """Keywords for ``axes.plot`` of a line of ``points`` points."""
        every = max(1, points // MARKS_PER_LINE)
        offset = (self.index * every) // max(1, self.count)
        return {"color": self.colour, "linestyle": self.linestyle, "marker": self.marker,
                "markevery": (offset, every), "markersize": 5, "linewidth": 1.6, **extra}


def colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per spec label: a named optimizer's own colour (to its first spec), then
    spare colours, so that ``adam`` is the same vermillion in every report."""
    chosen: dict[str, str] = {}
    spare = iter(SPARE_COLOURS * (1 + len(labels) // len(SPARE_COLOURS)))
    for label in labels:
        own = NAMED_COLOURS.get(label.partition(":")[0])
        chosen[label] = own if own and own not in chosen.values() else next(spare)
    return chosen


def styles(labels: Sequence[str]) -> dict[str, Style]:
    """A style per spec label: its colour, and a line style and marker by position, so
    that neighbours in the legend never share them."""
    palette = colours(labels)
    return {label: Style(palette[label], LINE_STYLES[i % len(LINE_STYLES)],
                         MARKERS[i % len(MARKERS)], i, len(labels))
            for i, label in enumerate(labels)}


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


def legend_outside(axes, source=None, fontsize: str = "small") -> None:
    """The legend of ``source``'s lines (default: ``axes``'s), right of ``axes``."""
    handles, labels = (source or axes).get_legend_handles_labels()
    if handles:
        axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    fontsize=fontsize, frameon=False)


@dataclass(frozen=True)
class Stats:
    """A metric over seeds at each logged step: x (step, or mean training time), the
    mean, min and max of the values, and the min and max of the times."""

    xs: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    wall_low: list[float]
    wall_high: list[float]

    def after(self, start: float) -> Stats:
        kept = [i for i, value in enumerate(self.xs) if value >= start]
        return Stats(*([series[i] for i in kept] for series in (
            self.xs, self.mean, self.low, self.high, self.wall_low, self.wall_high)))


def seed_stats(runs: Sequence[Run], metric: str, x: str = "step") -> Stats:
    """Per logged step over ``runs``: see Stats."""
    by_step: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for step, wall, value in zip(*run.series(metric), strict=True):
            by_step.setdefault(step, []).append((wall, value))
    steps = sorted(by_step)
    walls = [[w for w, _ in by_step[step]] for step in steps]
    values = [[v for _, v in by_step[step]] for step in steps]
    xs = [float(step) if x == "step" else sum(w) / len(w) for step, w in zip(steps, walls,
                                                                            strict=True)]
    return Stats(xs, [sum(v) / len(v) for v in values], [min(v) for v in values],
                 [max(v) for v in values], [min(w) for w in walls], [max(w) for w in walls])


def healthy(runs: Sequence[Run]) -> list[Run]:
    """The runs that did not diverge: the mean line and band are drawn over these."""
    return [run for run in runs if run.status != DIVERGED]


def draw_curves(axes, groups: dict[str, Sequence[Run]], metric: str, x: str,
                after: float = 0.0) -> list[float]:
    """Per spec, from ``after`` on: the mean line over its healthy runs, and a band: the
    min–max of the values over seeds (x = step), or of the times (x = wall: how much the
    seeds' speed varied). Returns the values drawn (for the axis limits)."""
    look = styles(list(groups))
    drawn: list[float] = []
    for label, runs in groups.items():
        stats = seed_stats(healthy(runs), metric, x).after(after)
        if not stats.xs:
            continue
        drawn += stats.low + stats.high
        axes.plot(stats.xs, stats.mean, label=label, **look[label].line(len(stats.xs)))
        if len(healthy(runs)) < 2:
            continue
        if x == "step":
            axes.fill_between(stats.xs, stats.low, stats.high, color=look[label].colour,
                              alpha=BAND_ALPHA, linewidth=0)
        else:
            axes.fill_betweenx(stats.mean, stats.wall_low, stats.wall_high,
                               color=look[label].colour, alpha=BAND_ALPHA, linewidth=0)
    return drawn


def draw_diverged(axes, groups: dict[str, Sequence[Run]], metric: str, x: str) -> bool:
    """Each diverged run as a thin line of its own, ending in ✕ where its loss became
    non-finite (drawn at the axis edge when its last value lies beyond it). Call after
    the limits are set; True if any was drawn."""
    look = styles(list(groups))
    bottom, top = axes.get_ylim()
    drawn = False
    for label, runs in groups.items():
        # a spec whose every run diverged has no mean line: its legend entry is here
        named = not healthy(runs)
        for run in runs:
            steps, walls, values = run.series(metric)
            if run.status != DIVERGED or not values:
                continue
            xs = steps if x == "step" else walls
            axes.plot(xs, values, color=look[label].colour, linewidth=0.8, alpha=0.7,
                      linestyle=look[label].linestyle,
                      label=f"{label} (diverged)" if named else None)
            named = False
            # the ✕ where the loss became non-finite, at the last value seen
            where = run.diverged_at if x == "step" else run.train_time
            axes.plot(where, min(max(values[-1], bottom), top), marker="X", markersize=10,
                      color=look[label].colour, markeredgecolor="black", linestyle="none",
                      clip_on=False, zorder=5)
            drawn = True
    return drawn


def fit_limits(axes, values: Sequence[float], log: bool) -> None:
    """y limits around ``values`` (the healthy curves), with a margin."""
    finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not finite:
        return
    low, high = min(finite), max(finite)
    if log:
        axes.set_ylim(low / 1.5, high * 1.5)
    else:
        margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
        axes.set_ylim(low - margin, high + margin)


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
    stats = {label: seed_stats(healthy(runs), metric, x) for label, runs in groups.items()}
    every = [v for s in stats.values() for v in s.low + s.high]
    log = spans_decades(every) if log is None else log
    panels = 2 if zoom and not log and every else 1
    figure, axes = new_figure(title, xlabel, ylabel, size=(9.5 if panels == 2 else 8.0, 4.2),
                              panels=panels)
    main = axes[0]
    drawn = draw_curves(main, groups, metric, x)
    for panel in axes:
        if target is not None:
            panel.axhline(target, color=REFERENCE, linestyle="--", linewidth=1,
                          label=target_label)
    if panels == 2:
        half = max(s.xs[-1] for s in stats.values() if s.xs) / 2
        # the zoom fits its curves; a target far from them stays off it
        fit_limits(axes[1], draw_curves(axes[1], groups, metric, x, after=half), log=False)
        axes[1].set_title("second half, zoomed")
    if log:
        main.set_yscale("log")
    fit_limits(main, drawn + ([target] if target is not None else []), log)
    if draw_diverged(main, groups, metric, x):
        main.plot([], [], marker="X", color="white", markeredgecolor="black",
                  linestyle="none", label="diverged (loss → non-finite)")
    legend_outside(axes[-1], main)
    return figure


def lr_figure(groups: dict[str, Sequence[Run]], title: str) -> Figure:
    """The lr each optimizer used. Equal lrs would hide each other, so each line is
    thinner than the one before (nested stripes), in its own style."""
    figure, (axes,) = new_figure(title, "step", "learning rate")
    look = styles(list(groups))
    every: list[float] = []
    for index, (label, runs) in enumerate(groups.items()):
        steps, _, values = runs[0].series("lr") if runs else ([], [], [])
        every += values
        width = 1.2 + min(3.0, 0.6 * (len(groups) - 1 - index))
        axes.plot(steps, values, label=label, solid_capstyle="butt",
                  **look[label].line(len(steps), linewidth=width))
    if spans_decades([v for v in every if v > 0]):
        axes.set_yscale("log")  # lrs decades apart; a warmup's lr 0 falls off the axis
        peaks = [max(runs[0].series("lr")[2], default=0) for runs in groups.values() if runs]
        # a decay to 0 would stretch the axis down to 1e-7: show two decades below the peaks
        axes.set_ylim(bottom=min(p for p in peaks if p > 0) / 100)
    legend_outside(axes)
    return figure
