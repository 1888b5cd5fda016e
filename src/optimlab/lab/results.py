"""Results of a comparison, and the summary the report's table and summary.json show."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimlab.lab.records import DIVERGED, FINISHED, Run
from optimlab.lab.specs import OptimizerSpec
from optimlab.lab.tasks import Metric, Task

if TYPE_CHECKING:
    from optimlab.lab.runner import Settings


@dataclass(frozen=True)
class Summary:
    """One optimizer spec over its seeds.

    ``final_*``: the headline metric after the last step, over the runs that finished
    (mean, sample standard deviation). ``best``: the best value any evaluation of any
    seed reached. ``steps_to_target``/``time_to_target``: mean over the ``reached`` runs of
    the first evaluation at or past the task's target (steps; seconds of training).
    ``diverged``: (seed, step) of each run whose loss became non-finite.
    """

    optimizer: str
    lr: float | None
    runs: int
    final_mean: float | None
    final_std: float | None
    best: float | None
    steps_per_second: float | None
    reached: int
    steps_to_target: float | None
    time_to_target: float | None
    diverged: list[tuple[int, int]] = field(default_factory=list)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def first_reached(run: Run, metric: Metric) -> tuple[int, float] | None:
    """(step, wall time) of the run's first evaluation that reaches the target."""
    for step, wall_time, value in zip(*run.series(metric.key), strict=True):
        if metric.reached(value):
            return step, wall_time
    return None


def summarize(label: str, runs: list[Run], metric: Metric) -> Summary:
    """The table row of one optimizer spec."""
    finals = [run.last(metric.key) for run in runs if run.status == FINISHED]
    finals = [value for value in finals if value is not None]
    every = [value for run in runs for value in run.series(metric.key)[2]]
    pick = max if metric.higher_is_better else min
    hits = [hit for hit in (first_reached(run, metric) for run in runs) if hit]
    speeds = [run.steps_per_second for run in runs if run.steps_per_second]
    return Summary(
        optimizer=label, lr=runs[0].lr if runs else None, runs=len(runs),
        final_mean=_mean(finals),
        final_std=statistics.stdev(finals) if len(finals) > 1 else (0.0 if finals else None),
        best=pick(every) if every else None, steps_per_second=_mean(speeds),
        reached=len(hits), steps_to_target=_mean([float(step) for step, _ in hits]),
        time_to_target=_mean([wall for _, wall in hits]),
        diverged=[(run.seed, run.diverged_at) for run in runs
                  if run.status == DIVERGED and run.diverged_at is not None])


@dataclass
class Results:
    """Every run of a comparison; ``write_report`` turns them into a run folder."""

    task: Task
    specs: list[OptimizerSpec]
    settings: Settings
    runs: list[Run] = field(default_factory=list)
    interrupted: bool = False

    @property
    def labels(self) -> list[str]:
        return [spec.label for spec in self.specs]

    def runs_of(self, label: str) -> list[Run]:
        return [run for run in self.runs if run.optimizer == label]

    def summary(self) -> list[Summary]:
        """One row per spec that has at least one run, in the order given."""
        return [summarize(label, self.runs_of(label), self.task.headline)
                for label in self.labels if self.runs_of(label)]

    def winner(self) -> Summary | None:
        """The spec with the best mean final metric (ties: fewer steps to target)."""
        rows = [row for row in self.summary() if row.final_mean is not None]
        if not rows:
            return None
        sign = -1 if self.task.headline.higher_is_better else 1
        return min(rows, key=lambda row: (sign * row.final_mean,
                                          row.steps_to_target or float("inf")))

    def to_json(self) -> dict[str, Any]:
        """What summary.json holds: task, settings, one summary per spec, each run."""
        settings = asdict(self.settings)
        return {"task": self.task.name, "metric": asdict(self.task.headline),
                "settings": settings, "interrupted": self.interrupted,
                "summary": [asdict(row) for row in self.summary()],
                "runs": [run.to_dict() for run in self.runs]}

    def write_report(self, out: str | Path = "runs", folder: Path | None = None) -> Path:
        """Write report.html, metrics.csv, summary.json and the figures' PNGs into a new
        folder ``out/<timestamp>-<task>/`` (or into ``folder``); returns the folder."""
        from optimlab.lab import pages, report

        return pages.write_compare(self, folder or report.new_run_folder(out, self.task.name))
