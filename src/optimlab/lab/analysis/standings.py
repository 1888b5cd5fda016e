"""The benchmark's answer, from its trials: per task and optimizer the time to the target
of each study's best trial, their median and spread, the one-shot runs beside them, the
performance profiles and scores (profiles.py), and who wins beyond noise.

Everything here is computed from ``TrialRecord``s (what a trial's storage row says), so
that it can be checked on hand-made records.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from optimlab.lab.analysis import profiles
from optimlab.lab.analysis.verdicts import Verdict, decide

TUNED, ONE_SHOT = "tuned", "one-shot"
MEASURES = {"steps": "steps_to_target", "seconds": "seconds_to_target"}


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial: where it ran (task, optimizer, tuned or one-shot, study,
    slot), its point of the search space, and its measurements (``attrs``: status,
    steps_to_target and seconds_to_target — None on a miss —, final, best, seed...)."""

    task: str
    optimizer: str
    kind: str
    study: int
    slot: int
    params: dict[str, float]
    attrs: dict[str, Any]

    def time(self, by: str) -> float:
        """Steps (``by="steps"``) or seconds to the target; ∞ on a miss."""
        value = self.attrs.get(MEASURES[by])
        return math.inf if value is None else float(value)

    @property
    def final(self) -> float | None:
        return self.attrs.get("final")


@dataclass(frozen=True)
class Cell:
    """One optimizer on one task: per study, the best trial's steps and seconds to the
    target (∞: no trial of the study reached it) and final metric; their medians; the
    one-shot trials' medians; how many trials ran."""

    task: str
    optimizer: str
    study_steps: list[float]
    study_seconds: list[float]
    study_finals: list[float]
    steps: float
    seconds: float
    final: float | None
    one_shot_steps: float
    one_shot_seconds: float
    one_shot_final: float | None
    trials: int
    reached: int = 0
    best_params: list[dict[str, float]] = field(default_factory=list)

    def spread(self, by: str) -> tuple[float, float]:
        """(lowest, highest) over the studies of the steps or seconds."""
        values = self.study_steps if by == "steps" else self.study_seconds
        return (min(values), max(values)) if values else (math.inf, math.inf)


def best_final(records: Sequence[TrialRecord], higher_is_better: bool) -> float | None:
    finals = [r.final for r in records if r.final is not None and math.isfinite(r.final)]
    if not finals:
        return None
    return max(finals) if higher_is_better else min(finals)


def make_cell(task: str, optimizer: str, records: Sequence[TrialRecord],
              higher_is_better: bool) -> Cell:
    """The cell of one (task, optimizer) from its trials, tuned and one-shot."""
    tuned = [r for r in records if r.kind == TUNED]
    shots = [r for r in records if r.kind == ONE_SHOT]
    studies = sorted({r.study for r in tuned})
    steps, seconds, finals, best_points = [], [], [], []
    for study in studies:
        mine = [r for r in tuned if r.study == study]
        fastest = min(mine, key=lambda r: (r.time("steps"), r.time("seconds")))
        steps.append(fastest.time("steps"))
        seconds.append(min(r.time("seconds") for r in mine))
        final = best_final(mine, higher_is_better)
        finals.append(math.nan if final is None else final)
        best_points.append(dict(fastest.params))
    shot_finals = [r.final for r in shots if r.final is not None]
    return Cell(
        task, optimizer, steps, seconds, finals,
        steps=profiles.median(steps), seconds=profiles.median(seconds),
        final=statistics.median(finals) if finals and not any(map(math.isnan, finals))
        else None,
        one_shot_steps=profiles.median([r.time("steps") for r in shots]),
        one_shot_seconds=profiles.median([r.time("seconds") for r in shots]),
        one_shot_final=statistics.median(shot_finals) if shot_finals else None,
        trials=len(tuned), reached=sum(math.isfinite(r.time("steps")) for r in tuned),
        best_params=best_points)


@dataclass
class Standings:
    """The benchmark's answer over its records (``directions``: per task, whether its
    metric is higher-is-better)."""

    records: list[TrialRecord]
    tasks: list[str]
    optimizers: list[str]
    directions: dict[str, bool]

    @cached_property
    def cells(self) -> dict[tuple[str, str], Cell]:
        return {(task, opt): make_cell(task, opt, [r for r in self.records
                                                   if r.task == task and r.optimizer == opt],
                                       self.directions[task])
                for task in self.tasks for opt in self.optimizers}

    def times(self, by: str, kind: str = TUNED) -> dict[str, dict[str, float]]:
        """``times[optimizer][task]``: the cells' medians (∞: missed)."""
        cells = self.cells
        pick = {("steps", TUNED): "steps", ("seconds", TUNED): "seconds",
                ("steps", ONE_SHOT): "one_shot_steps",
                ("seconds", ONE_SHOT): "one_shot_seconds"}[(by, kind)]
        return {opt: {task: getattr(cells[task, opt], pick) for task in self.tasks}
                for opt in self.optimizers}

    def ratios(self, by: str) -> dict[str, dict[str, float]]:
        return profiles.ratios(self.times(by))

    def scores(self, by: str, kind: str = TUNED) -> dict[str, float]:
        return profiles.scores(self.times(by, kind))

    def verdicts(self) -> dict[str, Verdict]:
        """Per task, who reached the target in the fewest steps beyond the studies' noise
        (each study's best trial is one sample; only optimizers whose every study reached
        it are in the running, as in compare's target verdict)."""
        verdicts = {}
        for task in self.tasks:
            samples = {}
            for opt in self.optimizers:
                cell = self.cells[task, opt]
                if cell.study_steps and all(map(math.isfinite, cell.study_steps)):
                    samples[opt] = cell.study_steps
            verdicts[task] = decide(samples, higher_is_better=False)
        return verdicts

    def to_json(self) -> dict[str, Any]:
        """summary.json's answer: scores (tuned and one-shot, by steps and by seconds),
        per-task cells, the verdicts, and every trial with its hyperparameters."""
        def clean(value: Any) -> Any:  # JSON has no ∞: a miss is null
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, list):
                return [clean(item) for item in value]
            if isinstance(value, dict):
                return {key: clean(item) for key, item in value.items()}
            return value

        return clean({
            "scores": {opt: {"steps": self.scores("steps")[opt],
                             "seconds": self.scores("seconds")[opt],
                             "one_shot_steps": self.scores("steps", ONE_SHOT)[opt],
                             "one_shot_seconds": self.scores("seconds", ONE_SHOT)[opt]}
                       for opt in self.optimizers},
            "tau_max": profiles.TAU_MAX,
            "cells": [asdict(cell) for cell in self.cells.values()],
            "verdicts": {task: v.to_json() for task, v in self.verdicts().items()},
            "trials": [asdict(record) for record in self.records]})
