"""How a comparison's runs train and are measured (what runner.py runs, results.py keeps)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import optimlab
from optimlab.hyperparameters import ArgumentError
from optimlab.lab.workloads.tasks import Training


@dataclass(frozen=True)
class Settings:
    """How long and how each run trains, and how often it is measured.

    The training loss is logged ``log_points`` times per run (the mean over the steps
    since the last point, so no step goes unseen), with the lr and the gradient norm
    (the mean over the interval when clipping, else measured at the logged step); the
    evaluation metrics ``eval_points`` times, plus once before the first step.
    ``eval_points=None`` evaluates after every step (the trajectories need every
    position). ``untimed_steps``: the warm-up of each spec before its timed runs.
    """

    steps: int
    batch_size: int
    seeds: tuple[int, ...] = (0, 1, 2)
    training: Training = field(default_factory=Training)
    log_points: int = 200
    eval_points: int | None = 20
    untimed_steps: int = 5

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid; valid: an integer >= 1")
        if not self.seeds:
            raise ValueError("seeds is empty; valid: at least one seed (seeds=3: 0, 1, 2)")
        if self.untimed_steps < 0:
            raise ValueError(f"untimed_steps={self.untimed_steps} is invalid; valid: >= 0")
        check_training(self.training, self.steps)  # refuse a bad schedule before training

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


def check_training(training: Training, steps: int, who: str = "") -> None:
    """ValueError, naming the bad option and its valid values, for a training the
    recipe would refuse (``who`` prefixes the message: the spec that set it)."""
    prefix = f"{who}: " if who else ""
    clip = training.clip
    if clip is not None and not clip > 0:
        raise ValueError(f"{prefix}clip={clip!r} is invalid; valid: a max gradient norm > 0, "
                         "or None for no clipping")
    try:
        optimlab.schedules.get(training.schedule, steps, training.warmup)
    except ArgumentError as error:
        # the schedules' messages name their function (schedules.get: ...); a user named
        # an option, not a function
        raise ValueError(prefix + re.sub(r"^schedules\.\w+: ", "", str(error))) from None
