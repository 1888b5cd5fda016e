"""Performance profiles and the benchmark score, as AlgoPerf defines them.

For each task t and optimizer o let r(o, t) be o's time to the target on t (the median
over studies of each study's best trial; ∞ when o missed it), and r*(t) the best r over
the optimizers. The *performance ratio* is r(o, t) / r*(t) (≥ 1; ∞ for a miss, and for
everyone on a task no optimizer solved). The *performance profile* of o is

    ρ_o(τ) = |{t : r(o, t) / r*(t) ≤ τ}| / |T|,

the share of tasks on which o is within a factor τ of the best, a step function rising
from ρ_o(1) (the share o wins) to the share it solves at all. The *score* is its mean over
τ ∈ [1, τ_max], τ_max = 4:

    B_o = 1/(τ_max − 1) ∫₁^τ_max ρ_o(τ) dτ = 1/(|T| (τ_max − 1)) Σ_t max(0, τ_max − ratio),

1 for an optimizer that is the fastest on every task, 0 for one never within 4x of it.
(Dolan & Moré, 2002; Dahl, Schneider et al., "Benchmarking Neural Network Training
Algorithms", 2023.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

TAU_MAX = 4.0


def ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per optimizer and task: its time over the task's best time (∞: missed, or nobody
    reached the target on that task). ``times[optimizer][task]``, ∞ for a miss."""
    tasks = sorted({task for row in times.values() for task in row})
    best = {task: min((row.get(task, math.inf) for row in times.values()), default=math.inf)
            for task in tasks}
    return {optimizer: {task: (row.get(task, math.inf) / best[task]
                               if math.isfinite(best[task]) and best[task] > 0
                               else (1.0 if best[task] == 0 == row.get(task) else math.inf))
                        for task in tasks}
            for optimizer, row in times.items()}


def profile(task_ratios: Mapping[str, float], tau: float) -> float:
    """ρ(τ): the share of tasks whose ratio is at most ``tau``."""
    if not task_ratios:
        return 0.0
    return sum(ratio <= tau for ratio in task_ratios.values()) / len(task_ratios)


def profile_curve(task_ratios: Mapping[str, float], tau_max: float = TAU_MAX
                  ) -> tuple[list[float], list[float]]:
    """ρ as a step function over [1, tau_max]: (τ's, ρ's) at its corners, to draw with
    ``step(where="post")``."""
    corners = sorted({1.0, tau_max, *(r for r in task_ratios.values() if r <= tau_max)})
    return corners, [profile(task_ratios, tau) for tau in corners]


def score(task_ratios: Mapping[str, float], tau_max: float = TAU_MAX) -> float:
    """B = the mean of ρ(τ) over τ ∈ [1, tau_max], in closed form (see the module)."""
    if not task_ratios:
        return 0.0
    total = sum(max(0.0, tau_max - max(1.0, ratio)) for ratio in task_ratios.values()
                if math.isfinite(ratio))
    return total / (len(task_ratios) * (tau_max - 1.0))


def scores(times: Mapping[str, Mapping[str, float]], tau_max: float = TAU_MAX
           ) -> dict[str, float]:
    """Each optimizer's score over the tasks in ``times``."""
    return {optimizer: score(row, tau_max) for optimizer, row in ratios(times).items()}


def median(values: Sequence[float]) -> float:
    """The median, ∞ above every number (a study that missed counts as ∞, as in
    AlgoPerf): with an odd count, ∞ when more than half missed; with an even count the
    mean of the middle two, ∞ when either is; ∞ for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.inf
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
