"""The benchmark's runs: which trials there are, what one trial does, and the workers.

A trial trains one optimizer on one task once, to the task's step budget, with the
hyperparameters of its point of the search space (``registry.Entry.search_space``; the
keys a spec sets itself are not tuned) and a seed of its own, and records the steps and
the training seconds to the task's target (the optimizer's own ``step()`` timed apart, as
``compare`` does), the final and best headline metric. A *one-shot* trial runs the
registry's defaults instead (``Entry.default_lr`` and the class's own), once per study.

Every worker — this process, the ``workers - 1`` it starts, and any other machine running
the same command on the same storage — takes trials from the storage until none is left
(trials.py says how none is run twice and none is lost).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optimlab import registry
from optimlab.lab.analysis.results import first_reached
from optimlab.lab.analysis.standings import ONE_SHOT, TUNED, TrialRecord
from optimlab.lab.inputs.settings import Settings
from optimlab.lab.inputs.specs import OptimizerSpec, SpecError, check, named
from optimlab.lab.running import trials
from optimlab.lab.running.records import FINISHED
from optimlab.lab.running.runner import torch_threads, train, warm_up
from optimlab.lab.workloads.tasks import Task, get_task

POLL_S = 1.0  # how often an idle worker looks for trials others left or let go stale


@dataclass(frozen=True)
class Setup:
    """What a benchmark runs: built-in task names, optimizer specs, ``trials`` per
    optimizer, task and study, ``studies`` independent studies, the storage (a journal
    path or an RDB URL), the keys tuned (None: the whole search space), ``steps``
    (None: each task's own budget) and when a silent trial counts as dead."""

    tasks: tuple[str, ...]
    specs: tuple[OptimizerSpec, ...]
    trials: int
    studies: int
    storage: str
    tune: tuple[str, ...] | None = None
    steps: int | None = None
    stale_after: float = trials.STALE_AFTER_S

    def task(self, name: str) -> Task:
        return get_task(name)

    def steps_of(self, task: Task) -> int:
        return self.steps or task.steps


def space_of(spec: OptimizerSpec, tune: Sequence[str] | None = None
             ) -> tuple[registry.Dimension, ...]:
    """The dimensions tuned for ``spec``: its registry entry's search space, less the keys
    the spec sets itself (``adam:betas=0.9/0.95`` keeps its betas), only ``tune`` if
    given."""
    if spec.optimizer_class is not None:
        raise SpecError(f"optimizer {spec.label!r}: the benchmark tunes registry names "
                        "only (their search space is in optimlab.registry); valid: "
                        + ", ".join(registry.OPTIMIZERS))
    fixed = {*spec.overrides, *spec.training}
    space = named(spec.name).search_space
    return tuple(dim for dim in space if dim.key.partition("[")[0] not in fixed
                 and (tune is None or dim.key in tune))


def study_name(task: str, spec: OptimizerSpec, kind: str, study: int | None = None) -> str:
    return f"{task}/{spec.label}/" + (f"study-{study}" if kind == TUNED else ONE_SHOT)


@dataclass(frozen=True)
class Entry:
    """A planned study and what its trials need to run."""

    plan: trials.Plan
    task: str
    spec: OptimizerSpec
    kind: str
    study: int | None


def plans(setup: Setup) -> list[Entry]:
    """Every study of the benchmark: per task and spec, ``studies`` tuned studies of
    ``trials`` Sobol points each (the Sobol sequence scrambled by the study's number), and
    one one-shot study with a slot per study."""
    entries = []
    for name in setup.tasks:
        task = setup.task(name)
        for spec in setup.specs:
            space = space_of(spec, setup.tune)
            base = {"task": name, "optimizer": spec.label, "steps": setup.steps_of(task),
                    "batch_size": task.batch_size}
            described = [[d.key, d.low, d.high, d.log, d.complement] for d in space]
            for study in range(setup.studies):
                plan = trials.Plan(study_name(name, spec, TUNED, study),
                                   {**base, "kind": TUNED, "study": study,
                                    "space": described},
                                   trials.sobol_points(space, setup.trials, seed=study), space)
                entries.append(Entry(plan, name, spec, TUNED, study))
            plan = trials.Plan(study_name(name, spec, ONE_SHOT),
                               {**base, "kind": ONE_SHOT}, [{}] * setup.studies, ())
            entries.append(Entry(plan, name, spec, ONE_SHOT, None))
    return entries


def trial_spec(spec: OptimizerSpec, space: Sequence[registry.Dimension],
               params: dict[str, float]) -> OptimizerSpec:
    """The spec a trial trains: ``spec`` with the point's values (one-shot, no point: the
    registry's ``default_lr`` unless the spec sets the lr)."""
    overrides: dict[str, Any] = {}
    training: dict[str, Any] = {}
    if not space and "lr" not in spec.overrides:
        overrides["lr"] = named(spec.name).default_lr
    for dim in space:
        value = dim.value(params[dim.key])
        if dim.key == "warmup":
            training["warmup"] = value
        elif dim.key.startswith("betas["):
            betas = list(spec.resolved()["betas"])
            betas[int(dim.key[6])] = value
            overrides["betas"] = tuple(betas)
        else:
            overrides[dim.key] = value
    return OptimizerSpec(spec.name, {**spec.overrides, **overrides},
                         {**spec.training, **training})


def trial_seed(entry: Entry, slot: int) -> int:
    """Each trial has its own seed (the model's initialisation, the batches' order), the
    same on every run of the benchmark."""
    return 1000 * (entry.study if entry.kind == TUNED else slot) + (
        slot if entry.kind == TUNED else 999)


def run_trial(entry: Entry, trial: FrozenTrial, steps: int) -> tuple[float, dict[str, Any]]:
    """Train the trial; (its objective: steps to target, ∞ on a miss; its measurements)."""
    task = get_task(entry.task)
    slot = trial.user_attrs["slot"]
    seed = trial_seed(entry, slot)
    spec = trial_spec(entry.spec, entry.plan.space, trial.params)
    attrs: dict[str, Any] = {"seed": seed, "spec": spec.label}
    try:
        check(spec)
        settings = Settings(steps=steps, batch_size=task.batch_size, seeds=(seed,),
                            training=task.training.updated(spec.training))
    except (SpecError, ValueError) as error:
        return math.inf, {**attrs, "status": "refused", "reason": str(error)}
    resolved = spec.resolved(task.default_lr(spec.family))
    attrs["weight_decay"] = resolved.get("weight_decay", 0.0)
    warm_up(task, spec, settings)
    run = train(task, spec, seed, settings)
    hit = first_reached(run, task.headline) if run.status == FINISHED else None
    final = run.last(task.headline.key)
    values = run.series(task.headline.key)[2]
    pick = max if task.headline.higher_is_better else min
    attrs.update({
        "status": run.status, "diverged_at": run.diverged_at, "lr": run.lr,
        "steps_to_target": hit[0] if hit else None,
        "seconds_to_target": hit[1] if hit else None,
        "final": final, "best": pick(values) if values else None,
        "train_seconds": run.train_time, "step_seconds": run.step_time,
        "steps_done": run.steps_done})
    return (float(hit[0]) if hit else math.inf), attrs


@dataclass
class Worker:
    """One worker's loop over the storage; ``done`` is told after each trial."""

    setup: Setup
    done: Callable[[], None] = field(default=lambda: None)
    ran: int = 0
    parent: int | None = None  # a child worker stops when this process is gone

    def __post_init__(self) -> None:
        trials.quiet_optuna()
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.storage = trials.open_storage(self.setup.storage)
        self.entries = plans(self.setup)
        self.studies = {e.plan.name: optuna.load_study(study_name=e.plan.name,
                                                       storage=self.storage)
                        for e in self.entries}

    def next_trial(self) -> tuple[Entry, FrozenTrial] | None:
        """Claim the waiting trial of the lowest slot (ties: in plan order), so that
        every optimizer advances alike and a stopped benchmark is balanced."""
        waiting = []
        for index, entry in enumerate(self.entries):
            study = self.studies[entry.plan.name]
            for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                waiting.append((trial.user_attrs["slot"], index, trial.number, trial))
        for _, index, _, trial in sorted(waiting, key=lambda item: item[:3]):
            entry = self.entries[index]
            claimed = trials.claim_trial(self.storage, self.studies[entry.plan.name], trial)
            if claimed is not None:
                return entry, claimed
        return None

    def complete(self) -> int:
        """How many slots have a COMPLETE owner, over the whole benchmark."""
        return sum(owner.state == TrialState.COMPLETE
                   for entry in self.entries
                   for owner in trials.owners(
                       self.studies[entry.plan.name].get_trials(deepcopy=False)).values()
                   if owner.user_attrs["slot"] < len(entry.plan.points))

    def budget(self) -> int:
        return sum(len(entry.plan.points) for entry in self.entries)

    def work(self, wait: bool = True) -> int:
        """Run trials until every slot is complete (``wait``: also while others still run
        theirs, taking over any that die); the number this worker ran."""
        with torch_threads(1):
            while True:
                if self.parent is not None and os.getppid() != self.parent:
                    return self.ran  # the command was killed: so is its worker
                found = self.next_trial()
                if found is None:
                    if any(trials.retry_stale(self.storage, study, self.setup.stale_after)
                           for study in self.studies.values()):
                        continue
                    if not wait or self.complete() >= self.budget():
                        return self.ran
                    time.sleep(POLL_S)
                    self.done()
                    continue
                entry, trial = found
                steps = self.setup.steps_of(get_task(entry.task))
                try:
                    with trials.Heartbeat(self.storage, trial):
                        value, attrs = run_trial(entry, trial, steps)
                except KeyboardInterrupt:
                    trials.give_back(self.storage, self.studies[entry.plan.name], trial)
                    raise
                trials.finish(self.storage, trial, value, attrs)
                self.ran += 1
                self.done()


def _work_in_child(setup: Setup, parent: int) -> None:
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole group
        Worker(setup, parent=parent).work()


def prepare(setup: Setup) -> Worker:
    """Plan every study in the storage (idempotent; safe from several machines at once)
    and return this process's worker."""
    trials.quiet_optuna()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = trials.open_storage(setup.storage)
    for entry in plans(setup):
        trials.ensure_planned(storage, entry.plan)
    return Worker(setup)


def run_workers(setup: Setup, workers: int, progress: bool | None = None,
                worker: Worker | None = None) -> int:
    """Plan, then work with ``workers`` local processes (this one and ``workers - 1``
    started) until the budget is complete; a tqdm bar counts the trials done out of the
    budget. Returns the number of trials this run did."""
    from tqdm.auto import tqdm

    worker = worker or prepare(setup)
    bar = tqdm(total=worker.budget(), initial=worker.complete(), unit="trial",
               desc="benchmark", disable=(None if progress is None else not progress))

    def refresh() -> None:
        bar.n = worker.complete()
        bar.refresh()

    worker.done = refresh
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_work_in_child, args=(setup, os.getpid()),
                                daemon=False)
                for _ in range(workers - 1)]
    for child in children:
        child.start()
    try:
        worker.work()
        for child in children:
            child.join()
        return worker.ran
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join()
        bar.close()


def collect(worker: Worker) -> list[TrialRecord]:
    """The finished trials of the benchmark: each planned slot's COMPLETE owner."""
    records = []
    for entry in worker.entries:
        owned = trials.owners(worker.studies[entry.plan.name].get_trials(deepcopy=False))
        for slot in range(len(entry.plan.points)):
            trial = owned.get(slot)
            if trial is None or trial.state != TrialState.COMPLETE:
                continue
            records.append(TrialRecord(
                entry.task, entry.spec.label, entry.kind,
                entry.study if entry.kind == TUNED else slot, slot,
                dict(trial.params), dict(trial.user_attrs)))
    return records
