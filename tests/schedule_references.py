"""Learning-rate schedules written out independently of optimlab.schedules, for
tests/test_schedules.py to hold it against: transformers' published formulas
(optimization.py) and each schedule's closed form, piece by piece."""

from __future__ import annotations

import math


def hf_linear_with_warmup(step: int, num_warmup_steps: int, num_training_steps: int) -> float:
    """get_linear_schedule_with_warmup's lr_lambda."""
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - step)
               / float(max(1, num_training_steps - num_warmup_steps)))


def hf_cosine_with_warmup(step: int, num_warmup_steps: int, num_training_steps: int,
                          num_cycles: float = 0.5, min_lr_rate: float = 0.0) -> float:
    """get_cosine_schedule_with_warmup's lr_lambda (min_lr_rate = 0), and that of
    get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate > 0)."""
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    progress = float(step - num_warmup_steps) / float(
        max(1, num_training_steps - num_warmup_steps))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def hf_constant_with_warmup(step: int, num_warmup_steps: int) -> float:
    """get_constant_schedule_with_warmup's lr_lambda."""
    if step < num_warmup_steps:
        return float(step) / float(max(1.0, num_warmup_steps))
    return 1.0


def hf_wsd(step: int, num_warmup_steps: int, num_stable_steps: int, num_decay_steps: int,
           decay_type: str, min_lr_ratio: float = 0.0) -> float:
    """get_wsd_schedule's lr_lambda with warmup_type="linear", num_cycles=0.5."""
    if step < num_warmup_steps:
        progress = float(step) / float(max(1, num_warmup_steps))
        return max(0.0, progress * (1.0 - min_lr_ratio) + min_lr_ratio)
    if step < num_warmup_steps + num_stable_steps:
        return 1.0
    if step < num_warmup_steps + num_stable_steps + num_decay_steps:
        progress = float(step - num_warmup_steps - num_stable_steps) / float(
            max(1, num_decay_steps))
        factor = {"linear": 1.0 - progress,
                  "cosine": 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)),
                  "1-sqrt": 1.0 - math.sqrt(progress)}[decay_type]
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    return min_lr_ratio


def closed_form(kind: str, total: int, warmup: int, decay: int, floor: float, shape: str,
                step: float) -> float:
    """m(step) written out piece by piece from the definitions (T total, W warmup, D decay
    steps, r the floor), not through the module's code."""
    if step < warmup:
        return step / warmup
    if kind == "constant":
        return 1.0
    if kind in ("linear", "cosine"):
        if step >= total:
            return floor
        progress = (step - warmup) / (total - warmup)
        if kind == "linear":
            return floor + (1 - floor) * (total - step) / (total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < total - decay:  # wsd: stable, then the decay over the last D steps
        return 1.0
    if step >= total:
        return floor
    progress = (step - (total - decay)) / decay
    factor = {"linear": 1 - progress, "cosine": 0.5 * (1 + math.cos(math.pi * progress)),
              "1-sqrt": 1 - math.sqrt(progress)}[shape]
    return floor + (1 - floor) * factor
