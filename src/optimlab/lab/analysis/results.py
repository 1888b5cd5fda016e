"""Results of a comparison, and the summary the report's table and summary.json show."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from optimlab.lab.analysis.verdicts import Likeness, Verdict, alike_pairs, decide
from optimlab.lab.inputs.specs import OptimizerSpec
from optimlab.lab.running.records import DIVERGED, FINISHED, INTERRUPTED, Run
from optimlab.lab.workloads.tasks import Metric, Task

if TYPE_CHECKING:
    from optimlab.lab.inputs.settings import Settings


@dataclass(frozen=True)
class Spread:
    """A mean over seeds and its sample standard deviation (None with one value)."""

    mean: float | None
    std: float | None

    @staticmethod
    def of(values: list[float]) -> Spread:
        if not values:
            return Spread(None, None)
        return Spread(statistics.fmean(values),
                      statistics.stdev(values) if len(values) > 1 else None)


@dataclass(frozen=True)
class Summary:
    """One optimizer spec over its seeds.

    ``final_*``: the headline metric after the last step, over the runs that finished
    (mean, sample standard deviation: None with one run); ``finals`` each of them.
    ``best``: the best value any evaluation of any seed reached. ``target_steps``: each
    reaching run's first evaluation at or past the task's target (a multiple of the
    evaluation interval); ``steps_to_target``/``time_to_target`` their means (steps;
    seconds of training). Timings over the runs: ``steps_per_second``, ``step_ms`` (one
    ``optimizer.step()``, ms) and ``step_share`` (its share of the training time), each as
    mean and std. ``engine``: the engine(s) that stepped the runs. ``diverged``: (seed,
    step) of each run whose loss became non-finite; ``interrupted``: (seed, steps done)
    of a run stopped by Ctrl-C; ``not_run``: the seeds that never started.
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
    finals: list[float] = field(default_factory=list)
    target_steps: list[int] = field(default_factory=list)
    steps_per_second_std: float | None = None
    step_ms: float | None = None
    step_ms_std: float | None = None
    step_share: float | None = None
    engine: str = ""
    interrupted: list[tuple[int, int]] = field(default_factory=list)
    not_run: list[int] = field(default_factory=list)
    target_times: list[float] = field(default_factory=list)


def first_reached(run: Run, metric: Metric) -> tuple[int, float] | None:
    """(step, wall time) of the run's first evaluation that reaches the target."""
    for step, wall_time, value in zip(*run.series(metric.key), strict=True):
        if metric.reached(value):
            return step, wall_time
    return None


def summarize(label: str, runs: list[Run], metric: Metric,
              seeds: tuple[int, ...] = ()) -> Summary:
    """The table row of one optimizer spec (``seeds``: those it was to run)."""
    finals = [run.last(metric.key) for run in runs if run.status == FINISHED]
    finals = [value for value in finals if value is not None]
    every = [value for run in runs for value in run.series(metric.key)[2]]
    pick = max if metric.higher_is_better else min
    hits = [hit for hit in (first_reached(run, metric) for run in runs) if hit]
    final = Spread.of(finals)
    timed = [run for run in runs if run.steps_per_second]
    speed = Spread.of([run.steps_per_second for run in timed])
    step_ms = Spread.of([run.step_ms for run in timed if run.step_ms is not None])
    share = Spread.of([run.step_time / run.train_time for run in timed])
    done = {run.seed for run in runs}
    return Summary(
        optimizer=label, lr=runs[0].lr if runs else None, runs=len(runs),
        final_mean=final.mean, final_std=final.std, finals=finals,
        best=pick(every) if every else None, steps_per_second=speed.mean,
        steps_per_second_std=speed.std, step_ms=step_ms.mean, step_ms_std=step_ms.std,
        step_share=share.mean,
        engine="; ".join(dict.fromkeys(run.engine for run in runs)),
        reached=len(hits), target_steps=[step for step, _ in hits],
        target_times=[wall for _, wall in hits],
        steps_to_target=Spread.of([float(step) for step, _ in hits]).mean,
        time_to_target=Spread.of([wall for _, wall in hits]).mean,
        diverged=[(run.seed, run.diverged_at) for run in runs
                  if run.status == DIVERGED and run.diverged_at is not None],
        interrupted=[(run.seed, run.steps_done) for run in runs
                     if run.status == INTERRUPTED],
        not_run=[seed for seed in seeds if seed not in done])


@dataclass
class Results:
    """Every run of a comparison (data: ``optimlab.lab.write_report(results)`` writes its
    report, ``optimlab.lab.table(results)`` its table)."""

    task: Task
    specs: list[OptimizerSpec]
    settings: Settings
    runs: list[Run] = field(default_factory=list)
    interrupted: bool = False
    threads: int | None = None  # torch's intra-op threads while training

    @property
    def labels(self) -> list[str]:
        return [spec.label for spec in self.specs]

    def runs_of(self, label: str) -> list[Run]:
        return [run for run in self.runs if run.optimizer == label]

    def summary(self) -> list[Summary]:
        """One row per spec that has at least one run, in the order given."""
        return [summarize(label, self.runs_of(label), self.task.headline,
                          self.settings.seeds)
                for label in self.labels if self.runs_of(label)]

    def not_run(self) -> dict[str, list[int]]:
        """Per spec, the seeds whose run never started (after an interruption)."""
        missing = {label: [seed for seed in self.settings.seeds
                           if seed not in {run.seed for run in self.runs_of(label)}]
                   for label in self.labels}
        return {label: seeds for label, seeds in missing.items() if seeds}

    def verdict(self) -> Verdict:
        """Who has the best final headline metric, and whether beyond noise."""
        rows = self.summary()
        return decide({row.optimizer: row.finals for row in rows},
                      self.task.headline.higher_is_better)

    def target_verdict(self, by: str = "steps") -> Verdict | None:
        """Who reached the target first, in steps (``by="steps"``) or in training time
        (``"time"``), among the specs whose every run reached it (None when none did)."""
        rows = [row for row in self.summary() if row.target_steps and row.reached == row.runs]
        if not rows:
            return None
        return decide({row.optimizer: [float(s) for s in row.target_steps] if by == "steps"
                       else row.target_times for row in rows}, higher_is_better=False)

    def alike(self) -> list[Likeness]:
        """Pairs of specs whose headline and loss curves are identical within noise."""
        groups = {label: self.runs_of(label) for label in self.labels if self.runs_of(label)}
        return alike_pairs(groups, [self.task.headline.key, "train_loss"])

    def hyperparameters(self) -> dict[str, dict[str, Any]]:
        """Per spec: every hyperparameter its optimizer resolved to on this task, and how
        it trained (schedule, warmup, clip)."""
        resolved = {}
        for spec in self.specs:
            training = self.settings.training.updated(spec.training)
            resolved[spec.label] = {
                **spec.resolved(self.task.default_lr(spec.family)),
                "schedule": training.schedule, "warmup": training.warmup,
                "clip": training.clip}
        return resolved

    def to_json(self) -> dict[str, Any]:
        """What summary.json holds: task, settings, the verdict ("winner": null when tied),
        one summary per spec, each spec's resolved hyperparameters, each run."""
        verdict = self.verdict()
        return {"task": self.task.name, "metric": asdict(self.task.headline),
                "settings": asdict(self.settings), "interrupted": self.interrupted,
                "winner": verdict.winner, "verdict": verdict.to_json(),
                "alike": [asdict(pair) for pair in self.alike()],
                "not_run": self.not_run(),
                "hyperparameters": self.hyperparameters(),
                "summary": [asdict(row) for row in self.summary()],
                "runs": [run.to_dict() for run in self.runs]}
