"""Who won, and whether the win is beyond the seeds' noise.

A winner is named only when the best spec's per-seed values differ from every other
spec's by Welch's t-test (two-sided, unequal variances) at the 5% level; otherwise the
specs that cannot be told from the best are reported as tied. With t = (x̄ − ȳ) /
√(s²ₓ/m + s²ᵧ/n), the test needs two values per spec: with one seed there is no spread to
judge by, and no winner. scipy (a dependency of scikit-learn, so of the lab) computes the
p-value.

Curves are "identical within noise" when, at every logged step, the two specs' mean
curves are closer than the typical spread between seeds: then one line would hide the
other, and the report says so.
"""

from __future__ import annotations

import itertools
import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from optimlab.lab.running.records import FINISHED, Run

ALPHA = 0.05
TEST = "Welch's t-test, two-sided, 5%"


def welch_p(first: Sequence[float], second: Sequence[float]) -> float | None:
    """The p-value of Welch's t-test between two samples; None with fewer than two
    values in either. Two samples without spread differ surely (p = 0) unless equal."""
    if len(first) < 2 or len(second) < 2:
        return None
    # spread below the values' rounding (accuracies 0.9583333 and 0.95833334) is none
    scale = 1e-12 * max(abs(v) for v in (*first, *second)) ** 2
    if statistics.variance(first) <= scale and statistics.variance(second) <= scale:
        return 1.0 if math.isclose(statistics.fmean(first), statistics.fmean(second),
                                   rel_tol=1e-6) else 0.0
    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # one sample without spread is fine for Welch's test
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(first, second, equal_var=False).pvalue)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a comparison on one quantity.

    ``best``: the spec with the best mean (None when no spec has values); ``winner``: the
    best, when it beats every other beyond noise, else None; ``tied``: the specs that
    cannot be told from the best (the best first); ``p_values``: each other spec's p
    against the best (None: not testable); ``reason``: why there is no winner, in words.
    """

    best: str | None
    winner: str | None
    tied: list[str] = field(default_factory=list)
    p_values: dict[str, float | None] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return {"best": self.best, "winner": self.winner, "tied": self.tied,
                "p_values": self.p_values, "test": TEST, "reason": self.reason}


def decide(samples: Mapping[str, Sequence[float]], higher_is_better: bool) -> Verdict:
    """The verdict over per-seed values (specs without values are out of the running)."""
    scored = {label: list(values) for label, values in samples.items() if values}
    if not scored:
        return Verdict(None, None, reason="no run finished")
    sign = -1.0 if higher_is_better else 1.0
    order = sorted(scored, key=lambda label: sign * statistics.fmean(scored[label]))
    best = order[0]
    if len(order) == 1:
        alone = "only one optimizer" if len(samples) == 1 else "only one optimizer finished"
        return Verdict(best, None, [best], reason=alone)
    p_values = {label: welch_p(scored[best], scored[label]) for label in order[1:]}
    tied = [best, *(label for label, p in p_values.items() if p is None or p >= ALPHA)]
    if len(tied) == 1:
        return Verdict(best, best, tied, p_values)
    if all(p is None for p in p_values.values()):
        reason = "one seed per optimizer: no spread to judge a difference by"
    else:
        reason = f"within the seeds' noise ({TEST})"
    return Verdict(best, None, tied, p_values, reason)


@dataclass(frozen=True)
class Likeness:
    """Two specs whose curves of ``metric`` never parted by more than the seeds' spread:
    ``gap`` the largest distance between their mean curves, ``spread`` the mean standard
    deviation over seeds (0 with one seed: then only equal curves are alike)."""

    first: str
    second: str
    metric: str
    gap: float
    spread: float


def mean_curve(runs: Sequence[Run], metric: str) -> dict[int, tuple[float, float]]:
    """Step -> (mean, sample std) over the finished runs' values of ``metric``; step 0 (the
    same initialisation for both specs of a seed) is left out."""
    by_step: dict[int, list[float]] = {}
    for run in runs:
        if run.status != FINISHED:
            continue
        for step, _, value in zip(*run.series(metric), strict=True):
            if step > 0:
                by_step.setdefault(step, []).append(value)
    return {step: (statistics.fmean(values),
                   statistics.stdev(values) if len(values) > 1 else 0.0)
            for step, values in by_step.items()}


def alike(first: Sequence[Run], second: Sequence[Run], metric: str) -> tuple[float, float] | None:
    """(gap, spread) when the two groups' curves of ``metric`` are alike within noise."""
    one, other = mean_curve(first, metric), mean_curve(second, metric)
    steps = sorted(set(one) & set(other))
    if not steps or set(one) != set(other):
        return None
    gap = max(abs(one[s][0] - other[s][0]) for s in steps)
    spread = statistics.fmean((one[s][1] + other[s][1]) / 2 for s in steps)
    scale = max(abs(one[s][0]) for s in steps)
    return (gap, spread) if gap <= max(spread, 1e-9 * scale) and math.isfinite(gap) else None


def alike_pairs(groups: Mapping[str, Sequence[Run]], metrics: Sequence[str]) -> list[Likeness]:
    """Every pair of specs alike within noise on all of ``metrics`` (reported on the
    first)."""
    pairs = []
    for first, second in itertools.combinations(groups, 2):
        found = [alike(groups[first], groups[second], metric) for metric in metrics]
        if all(found):
            gap, spread = found[0]
            pairs.append(Likeness(first, second, metrics[0], gap, spread))
    return pairs
