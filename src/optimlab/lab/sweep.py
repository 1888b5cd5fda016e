"""``optimlab sweep``: the final metric against the learning rate, per optimizer.

The seeds claim that adaptive methods are far less sensitive to the learning rate; this
picture settles it for a task. Every (optimizer, lr, seed) is one run of the runner, its
spec the optimizer's with ``lr`` set, so the runs land in metrics.csv like any others.
Diverged points are drawn (✕ on the axis floor) and counted, never dropped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from optimlab.lab.records import DIVERGED, FINISHED
from optimlab.lab.results import Results
from optimlab.lab.runner import Settings, run_all
from optimlab.lab.specs import OptimizerSpec, SpecError
from optimlab.lab.tasks import Task

DEFAULT_TOLERANCE = 0.02


def lr_grid(low: float, high: float, per_decade: int = 2) -> list[float]:
    """Log-spaced learning rates from ``low`` to ``high``, rounded to one significant
    figure (1, 3, 10, ... for two per decade)."""
    if not 0 < low <= high:
        raise ValueError(f"lr range {low:g}..{high:g} is invalid; valid: 0 < low <= high")
    if per_decade < 1:
        raise ValueError(f"per_decade={per_decade} is invalid; valid: >= 1")
    first, last = math.log10(low), math.log10(high)
    count = max(1, round((last - first) * per_decade) + 1)
    exponents = [first + i * (last - first) / max(1, count - 1) for i in range(count)]
    return sorted({float(f"{10 ** e:.1g}") for e in exponents})


@dataclass(frozen=True)
class Point:
    """One (optimizer, lr): the final metric over the seeds that finished, and how many
    of its runs diverged."""

    lr: float
    final: float | None
    runs: int
    diverged: int


@dataclass
class SweepResults:
    """The sweep's runs (as Results) and the grid they cover."""

    results: Results
    bases: list[OptimizerSpec]
    lrs: list[float]
    tolerance: float = DEFAULT_TOLERANCE

    def points(self, base: OptimizerSpec) -> list[Point]:
        metric = self.results.task.headline
        points = []
        for lr in self.lrs:
            runs = self.results.runs_of(base.with_overrides(lr=lr).label)
            if not runs:
                continue
            finals = [run.last(metric.key) for run in runs if run.status == FINISHED]
            finals = [value for value in finals if value is not None]
            points.append(Point(lr, statistics.fmean(finals) if finals else None, len(runs),
                                sum(run.status == DIVERGED for run in runs)))
        return points

    def good_range(self, base: OptimizerSpec) -> tuple[Point | None, list[Point]]:
        """The best point, and the points within ``tolerance`` (relative) of it."""
        scored = [p for p in self.points(base) if p.final is not None]
        if not scored:
            return None, []
        better = self.results.task.headline.higher_is_better
        best = (max if better else min)(scored, key=lambda p: p.final)
        margin = self.tolerance * abs(best.final)
        good = [p for p in scored
                if (p.final >= best.final - margin if better else p.final <= best.final + margin)]
        return best, good

    def write_report(self, out: str | Path = "runs", folder: Path | None = None) -> Path:
        from optimlab.lab import pages, report

        target = folder or report.new_run_folder(out, f"sweep-{self.results.task.name}")
        return pages.write_sweep(self, target)


def sweep_specs(bases: Sequence[OptimizerSpec], lrs: Sequence[float]) -> list[OptimizerSpec]:
    """Each base spec at each lr; a base that sets lr itself is refused."""
    for base in bases:
        if "lr" in base.overrides:
            raise SpecError(f"optimizer spec {base.label!r} sets lr, which the sweep varies; "
                            f"give {base.name!r} without lr")
    return [base.with_overrides(lr=lr) for base in bases for lr in lrs]


def sweep(task: Task, bases: Sequence[OptimizerSpec], lrs: Sequence[float],
          settings: Settings, progress: bool | None = None,
          tolerance: float = DEFAULT_TOLERANCE) -> SweepResults:
    """Train every base spec at every lr with every seed."""
    results = run_all(task, sweep_specs(bases, lrs), settings, progress=progress)
    return SweepResults(results, list(bases), list(lrs), tolerance)
