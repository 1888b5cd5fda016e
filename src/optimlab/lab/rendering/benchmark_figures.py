"""The benchmark's figures: performance profiles, each optimizer's landscape of trials, and
one-shot against tuned. Colours are the lab's (figures.py): adam is vermillion here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from optimlab.lab.analysis import profiles
from optimlab.lab.analysis.standings import ONE_SHOT, TUNED, Standings, TrialRecord
from optimlab.lab.rendering.figures import REFERENCE, legend_outside, styles

MEASURE_LABEL = {"steps": "steps to the target", "seconds": "training seconds to the target"}


def profiles_figure(standings: Standings) -> Figure:
    """ρ(τ) of each optimizer, by steps (left) and by seconds (right), τ in [1, 4]; the
    legend gives each one's score (the mean of its ρ over the range)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained", sharey=True)
    style = styles(standings.optimizers)
    for panel, by in zip(axes, ("steps", "seconds"), strict=True):
        ratios = standings.ratios(by)
        scores = standings.scores(by)
        for opt in standings.optimizers:
            taus, rhos = profiles.profile_curve(ratios[opt])
            look = style[opt]
            panel.step(taus, rhos, where="post", color=look.colour,
                       linestyle=look.linestyle, linewidth=2, alpha=0.9,
                       label=f"{opt} (score {scores[opt]:.2f})")
        panel.set_xlim(1, profiles.TAU_MAX)
        panel.set_ylim(-0.02, 1.04)
        panel.set_xlabel(f"τ: within this factor of the best ({by})")
        panel.set_title(f"performance profile by {MEASURE_LABEL[by]}")
        panel.grid(True, alpha=0.3)
        panel.legend(loc="lower right", fontsize="small", frameon=True, framealpha=0.85)
    axes[0].set_ylabel("ρ(τ): share of tasks")
    return figure


def _axis_keys(records: Sequence[TrialRecord]) -> tuple[str, str | None]:
    """The landscape's axes: lr, and the weight decay when it was tuned."""
    keys = {key for record in records for key in record.params}
    return "lr", ("weight_decay" if "weight_decay" in keys else None)


def _value(record: TrialRecord, key: str) -> float | None:
    """The trial's value of ``key``: drawn, else the one it ran with (one-shot); None
    when it cannot sit on a log axis (a weight decay of 0)."""
    value = record.params.get(key, record.attrs.get(key))
    return value if isinstance(value, (int, float)) and value > 0 else None


def landscape_figure(standings: Standings, task: str, higher_is_better: bool,
                     metric_label: str, target: float | None,
                     bounds: dict[str, dict[str, tuple[float, float]]] | None = None
                     ) -> Figure:
    """One panel per optimizer: each tuned trial at its lr (x) and weight decay (y; or its
    final metric when λ is not tuned), coloured by its final metric; a filled circle
    reached the target, a cross did not; a ring marks each study's fastest trial; a star
    is the one-shot run (registry defaults; with λ = 0, on the bottom edge). ``bounds``:
    per optimizer, the search space's (low, high) of each key, the axes' extent."""
    opts = standings.optimizers
    figure, axes = plt.subplots(1, len(opts), figsize=(3.0 * len(opts) + 1.2, 3.4),
                                layout="constrained", squeeze=False)
    mine = [r for r in standings.records if r.task == task]
    finals = [r.final for r in mine if r.final is not None and math.isfinite(r.final)]
    low, high = (min(finals), max(finals)) if finals else (0.0, 1.0)
    cmap = plt.get_cmap("viridis" if higher_is_better else "viridis_r")
    scatter = None
    cells = standings.cells
    for panel, opt in zip(axes[0], opts, strict=True):
        records = [r for r in mine if r.optimizer == opt]
        xkey, ykey = _axis_keys(records)
        best = {tuple(sorted(p.items())) for p in cells[task, opt].best_params}
        extent = (bounds or {}).get(opt, {})
        for record in records:
            x = _value(record, xkey)
            y = _value(record, ykey) if ykey else record.final
            if y is None and ykey and record.kind == ONE_SHOT and ykey in extent:
                y = extent[ykey][0]  # λ = 0 has no place on a log axis: the bottom edge
            if x is None or y is None or not math.isfinite(y):
                continue
            final = record.final if record.final is not None else math.nan
            colour = cmap((final - low) / (high - low) if high > low else 0.5)
            if record.kind == ONE_SHOT:
                panel.scatter([x], [y], marker="*", s=170, color=colour, edgecolor="black",
                              linewidth=0.8, zorder=4)
                continue
            reached = math.isfinite(record.time("steps"))
            scatter = panel.scatter([x], [y], c=[final], cmap=cmap, vmin=low, vmax=high,
                                    marker="o" if reached else "X", s=60 if reached else 50,
                                    edgecolor="#333333" if reached else "none",
                                    linewidth=0.6, zorder=3)
            if tuple(sorted(record.params.items())) in best and reached:
                panel.scatter([x], [y], s=190, facecolor="none", edgecolor="#D00000",
                              linewidth=1.6, zorder=2)
        panel.set_xscale("log")
        if xkey in extent:
            panel.set_xlim(extent[xkey][0] / 1.5, extent[xkey][1] * 1.5)
        if ykey:
            panel.set_yscale("log")
            if ykey in extent:
                panel.set_ylim(extent[ykey][0] / 1.5, extent[ykey][1] * 1.5)
        elif target is not None:
            panel.axhline(target, color=REFERENCE, linestyle="--", linewidth=1)
        panel.set_title(opt)
        panel.set_xlabel("learning rate")
        panel.set_ylabel("weight decay λ" if ykey else f"final {metric_label}")
        panel.grid(True, alpha=0.3)
    if scatter is not None:
        figure.colorbar(scatter, ax=list(axes[0]), label=f"final {metric_label}",
                        shrink=0.9)
    figure.suptitle(f"{task}: every trial (● reached the target, ✕ missed, ring: a "
                    "study's fastest, ★ one-shot defaults)", fontsize="medium")
    return figure


def one_shot_figure(standings: Standings, labels: dict[str, str]) -> Figure:
    """Per task, each optimizer's median final metric one-shot (hollow) and tuned (the
    best trial of each study; filled, with the studies' range), joined by a line: what
    tuning bought."""
    tasks = standings.tasks
    figure, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1.5, 3.6),
                                layout="constrained", squeeze=False)
    style = styles(standings.optimizers)
    cells = standings.cells
    for panel, task in zip(axes[0], tasks, strict=True):
        for index, opt in enumerate(standings.optimizers):
            cell, colour = cells[task, opt], style[opt].colour
            finite = [v for v in cell.study_finals if math.isfinite(v)]
            if cell.one_shot_final is not None:
                panel.scatter([index], [cell.one_shot_final], s=60, facecolor="white",
                              edgecolor=colour, linewidth=1.8, zorder=3,
                              label=ONE_SHOT if index == 0 else None)
            if cell.final is not None and finite:
                panel.errorbar([index + 0.25], [cell.final],
                               yerr=[[cell.final - min(finite)], [max(finite) - cell.final]],
                               fmt="o", color=colour, markersize=7, capsize=3, zorder=3,
                               label=TUNED if index == 0 else None)
                if cell.one_shot_final is not None:
                    panel.plot([index, index + 0.25], [cell.one_shot_final, cell.final],
                               color=colour, linewidth=1, alpha=0.6)
        panel.set_xticks(range(len(standings.optimizers)), standings.optimizers,
                         rotation=30, ha="right")
        panel.set_title(task)
        panel.set_ylabel(f"final {labels[task]}")
        panel.grid(True, axis="y", alpha=0.3)
    legend_outside(axes[0][-1])
    figure.suptitle("one-shot (registry defaults, ○) against tuned (best trial of each "
                    "study, ●: median and range over the studies)", fontsize="medium")
    return figure
