"""Learning-rate schedules: linear warmup, then linear, cosine, constant or warmup-stable-decay.

Every schedule is one pure function of the step, the factor by which each param group's
initial lr is multiplied, with W warmup steps, T total steps, D decay steps and the floor
r = ``min_lr_ratio``:

    m(s) = s / W                       s < W               (linear warmup from 0)
    m(s) = 1                           W <= s < T − D      (stable)
    m(s) = r + (1 − r) · shape(p)      T − D <= s          p = min(1, (s − (T − D)) / D)

    linear:   D = T − W,  shape(p) = 1 − p
    cosine:   D = T − W,  shape(p) = ½ (1 + cos πp)
    constant: D = 0,      r = 1
    wsd:      D given (``decay``), shape linear, cosine or 1 − √p

With r = 0, ``linear`` and ``cosine`` equal transformers' ``get_linear_schedule_with_warmup``
and ``get_cosine_schedule_with_warmup`` at every step 0 <= s <= T (with r > 0, cosine equals
``get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate=r)``). Past T every schedule stays
at its floor m = r; transformers' cosine instead climbs back up after T.

Step convention (torch's ``LambdaLR``): s counts the optimizer steps already taken.
``LambdaLR`` calls m(0) when it is built, so the k-th ``optimizer.step()`` (k = 0, 1, ...)
runs at ``initial_lr * m(k)``, and the ``scheduler.step()`` after it moves to m(k + 1).
With a warmup the first update therefore runs at lr 0, exactly as in transformers.

    >>> schedule = cosine(total_steps=1000, warmup=0.1, min_lr_ratio=0.1)
    >>> schedule(0), schedule(100), schedule(1000)
    (0.0, 1.0, 0.1)
    >>> scheduler = schedule.scheduler(optimizer)  # a torch LambdaLR
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from optimlab.hyperparameters import ArgumentError, Choice, Range

DECAY_SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    "1-sqrt": lambda p: 1.0 - math.sqrt(p),
}
RATIO = Range(0.0, 1.0, closed=True)


@dataclass(frozen=True)
class Schedule:
    """An lr multiplier m(step) (module docstring), and its torch scheduler.

    Plain fields only: ``LambdaLR.state_dict()`` saves them, and ``load_state_dict``
    restores them, so a checkpoint carries the schedule it was trained with.
    """

    kind: str
    total_steps: int
    warmup_steps: int
    decay_steps: int
    min_lr_ratio: float
    decay_shape: str

    def lr_multiplier(self, step: float) -> float:
        """m(step): the factor applied to each group's initial lr after ``step`` steps."""
        if isinstance(step, bool) or not isinstance(step, numbers.Real) \
                or not step >= 0 or math.isinf(step):
            raise ArgumentError(f"schedules.{self.kind}: step={step!r} is invalid; valid: a finite "
                                "number >= 0 (optimizer steps taken so far)")
        if step < self.warmup_steps:
            return step / self.warmup_steps
        decay_start = self.total_steps - self.decay_steps
        if step < decay_start:
            return 1.0
        # D = 0 (constant, or warmup == total) drops straight to the floor at T.
        progress = min(1.0, (step - decay_start) / self.decay_steps) if self.decay_steps else 1.0
        shape = DECAY_SHAPES[self.decay_shape](progress)
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape

    __call__ = lr_multiplier

    def scheduler(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1) -> LambdaLR:
        """A ``torch.optim.lr_scheduler.LambdaLR`` following this schedule.

        Call ``optimizer.step()`` then ``scheduler.step()``, as for any torch scheduler.
        """
        return LambdaLR(optimizer, self, last_epoch=last_epoch)


def steps_of(owner: str, name: str, value: Any, total_steps: int) -> int:
    """A phase length given as steps (an int) or as a fraction of ``total_steps`` (a float).

    A fraction f becomes floor(f · T), as in ``int(0.1 * total_steps)`` (seed 002); the tiny
    tolerance keeps 0.29 · 100 = 28.999999999999996 at 29 steps.
    """
    valid = (f"an int 0 <= {name} <= total_steps={total_steps} (steps), or a float "
             f"0.0 <= {name} <= 1.0 (fraction of total_steps)")
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        if isinstance(value, numbers.Integral):
            if 0 <= value <= total_steps:
                return int(value)
        elif 0.0 <= value <= 1.0:
            return math.floor(value * total_steps + 1e-9)
    raise ArgumentError(f"{owner}: {name}={value!r} is invalid; valid: {valid}")


def _total(owner: str, total_steps: Any) -> int:
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) \
            or total_steps < 1:
        raise ArgumentError(f"{owner}: total_steps={total_steps!r} is invalid; valid: an "
                            "int >= 1")
    return int(total_steps)


def _warmup_then_decay(kind: str, total_steps: int, warmup: int | float, min_lr_ratio: float,
                       decay_shape: str) -> Schedule:
    owner = f"schedules.{kind}"
    total = _total(owner, total_steps)
    warmup_steps = steps_of(owner, "warmup", warmup, total)
    RATIO.check(owner, "min_lr_ratio", min_lr_ratio)
    return Schedule(kind, total, warmup_steps, total - warmup_steps, float(min_lr_ratio),
                    decay_shape)


def linear(total_steps: int, warmup: int | float = 0, min_lr_ratio: float = 0.0) -> Schedule:
    """Linear warmup to 1, then linear decay to ``min_lr_ratio`` at ``total_steps``.

    m(s) = s/W for s < W;  r + (1 − r)(T − s)/(T − W) for W <= s <= T;  r after T.
    """
    return _warmup_then_decay("linear", total_steps, warmup, min_lr_ratio, "linear")


def cosine(total_steps: int, warmup: int | float = 0, min_lr_ratio: float = 0.0) -> Schedule:
    """Linear warmup to 1, then half a cosine down to ``min_lr_ratio`` at ``total_steps``.

    m(s) = s/W for s < W;  r + (1 − r)·½(1 + cos(π (s − W)/(T − W))) for W <= s <= T;  r after.
    """
    return _warmup_then_decay("cosine", total_steps, warmup, min_lr_ratio, "cosine")


def constant(total_steps: int, warmup: int | float = 0) -> Schedule:
    """Linear warmup to 1, then 1 forever: m(s) = min(1, s/W).

    ``total_steps`` only converts a fractional ``warmup`` into steps.
    """
    total = _total("schedules.constant", total_steps)
    warmup_steps = steps_of("schedules.constant", "warmup", warmup, total)
    return Schedule("constant", total, warmup_steps, 0, 1.0, "linear")


def wsd(total_steps: int, warmup: int | float = 0, decay: int | float = 0.2,
        min_lr_ratio: float = 0.0, decay_shape: str = "linear") -> Schedule:
    """Warmup-stable-decay: linear warmup, 1 until the last ``decay`` steps, then a decay.

    m(s) = s/W for s < W;  1 for W <= s < T − D;  r + (1 − r)·shape((s − T + D)/D) after.
    ``decay`` is steps or a fraction of ``total_steps``; the default 20% is the cooldown
    length that matched cosine in Hägele et al. 2024 (arXiv:2405.18392), who also found the
    ``"1-sqrt"`` shape best. WSD lets a run be extended or branched before its decay.
    """
    owner = "schedules.wsd"
    total = _total(owner, total_steps)
    warmup_steps = steps_of(owner, "warmup", warmup, total)
    decay_steps = steps_of(owner, "decay", decay, total)
    if warmup_steps + decay_steps > total:
        raise ArgumentError(f"{owner}: warmup + decay = {warmup_steps} + {decay_steps} steps is "
                            f"invalid; valid: warmup + decay <= total_steps={total}")
    RATIO.check(owner, "min_lr_ratio", min_lr_ratio)
    Choice(tuple(DECAY_SHAPES)).check(owner, "decay_shape", decay_shape)
    return Schedule("wsd", total, warmup_steps, decay_steps, float(min_lr_ratio), decay_shape)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "linear": linear, "cosine": cosine, "constant": constant, "wsd": wsd}


def get(name: str, total_steps: int, warmup: int | float = 0, **options: Any) -> Schedule:
    """The schedule called ``name`` (a key of ``SCHEDULES``), built with ``options``."""
    Choice(tuple(SCHEDULES)).check("schedules.get", "schedule", name)
    factory = SCHEDULES[name]
    accepted = [key for key in inspect.signature(factory).parameters
                if key not in ("total_steps", "warmup")]
    for key, value in options.items():
        if key not in accepted:
            raise ArgumentError(f"schedules.get: {key}={value!r} is invalid with "
                                f"schedule={name!r}; valid: options {accepted}")
    return factory(total_steps, warmup, **options)
