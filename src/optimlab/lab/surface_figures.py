"""Pictures of optimizers on 2-D surfaces: paths over contours, step lengths, a GIF."""

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

from optimlab.lab.figures import colours, legend_outside, new_figure, spans_decades
from optimlab.lab.records import Run
from optimlab.lab.surfaces import Surface
from optimlab.lab.trajectories import path, step_lengths

GRID = 300


def draw_contours(axes, surface: Surface, lines: bool = True) -> None:
    """The surface over its box on a log colour scale (with log-spaced contour lines),
    its minimum as a star and the start as a circle."""
    xs = torch.linspace(*surface.x_range, GRID)
    ys = torch.linspace(*surface.y_range, GRID)
    grid_x, grid_y = torch.meshgrid(xs, ys, indexing="xy")
    values = surface(grid_x, grid_y).double()
    floor = max(values.min().item(), 1e-3)
    axes.imshow(values.clamp_min(floor).numpy(), origin="lower", aspect="auto",
                extent=(*surface.x_range, *surface.y_range), norm=LogNorm(), cmap="Greys",
                alpha=0.45, interpolation="bilinear")
    if lines:
        levels = torch.logspace(math.log10(floor), math.log10(values.max().item()), 25)
        axes.contour(grid_x.numpy(), grid_y.numpy(), values.numpy(), levels=levels.numpy(),
                     colors="grey", linewidths=0.4, alpha=0.6)
    axes.plot(*surface.minimum, marker="*", markersize=16, color="gold",
              markeredgecolor="black", linestyle="none", label="minimum", zorder=5)
    axes.plot(*surface.start, marker="o", markersize=8, color="white",
              markeredgecolor="black", linestyle="none", label="start", zorder=5)
    axes.set_xlim(*surface.x_range)
    axes.set_ylim(*surface.y_range)


def paths_figure(surface: Surface, runs: dict[str, Run], steps: int) -> Figure:
    """Every optimizer's path over the contours of ``surface``."""
    figure, (axes,) = new_figure(f"{surface.name}: paths of {steps} steps from "
                              f"({surface.start[0]:g}, {surface.start[1]:g})", "x", "y",
                              size=(8.0, 5.0))
    axes.grid(False)
    draw_contours(axes, surface)
    palette = colours(list(runs))
    for index, (label, run) in enumerate(runs.items()):
        xs, ys = path(run)
        suffix = f" (diverged at step {run.diverged_at})" if run.diverged_at else ""
        # each path thinner than the one before, so that shared stretches show as stripes
        axes.plot(xs, ys, color=palette[label], marker=".", markersize=3,
                  linewidth=1.0 + 0.8 * (len(runs) - 1 - index), label=label + suffix,
                  solid_capstyle="butt")
        if xs:
            axes.plot(xs[-1], ys[-1], marker="o", markersize=7, color=palette[label],
                      markeredgecolor="black", linestyle="none", zorder=6)
    axes.plot([], [], marker="o", color="white", markeredgecolor="black", linestyle="none",
              label="end of a path")
    legend_outside(axes)
    return figure


def step_length_figure(surface: Surface, runs: dict[str, Run]) -> Figure:
    """‖Δθ‖ of each step, log-log: early steps (bias correction) and late ones (AdaGrad)."""
    figure, (axes,) = new_figure(f"{surface.name}: length of each step",
                              "step (log scale)", "step length ‖Δ(x, y)‖ (log scale)")
    palette = colours(list(runs))
    for label, run in runs.items():
        steps, lengths = step_lengths(run)
        kept = [(s, n) for s, n in zip(steps, lengths, strict=True) if n > 0]
        if kept:
            axes.plot(*zip(*kept, strict=True), color=palette[label], label=label,
                      linewidth=1.4)
    axes.set_xscale("log")
    axes.set_yscale("log")
    legend_outside(axes)
    return figure


def loss_figure(surface: Surface, runs: dict[str, Run]) -> Figure:
    """f(x, y) vs step, log scale when it spans decades."""
    figure, (axes,) = new_figure(f"{surface.name}: f(x, y) vs step", "step", "f(x, y)")
    palette = colours(list(runs))
    every: list[float] = []
    for label, run in runs.items():
        steps, _, values = run.series("train_loss")
        every += values
        axes.plot(steps, values, color=palette[label], label=label, linewidth=1.4)
    if spans_decades(every):
        axes.set_yscale("log")
    legend_outside(axes)
    return figure


def animation_gif(surface: Surface, runs: dict[str, Run], frames: int = 30) -> bytes:
    """The paths growing step by step, as an animated GIF (matplotlib's PillowWriter)."""
    figure, (axes,) = new_figure(f"{surface.name}: paths", "x", "y", size=(6.0, 4.0))
    axes.grid(False)
    draw_contours(axes, surface, lines=False)  # contour lines are slow to redraw per frame
    palette = colours(list(runs))
    paths = {label: path(run) for label, run in runs.items()}
    lines = {label: axes.plot([], [], color=palette[label], linewidth=1.5, label=label)[0]
             for label in runs}
    legend_outside(axes)
    figure.canvas.draw()
    figure.set_layout_engine("none")  # lay out once, not again for every frame
    longest = max((len(xs) for xs, _ in paths.values()), default=1)
    cuts = sorted({max(1, round(longest * (i + 1) / frames)) for i in range(frames)})

    def draw(cut: int) -> Sequence:
        for label, (xs, ys) in paths.items():
            lines[label].set_data(xs[:cut], ys[:cut])
        return list(lines.values())

    animation = FuncAnimation(figure, draw, frames=cuts, blit=False)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "paths.gif"
        animation.save(target, writer=PillowWriter(fps=12), dpi=70)
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
