"""Pictures of optimizers on 2-D surfaces: paths over contours, step lengths, a GIF.

Every path stays visible: the window grows (up to ``GROWTH`` times the surface's box on
each side) to hold the paths, and marks with ▲ where a path left it beyond that; each
path ends at its own black-edged marker; the longest paths are drawn first, so that the
shorter ones lie on top of them.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from optimlab.lab.rendering.figures import legend_outside, new_figure, spans_decades, styles
from optimlab.lab.running.records import Run
from optimlab.lab.running.trajectories import path, step_lengths
from optimlab.lab.workloads.surfaces import Surface

GRID = 300
GROWTH = 1.0
GIF_SIZE, GIF_DPI, GIF_FRAMES, GIF_HOLD = (8.4, 5.0), 100, 36, 8  # 840 x 500 pixels

Window = tuple[tuple[float, float], tuple[float, float]]


def window(surface: Surface, paths: Sequence[tuple[list[float], list[float]]]) -> Window:
    """The surface's box, grown to hold every path's points (with a 5% margin) but by no
    more than ``GROWTH`` times its width or height on each side."""
    ranges = []
    for (low, high), coordinates in ((surface.x_range, [xs for xs, _ in paths]),
                                     (surface.y_range, [ys for _, ys in paths])):
        values = [v for vs in coordinates for v in vs if math.isfinite(v)]
        size = high - low
        lowest, highest = min(values, default=low), max(values, default=high)
        if lowest < low:
            low = max(lowest - 0.05 * size, low - GROWTH * size)
        if highest > high:
            high = min(highest + 0.05 * size, high + GROWTH * size)
        ranges.append((low, high))
    return ranges[0], ranges[1]


def inside(x: float, y: float, box: Window) -> bool:
    (x0, x1), (y0, y1) = box
    return x0 <= x <= x1 and y0 <= y <= y1


def exit_point(xs: list[float], ys: list[float], box: Window) -> tuple[int, float, float] | None:
    """(step, x, y) where the path first leaves ``box``: the crossing of the box's edge
    on the segment that leaves it (None if the path stays inside)."""
    (x0, x1), (y0, y1) = box
    for i in range(1, len(xs)):
        if inside(xs[i], ys[i], box):
            continue
        dx, dy = xs[i] - xs[i - 1], ys[i] - ys[i - 1]
        fractions = [1.0]
        for start, delta, low, high in ((xs[i - 1], dx, x0, x1), (ys[i - 1], dy, y0, y1)):
            if delta:
                fractions += [f for f in ((low - start) / delta, (high - start) / delta)
                              if 0 <= f <= 1]
        fraction = min(fractions) if math.isfinite(dx + dy) else 0.0
        return i, xs[i - 1] + fraction * dx, ys[i - 1] + fraction * dy
    return None


def draw_contours(axes, surface: Surface, box: Window, lines: bool = True) -> None:
    """The surface over ``box`` on a log colour scale (with log-spaced contour lines),
    its minimum as a star and the start as a circle."""
    (x0, x1), (y0, y1) = box
    grid_x, grid_y = torch.meshgrid(torch.linspace(x0, x1, GRID), torch.linspace(y0, y1, GRID),
                                    indexing="xy")
    values = surface(grid_x, grid_y).double()
    floor = max(values.min().item(), 1e-3)
    axes.imshow(values.clamp_min(floor).numpy(), origin="lower", aspect="auto",
                extent=(x0, x1, y0, y1), norm=LogNorm(), cmap="Greys", alpha=0.45,
                interpolation="bilinear")
    if lines:
        levels = torch.logspace(math.log10(floor), math.log10(values.max().item()), 25)
        axes.contour(grid_x.numpy(), grid_y.numpy(), values.numpy(), levels=levels.numpy(),
                     colors="grey", linewidths=0.4, alpha=0.6)
    axes.plot(*surface.minimum, marker="*", markersize=16, color="gold",
              markeredgecolor="black", linestyle="none", label="minimum", zorder=20)
    axes.plot(*surface.start, marker="o", markersize=8, color="white",
              markeredgecolor="black", linestyle="none", label="start", zorder=20)
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)


def by_length(paths: dict[str, tuple[list[float], list[float]]]) -> list[str]:
    """Labels from the longest path to the shortest: the drawing order."""
    def length(label: str) -> float:
        xs, ys = paths[label]
        total = sum(math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]) for i in range(1, len(xs)))
        return total if math.isfinite(total) else math.inf
    return sorted(paths, key=length, reverse=True)


def paths_figure(surface: Surface, runs: dict[str, Run], steps: int) -> Figure:
    """Every optimizer's path over the contours of ``surface``."""
    paths = {label: path(run) for label, run in runs.items()}
    box = window(surface, list(paths.values()))
    figure, (axes,) = new_figure(f"{surface.name}: paths of {steps} steps from "
                                 f"({surface.start[0]:g}, {surface.start[1]:g})", "x", "y",
                                 size=(8.0, 5.0))
    axes.grid(False)
    draw_contours(axes, surface, box)
    look = styles(list(runs))
    order = by_length(paths)
    left = False
    for label in runs:  # in the specs' order (the legend's); stacked by length (zorder)
        rank = order.index(label)
        xs, ys = paths[label]
        run, style = runs[label], look[label]
        notes = [f"diverged at step {run.diverged_at}"] if run.diverged_at else []
        leaving = exit_point(xs, ys, box)
        if leaving:
            notes.append(f"left the window at step {leaving[0]}")
        text = label + (f" ({'; '.join(notes)})" if notes else "")
        axes.plot(xs, ys, color=style.colour, linestyle=style.linestyle, marker=".",
                  markersize=3, linewidth=1.6, label=text, zorder=3 + rank)
        if leaving:
            axes.plot(leaving[1], leaving[2], marker="^", markersize=11, color=style.colour,
                      markeredgecolor="black", linestyle="none", zorder=15, clip_on=False)
            left = True
        elif xs:
            axes.plot(xs[-1], ys[-1], marker=style.marker, markersize=9, color=style.colour,
                      markeredgecolor="black", linestyle="none", zorder=15)
    axes.plot([], [], marker="o", color="white", markeredgecolor="black", linestyle="none",
              label="end of a path (its own marker)")
    if left:
        axes.plot([], [], marker="^", color="white", markeredgecolor="black",
                  linestyle="none", label="where a path left the window")
    legend_outside(axes)
    return figure


def step_length_figure(surface: Surface, runs: dict[str, Run]) -> Figure:
    """‖Δθ‖ of each step, log-log: early steps (bias correction) and late ones (AdaGrad)."""
    figure, (axes,) = new_figure(f"{surface.name}: length of each step",
                                 "step (log scale)", "step length ‖Δ(x, y)‖ (log scale)")
    look = styles(list(runs))
    for label, run in runs.items():
        steps, lengths = step_lengths(run)
        kept = [(s, n) for s, n in zip(steps, lengths, strict=True) if n > 0]
        if kept:
            axes.plot(*zip(*kept, strict=True), label=label, **look[label].line(len(kept)))
    axes.set_xscale("log")
    axes.set_yscale("log")
    legend_outside(axes)
    return figure


def loss_figure(surface: Surface, runs: dict[str, Run]) -> Figure:
    """f(x, y) vs step, log scale when it spans decades."""
    figure, (axes,) = new_figure(f"{surface.name}: f(x, y) vs step", "step", "f(x, y)")
    look = styles(list(runs))
    every: list[float] = []
    for label, run in runs.items():
        steps, _, values = run.series("train_loss")
        every += values
        axes.plot(steps, values, label=label, **look[label].line(len(steps)))
    if spans_decades(every):
        axes.set_yscale("log")
    legend_outside(axes)
    return figure


def animation_gif(surface: Surface, runs: dict[str, Run]) -> bytes:
    """The paths growing step by step, with each one's current position and a step
    counter, as an animated GIF (matplotlib's PillowWriter) 840 pixels wide."""
    paths = {label: path(run) for label, run in runs.items()}
    box = window(surface, list(paths.values()))
    figure, (axes,) = new_figure(f"{surface.name}: paths", "x", "y", size=GIF_SIZE)
    axes.grid(False)
    draw_contours(axes, surface, box, lines=False)  # contour lines are slow to redraw
    look = styles(list(runs))
    order = by_length(paths)
    lines = {label: axes.plot([], [], color=look[label].colour, linewidth=2,
                              linestyle=look[label].linestyle, label=label,
                              zorder=3 + order.index(label))[0] for label in runs}
    dots = {label: axes.plot([], [], marker=look[label].marker, markersize=10,
                             color=look[label].colour, markeredgecolor="black",
                             linestyle="none", zorder=15)[0] for label in runs}
    counter = axes.text(0.02, 0.96, "", transform=axes.transAxes, va="top", fontsize=12,
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    legend_outside(axes, fontsize="medium")
    figure.canvas.draw()
    figure.set_layout_engine("none")  # lay out once, not again for every frame
    longest = max((len(xs) for xs, _ in paths.values()), default=1)
    cuts = sorted({max(1, round(longest * (i + 1) / GIF_FRAMES)) for i in range(GIF_FRAMES)})

    def draw(cut: int) -> Sequence:
        for label, (xs, ys) in paths.items():
            lines[label].set_data(xs[:cut], ys[:cut])
            shown = min(cut, len(xs))
            dots[label].set_data(xs[shown - 1:shown], ys[shown - 1:shown])
        counter.set_text(f"step {cut - 1} of {longest - 1}")
        return [*lines.values(), *dots.values(), counter]

    animation = FuncAnimation(figure, draw, frames=cuts + [cuts[-1]] * GIF_HOLD, blit=False)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "paths.gif"
        animation.save(target, writer=PillowWriter(fps=12), dpi=GIF_DPI)
        data = target.read_bytes()
    plt.close(figure)
    return data


def pillow_available() -> bool:
    """PillowWriter needs pillow (a matplotlib dependency, but check, as asked)."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def runs_by_label(runs: Sequence[Run]) -> dict[str, Run]:
    return {run.optimizer: run for run in runs}
