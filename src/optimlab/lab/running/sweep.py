"""``optimlab sweep``: the final metric against the learning rate, per optimizer — and,
with weight decays, against lr × λ.

The seeds claim that adaptive methods are far less sensitive to the learning rate; the lr
curve settles it for a task. With ``weight_decays`` every optimizer is also swept over λ,
and each gets a heatmap of lr × λ (Loshchilov & Hutter's figure: Adam's L2 against AdamW's
decoupled decay). Every (optimizer, λ, lr, seed) is one run of the runner, its spec the
optimizer's with ``lr`` (and ``weight_decay``) set, so the runs land in metrics.csv like
any others. A run that diverged, or that finished no better than chance (the task's
``chance_level``: e.g. a collapse to one class), is a failed point: drawn and counted,
never dropped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from optimlab.lab.analysis.results import Results
from optimlab.lab.inputs.specs import OptimizerSpec, SpecError
from optimlab.lab.running.records import DIVERGED, FINISHED, Run
from optimlab.lab.running.runner import Settings, run_all
from optimlab.lab.workloads.tasks import Task

DEFAULT_TOLERANCE = 0.02
# a run "no better than chance" gets within this fraction of chance (accuracy 0.102 when
# chance is 0.1; bits per character 4.5 when the character frequencies give 4.67)
CHANCE_MARGIN = 0.05


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
    """One (optimizer, lr): the final metric over the seeds that finished (mean, and
    each), how many runs there were, how many diverged, and how many finished no better
    than chance."""

    lr: float
    final: float | None
    runs: int
    diverged: int
    chance: int = 0
    finals: tuple[float, ...] = ()

    @property
    def failed(self) -> int:
        """Runs that diverged or ended no better than chance."""
        return self.diverged + self.chance


def no_better_than_chance(value: float, chance: float | None, higher_is_better: bool) -> bool:
    """True when ``value`` is within ``CHANCE_MARGIN`` of chance, or worse."""
    if chance is None:
        return False
    margin = CHANCE_MARGIN * abs(chance)
    return value <= chance + margin if higher_is_better else value >= chance - margin


@dataclass
class SweepResults:
    """The sweep's runs (as Results) and the grid they cover: ``bases`` the optimizers as
    given, ``weight_decays`` the λ grid (None: λ not swept), ``lrs`` the lr grid."""

    results: Results
    bases: list[OptimizerSpec]
    lrs: list[float]
    tolerance: float = DEFAULT_TOLERANCE
    weight_decays: list[float] | None = None

    @property
    def lines(self) -> list[OptimizerSpec]:
        """The specs swept over lr: each base, at each λ when λ is swept."""
        return [line for base in self.bases for line in lines_of(base, self.weight_decays)]

    def point(self, runs: list[Run], lr: float) -> Point:
        metric = self.results.task.headline
        chance = self.results.task.chance_level()
        finals = [run.last(metric.key) for run in runs if run.status == FINISHED]
        finals = [value for value in finals if value is not None]
        return Point(lr, statistics.fmean(finals) if finals else None, len(runs),
                     sum(run.status == DIVERGED for run in runs),
                     sum(no_better_than_chance(value, chance, metric.higher_is_better)
                         for value in finals), tuple(finals))

    def points(self, line: OptimizerSpec) -> list[Point]:
        """The line's point at each lr that has runs."""
        found = [(lr, self.results.runs_of(line.with_overrides(lr=lr).label))
                 for lr in self.lrs]
        return [self.point(runs, lr) for lr, runs in found if runs]

    def good_range(self, line: OptimizerSpec) -> tuple[Point | None, list[Point]]:
        """The best point, and the points within ``tolerance`` (relative) of it; failed
        points are neither."""
        scored = [p for p in self.points(line) if p.final is not None and not p.failed]
        if not scored:
            return None, []
        better = self.results.task.headline.higher_is_better
        best = (max if better else min)(scored, key=lambda p: p.final)
        margin = self.tolerance * abs(best.final)
        good = [p for p in scored
                if (p.final >= best.final - margin if better else p.final <= best.final + margin)]
        return best, good

    def grid(self, base: OptimizerSpec) -> dict[tuple[float, float], Point]:
        """(λ, lr) -> point, for the heatmap of ``base`` (λ swept only)."""
        cells = {}
        for line, weight_decay in zip(lines_of(base, self.weight_decays),
                                      self.weight_decays or [], strict=True):
            for point in self.points(line):
                cells[(weight_decay, point.lr)] = point
        return cells

    def best_cell(self, base: OptimizerSpec) -> tuple[float, Point] | None:
        """(λ, point) of the base's best cell that did not fail."""
        cells = [(wd, p) for (wd, _), p in self.grid(base).items()
                 if p.final is not None and not p.failed]
        if not cells:
            return None
        sign = -1 if self.results.task.headline.higher_is_better else 1
        return min(cells, key=lambda cell: sign * cell[1].final)


def lines_of(base: OptimizerSpec, weight_decays: Sequence[float] | None
             ) -> list[OptimizerSpec]:
    """``base`` at each λ, or ``base`` itself when λ is not swept."""
    if weight_decays is None:
        return [base]
    return [base.with_overrides(weight_decay=wd) for wd in weight_decays]


def sweep_specs(bases: Sequence[OptimizerSpec], lrs: Sequence[float],
                weight_decays: Sequence[float] | None = None) -> list[OptimizerSpec]:
    """Each base spec at each λ (if swept) and each lr; a base that sets what the sweep
    varies is refused."""
    varied = ["lr"] + (["weight_decay"] if weight_decays is not None else [])
    for base in bases:
        for key in varied:
            if key in base.overrides:
                raise SpecError(f"optimizer spec {base.label!r} sets {key}, which the sweep "
                                f"varies; give {base.name!r} without {key}")
    if weight_decays is not None:
        for wd in weight_decays:
            if not wd >= 0:
                raise ValueError(f"weight decay {wd!r} is invalid; valid: a number >= 0")
    return [line.with_overrides(lr=lr) for base in bases
            for line in lines_of(base, weight_decays) for lr in lrs]


def sweep(task: Task, bases: Sequence[OptimizerSpec], lrs: Sequence[float],
          settings: Settings, progress: bool | None = None,
          tolerance: float = DEFAULT_TOLERANCE,
          weight_decays: Sequence[float] | None = None) -> SweepResults:
    """Train every base spec at every lr (and every λ of ``weight_decays``) with every
    seed."""
    wds = sorted(set(weight_decays)) if weight_decays is not None else None
    results = run_all(task, sweep_specs(bases, lrs, wds), settings, progress=progress)
    return SweepResults(results, list(bases), list(lrs), tolerance, wds)
