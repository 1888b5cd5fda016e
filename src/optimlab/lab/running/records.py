"""What the runner hands to the report: records, never text.

A ``Run`` is one (task, optimizer spec, seed) training run: its status (``finished``,
``diverged`` at step k, or ``interrupted`` after ``steps_done``), its timings, the engine
that stepped it, and its ``Record``s, one per (step, metric), the long format of
``metrics.csv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

FINISHED, DIVERGED, INTERRUPTED = "finished", "diverged", "interrupted"


@dataclass(frozen=True)
class Record:
    """One measured value: ``metric`` = ``value`` after ``step`` steps and ``wall_time``
    seconds of training (evaluation time excluded)."""

    step: int
    wall_time: float
    metric: str
    value: float


@dataclass
class Run:
    """One training run and everything measured during it.

    ``train_time``: seconds of training (forward, backward, clipping, optimizer step;
    evaluation excluded); ``step_time``: the part of it spent in ``optimizer.step()``.
    ``engines``: engine name -> tensors it stepped in the last step, as the optimizer
    reports it (None when it does not); ``engine_requested``: the engine asked for.
    """

    task: str
    optimizer: str
    seed: int
    lr: float | None = None
    status: str = INTERRUPTED
    diverged_at: int | None = None
    steps_done: int = 0
    train_time: float = 0.0
    step_time: float = 0.0
    engines: dict[str, int] | None = None
    engine_requested: str | None = None
    records: list[Record] = field(default_factory=list)

    def add(self, step: int, wall_time: float, scores: dict[str, float]) -> None:
        self.records.extend(Record(step, wall_time, key, value) for key, value in
                            scores.items())

    def series(self, metric: str) -> tuple[list[int], list[float], list[float]]:
        """(steps, wall times, values) of ``metric``, in step order, finite values only."""
        rows = [r for r in self.records if r.metric == metric and math.isfinite(r.value)]
        return [r.step for r in rows], [r.wall_time for r in rows], [r.value for r in rows]

    def last(self, metric: str) -> float | None:
        """The last finite value of ``metric``, or None."""
        values = self.series(metric)[2]
        return values[-1] if values else None

    @property
    def steps_per_second(self) -> float | None:
        return self.steps_done / self.train_time if self.train_time > 0 else None

    @property
    def step_ms(self) -> float | None:
        """Milliseconds per ``optimizer.step()``."""
        return 1e3 * self.step_time / self.steps_done if self.steps_done else None

    @property
    def engine(self) -> str:
        """The engine(s) that stepped the run: ``native``, ``reference 4, compiled 2``, or
        the one requested (``auto (requested)``) when the optimizer does not say."""
        if self.engines:
            if len(self.engines) == 1:
                return next(iter(self.engines))
            return ", ".join(f"{name} {count}" for name, count in self.engines.items())
        requested = self.engine_requested or "unknown"
        return requested if requested == "torch.optim" else f"{requested} (requested)"

    def to_dict(self) -> dict[str, object]:
        """The run without its records (those go to metrics.csv)."""
        return {"task": self.task, "optimizer": self.optimizer, "seed": self.seed,
                "lr": self.lr, "status": self.status, "diverged_at": self.diverged_at,
                "steps_done": self.steps_done, "train_time_s": self.train_time,
                "steps_per_second": self.steps_per_second,
                "optimizer_step_time_s": self.step_time, "optimizer_step_ms": self.step_ms,
                "engine": self.engine, "engines": self.engines,
                "engine_requested": self.engine_requested}
