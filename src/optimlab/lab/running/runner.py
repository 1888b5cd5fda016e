"""The runner: train each (optimizer spec, seed) on a task and record what happens.

It writes nothing and prints nothing but the progress bar: it returns ``Results`` (runs
made of records, see records.py) for the report to draw. A run whose loss turns non-finite
is stopped and recorded as diverged at that step; the others go on. Ctrl-C stops the
comparison and returns what was done: the runs that finished, and the one it stopped,
with its steps so far, marked interrupted.

Timing is made fair to the first optimizer: before the timed runs, each spec trains
``Settings.untimed_steps`` steps on a throwaway copy of the problem (the first steps of
anything pay torch's one-time costs: lazy initialisation, allocation, kernel selection).
The runs then go seed by seed, every spec in turn, so that a machine whose speed drifts
weighs on every spec alike. The optimizer's own ``step()`` is timed apart from the
forward and backward passes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch.optim.lr_scheduler import LRScheduler
from tqdm.auto import tqdm

import optimlab
from optimlab.lab.analysis.results import Results
from optimlab.lab.inputs.settings import Settings, check_training
from optimlab.lab.inputs.specs import OptimizerSpec
from optimlab.lab.running.records import DIVERGED, FINISHED, Run
from optimlab.lab.workloads.problems import Problem
from optimlab.lab.workloads.tasks import Task, Training


def training_of(spec: OptimizerSpec, settings: Settings) -> Training:
    """The spec's training: the comparison's, with the spec's own schedule, warmup and
    clip (clip=0: none) on top."""
    return settings.training.updated(spec.training)


def check_specs(specs: Sequence[OptimizerSpec], settings: Settings) -> None:
    """Refuse, before any training, a spec whose own training options do not fit the
    settings (``adamw:warmup=500`` in a 300-step run)."""
    for spec in specs:
        if spec.training:
            check_training(training_of(spec, settings), settings.steps,
                           f"optimizer spec {spec.label!r}")


def build_training(task: Task, spec: OptimizerSpec, problem: Problem, steps: int,
                   training: Training) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """The spec's optimizer and its lr scheduler, from ``optimlab.recipe``.

    The lr and weight decay are the spec's (its overrides, else the task's lr, else the
    class's defaults); the schedule and warmup ``training``'s. With ``decay_groups`` the
    parameters are split by ``optimlab.param_groups`` so that biases and norms do not
    decay; otherwise they form one group.
    """
    keywords = spec.keywords(task.default_lr(spec.family))
    resolved = spec.resolved(task.default_lr(spec.family))
    lr, weight_decay = resolved["lr"], resolved.get("weight_decay", 0.0)
    model = problem.model
    groups = (optimlab.param_groups(model, weight_decay) if training.decay_groups
              else [{"params": list(model.parameters())}])
    options = {k: v for k, v in keywords.items() if k not in ("lr", "weight_decay")}
    return optimlab.recipe(groups, lr=lr, weight_decay=weight_decay, total_steps=steps,
                           warmup=training.warmup, schedule=training.schedule,
                           optimizer=spec.cls, **options)


class Step(NamedTuple):
    """One training step: the batch loss, the gradient norm before clipping (nan when not
    measured), whether the run diverged, and the seconds ``optimizer.step()`` took."""

    loss: float
    grad_norm: float
    diverged: bool
    step_seconds: float


def train_step(problem: Problem, optimizer: torch.optim.Optimizer, scheduler: LRScheduler,
               clip: float | None, measure: bool) -> Step:
    """One step. The norm comes from ``optimlab.clip_grad_norm``: on every step when
    clipping, else (max_norm=inf: measure only) when ``measure`` asks for it — it costs as
    much as a small model's optimizer step. A non-finite loss ends the run without
    stepping; so does an optimizer that refuses a non-finite gradient
    (``nonfinite="raise"``)."""
    loss = problem.loss(problem.next_batch())
    value = loss.item()
    if not math.isfinite(value):
        return Step(value, math.nan, True, 0.0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = math.nan
    if clip is not None or measure:
        grad_norm = optimlab.clip_grad_norm(optimizer, math.inf if clip is None else clip)
    started = time.perf_counter()
    try:
        optimizer.step()
    except FloatingPointError:
        return Step(value, grad_norm, True, time.perf_counter() - started)
    step_seconds = time.perf_counter() - started
    scheduler.step()
    return Step(value, grad_norm, False, step_seconds)


def engines_of(optimizer: torch.optim.Optimizer) -> tuple[dict[str, int] | None, str]:
    """(engine name -> tensors it stepped in the last step, as the optimizer reports it,
    or None; the engine asked for: ``auto``..., or ``torch.optim`` for torch's classes)."""
    requested = getattr(optimizer, "engine", None) or "torch.optim"
    used = getattr(optimizer, "engines_used", None)
    return (dict(used()) if callable(used) else None), str(requested)


def scores(problem: Problem) -> dict[str, float]:
    """The problem's evaluation, plus the L2 norm of all parameters (weight decay's
    effect)."""
    with torch.no_grad():
        norms = [p.detach().norm() for p in problem.model.parameters()]
        total = torch.linalg.vector_norm(torch.stack(norms)).item() if norms else 0.0
    return {**problem.evaluate(), "param_norm": total}


def evaluate(problem: Problem, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``scores(problem)`` at the weights the optimizer would have us evaluate: an
    optimizer with ``eval()`` and ``train()`` (schedule-free's, which keep the point they
    step from apart from the point they return) is switched to ``eval()`` for the
    evaluation and back to ``train()`` after it; the others are evaluated as they are."""
    switches = callable(getattr(optimizer, "eval", None)) and callable(
        getattr(optimizer, "train", None))
    if switches:
        optimizer.eval()
    try:
        return scores(problem)
    finally:
        if switches:
            optimizer.train()


def train(task: Task, spec: OptimizerSpec, seed: int, settings: Settings,
          advance: Callable[[int], object] = lambda steps: None,
          runs: list[Run] | None = None) -> Run:
    """Train one (spec, seed) run and return its records; ``advance(n)`` is told of every
    ``n`` steps done (the progress bar). With ``runs``, the run is appended to it before
    its first step, so that an interruption keeps the steps done."""
    problem = task.make(seed, settings.batch_size)
    training = training_of(spec, settings)
    optimizer, scheduler = build_training(task, spec, problem, settings.steps, training)
    run = Run(task.name, spec.label, seed, lr=scheduler.base_lrs[0])
    run.engines, run.engine_requested = engines_of(optimizer)
    if runs is not None:
        runs.append(run)
    run.add(0, 0.0, evaluate(problem, optimizer))
    clock, losses, norms = Stopwatch(), [], []
    for step in range(1, settings.steps + 1):
        lr = optimizer.param_groups[0]["lr"]
        logged = settings.is_log_step(step)
        with clock:
            done = train_step(problem, optimizer, scheduler, training.clip, measure=logged)
        losses.append(done.loss)
        if not math.isnan(done.grad_norm):
            norms.append(done.grad_norm)
        run.steps_done, run.train_time = step, clock.elapsed
        run.step_time += done.step_seconds
        advance(1)
        if done.diverged:
            run.add(step, clock.elapsed, {"train_loss": done.loss, "grad_norm": done.grad_norm})
            run.status, run.diverged_at = DIVERGED, step
            advance(settings.steps - step)
            return run
        if logged:
            run.add(step, clock.elapsed, {"train_loss": sum(losses) / len(losses), "lr": lr,
                                          "grad_norm": sum(norms) / len(norms) if norms
                                          else math.nan})
            losses, norms = [], []
            run.engines = engines_of(optimizer)[0]
        if settings.is_eval_step(step):
            run.add(step, clock.elapsed, evaluate(problem, optimizer))
    run.status = FINISHED
    return run


def warm_up(task: Task, spec: OptimizerSpec, settings: Settings) -> None:
    """``settings.untimed_steps`` steps of ``spec`` on a throwaway problem, untimed: the
    one-time costs of a first step land here instead of in the first timed run."""
    if settings.untimed_steps == 0:
        return
    problem = task.make(settings.seeds[0], settings.batch_size)
    training = training_of(spec, settings)
    optimizer, scheduler = build_training(task, spec, problem, settings.steps, training)
    for _ in range(settings.untimed_steps):
        if train_step(problem, optimizer, scheduler, training.clip, measure=True).diverged:
            return


class Stopwatch:
    """Training time only: the clock runs inside ``with stopwatch:`` blocks."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed += time.perf_counter() - self._start


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block (None: as they are)."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_all(task: Task, specs: Sequence[OptimizerSpec], settings: Settings,
            progress: bool | None = None, threads: int | None = 1) -> Results:
    """Train every spec with every seed. ``progress=None`` shows the bar on a terminal.

    ``threads``: torch's intra-op threads while training. The default, 1, is the fastest
    for the lab's small models: a second thread, spinning while other processes hold the
    cores, can make a step many times slower. None leaves torch's setting.

    Ctrl-C (KeyboardInterrupt) ends the comparison: the runs done so far are returned
    (the one stopped marked interrupted, with its steps), with ``results.interrupted``
    set, so that their report can still be written.
    """
    check_specs(specs, settings)
    results = Results(task, list(specs), settings)
    total = len(specs) * len(settings.seeds) * settings.steps
    bar = tqdm(total=total, unit="step", disable=(None if progress is None else not progress),
               desc=task.name, leave=False)
    try:
        with torch_threads(threads):
            results.threads = torch.get_num_threads()
            for spec in specs:
                bar.set_postfix_str(f"{spec.label} warm-up")
                warm_up(task, spec, settings)
            # seed by seed, every spec in turn: a machine that slows down or speeds up
            # during the comparison (other processes) weighs on every spec alike
            for seed in settings.seeds:
                for spec in specs:
                    bar.set_postfix_str(f"{spec.label} seed {seed}")
                    train(task, spec, seed, settings, bar.update, runs=results.runs)
    except KeyboardInterrupt:
        results.interrupted = True
    finally:
        bar.close()
    return results
