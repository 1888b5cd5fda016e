"""The runner: train each (optimizer spec, seed) on a task and record what happens.

It writes nothing and prints nothing but the progress bar: it returns ``Results`` (runs
made of records, see records.py) for the report to draw. A run whose loss turns non-finite
is stopped and recorded as diverged at that step; the others go on. Ctrl-C stops the
comparison and returns the runs that finished, marked as interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import LRScheduler
from tqdm.auto import tqdm

import optimlab
from optimlab.lab.problems import Problem
from optimlab.lab.records import DIVERGED, FINISHED, Run
from optimlab.lab.results import Results
from optimlab.lab.specs import OptimizerSpec
from optimlab.lab.tasks import Task, Training


@dataclass(frozen=True)
class Settings:
    """How long and how each run trains, and how often it is measured.

    The training loss is logged ``log_points`` times per run (the mean over the steps
    since the last point, so no step goes unseen), with the lr and the gradient norm
    (the mean over the interval when clipping, else measured at the logged step); the
    evaluation metrics
    ``eval_points`` times, plus once before the first step. ``eval_points=None``
    evaluates after every step (the trajectories need every position).
    """

    steps: int
    batch_size: int
    seeds: tuple[int, ...] = (0, 1, 2)
    training: Training = field(default_factory=Training)
    log_points: int = 200
    eval_points: int | None = 20

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is invalid; valid: >= 1")
        if not self.seeds:
            raise ValueError("seeds is empty; valid: at least one seed")
        clip = self.training.clip
        if clip is not None and not clip > 0:
            raise ValueError(f"clip={clip!r} is invalid; valid: a max gradient norm > 0, or "
                             "None for no clipping")
        # refuse a bad schedule or warmup now, before any training
        optimlab.schedules.get(self.training.schedule, self.steps, self.training.warmup)

    @property
    def log_every(self) -> int:
        return max(1, self.steps // self.log_points)

    @property
    def eval_every(self) -> int:
        return 1 if self.eval_points is None else max(1, self.steps // self.eval_points)

    def is_log_step(self, step: int) -> bool:
        return step % self.log_every == 0 or step == self.steps

    def is_eval_step(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.steps


class Stopwatch:
    """Training time only: the clock runs inside ``with stopwatch:`` blocks."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed += time.perf_counter() - self._start


def build_training(task: Task, spec: OptimizerSpec, problem: Problem,
                   settings: Settings) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """The spec's optimizer and its lr scheduler, from ``optimlab.recipe``.

    The lr and weight decay are the spec's (its overrides, else the task's lr, else the
    class's defaults); the schedule and warmup the settings'. With ``decay_groups`` the
    parameters are split by ``optimlab.param_groups`` so that biases and norms do not
    decay; otherwise they form one group.
    """
    keywords = spec.keywords(task.default_lr(spec.name))
    probe = spec.build([torch.nn.Parameter(torch.ones(1))], task.default_lr(spec.name))
    resolved = probe.defaults  # what the class makes of the spec, its presets included
    lr, weight_decay = resolved["lr"], resolved["weight_decay"]
    model = problem.model
    groups = (optimlab.param_groups(model, weight_decay) if settings.training.decay_groups
              else [{"params": list(model.parameters())}])
    options = {k: v for k, v in keywords.items() if k not in ("lr", "weight_decay")}
    return optimlab.recipe(groups, lr=lr, weight_decay=weight_decay,
                           total_steps=settings.steps, warmup=settings.training.warmup,
                           schedule=settings.training.schedule, optimizer=spec.cls, **options)


def train_step(problem: Problem, optimizer: torch.optim.Optimizer, scheduler: LRScheduler,
               clip: float | None, measure: bool) -> tuple[float, float, bool]:
    """One step: (batch loss, gradient norm before clipping, whether it diverged).

    The norm comes from ``optimlab.clip_grad_norm``: on every step when clipping, else
    (max_norm=inf: measure only) when ``measure`` asks for it — it costs as much as a
    small model's optimizer step. A non-finite loss ends the run without stepping; so does
    an optimizer that refuses a non-finite gradient (``nonfinite="raise"``).
    """
    loss = problem.loss(problem.next_batch())
    value = loss.item()
    if not math.isfinite(value):
        return value, math.nan, True
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = math.nan
    if clip is not None or measure:
        grad_norm = optimlab.clip_grad_norm(optimizer, math.inf if clip is None else clip)
    try:
        optimizer.step()
    except FloatingPointError:
        return value, grad_norm, True
    scheduler.step()
    return value, grad_norm, False


def scores(problem: Problem) -> dict[str, float]:
    """The problem's evaluation, plus the L2 norm of all parameters (weight decay's
    effect)."""
    with torch.no_grad():
        norms = [p.detach().norm() for p in problem.model.parameters()]
        total = torch.linalg.vector_norm(torch.stack(norms)).item() if norms else 0.0
    return {**problem.evaluate(), "param_norm": total}


def train(task: Task, spec: OptimizerSpec, seed: int, settings: Settings,
          advance: Callable[[int], object] = lambda steps: None) -> Run:
    """Train one (spec, seed) run and return its records; ``advance(n)`` is told of every
    ``n`` steps done (the progress bar)."""
    problem = task.make(seed, settings.batch_size)
    optimizer, scheduler = build_training(task, spec, problem, settings)
    run = Run(task.name, spec.label, seed, lr=scheduler.base_lrs[0])
    run.add(0, 0.0, scores(problem))
    clock, losses, norms = Stopwatch(), [], []
    for step in range(1, settings.steps + 1):
        lr = optimizer.param_groups[0]["lr"]
        logged = settings.is_log_step(step)
        with clock:
            loss, grad_norm, diverged = train_step(problem, optimizer, scheduler,
                                                   settings.training.clip, measure=logged)
        losses.append(loss)
        if not math.isnan(grad_norm):
            norms.append(grad_norm)
        run.steps_done, run.train_time = step, clock.elapsed
        advance(1)
        if diverged:
            run.add(step, clock.elapsed, {"train_loss": loss, "grad_norm": grad_norm})
            run.status, run.diverged_at = DIVERGED, step
            advance(settings.steps - step)
            return run
        if logged:
            run.add(step, clock.elapsed, {"train_loss": sum(losses) / len(losses), "lr": lr,
                                          "grad_norm": sum(norms) / len(norms) if norms
                                          else math.nan})
            losses, norms = [], []
        if settings.is_eval_step(step):
            run.add(step, clock.elapsed, scores(problem))
    run.status = FINISHED
    return run


def run_all(task: Task, specs: Sequence[OptimizerSpec], settings: Settings,
            progress: bool | None = None) -> Results:
    """Train every spec with every seed. ``progress=None`` shows the bar on a terminal.

    Ctrl-C (KeyboardInterrupt) ends the comparison: the runs that finished are returned,
    with ``results.interrupted`` set, so that their report can still be written.
    """
    results = Results(task, list(specs), settings)
    total = len(specs) * len(settings.seeds) * settings.steps
    bar = tqdm(total=total, unit="step", disable=(None if progress is None else not progress),
               desc=task.name, leave=False)
    try:
        for spec in specs:
            for seed in settings.seeds:
                bar.set_postfix_str(f"{spec.label} seed {seed}")
                results.runs.append(train(task, spec, seed, settings, bar.update))
    except KeyboardInterrupt:
        results.interrupted = True
    finally:
        bar.close()
    return results
