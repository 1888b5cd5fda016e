"""The benchmark's answer against its definitions, on hand-made trials: the cell of a task
and optimizer (each study's fastest trial, the median over studies, a miss as ∞), the
performance ratios and profiles ρ(τ), and the score as the mean of ρ over τ ∈ [1, 4]."""

from __future__ import annotations

import math
import random

import pytest

from optimlab.lab.analysis import profiles
from optimlab.lab.analysis.standings import ONE_SHOT, TUNED, Standings, TrialRecord

INF = math.inf


def record(task: str, opt: str, study: int, slot: int, steps: float | None,
           seconds: float | None = None, final: float = 0.9, kind: str = TUNED) -> TrialRecord:
    seconds = None if steps is None else (seconds if seconds is not None else steps / 100)
    return TrialRecord(task, opt, kind, study, slot, {"lr": 0.01 * (slot + 1)},
                       {"steps_to_target": steps, "seconds_to_target": seconds,
                        "final": final, "status": "finished"})


def test_a_cell_is_the_median_over_studies_of_each_studys_fastest_trial() -> None:
    records = [record("a", "sgd", 0, 0, 300), record("a", "sgd", 0, 1, 200),   # study 0: 200
               record("a", "sgd", 1, 0, None), record("a", "sgd", 1, 1, None),  # study 1: ∞
               record("a", "sgd", 2, 0, 500), record("a", "sgd", 2, 1, 400),    # study 2: 400
               record("a", "sgd", 0, 0, 700, kind=ONE_SHOT),
               record("a", "sgd", 1, 1, None, kind=ONE_SHOT),
               record("a", "sgd", 2, 2, 900, kind=ONE_SHOT)]
    standings = Standings(records, ["a"], ["sgd"], {"a": True})
    cell = standings.cells["a", "sgd"]
    assert cell.study_steps == [200, INF, 400]
    assert cell.steps == 400  # median of 200, 400, ∞
    assert cell.spread("steps") == (200, INF)
    assert cell.one_shot_steps == 900  # median of 700, 900, ∞
    assert cell.trials == 6 and cell.reached == 4
    assert cell.best_params[0] == {"lr": 0.02}


def test_the_median_counts_a_miss_as_infinite() -> None:
    assert profiles.median([1, INF, INF]) == INF
    assert profiles.median([1, 2, INF]) == 2
    assert profiles.median([1, 3]) == 2 and profiles.median([1, INF]) == INF
    assert profiles.median([]) == INF


def test_ratios_and_profiles_follow_their_definition() -> None:
    times = {"x": {"t1": 100, "t2": 50, "t3": INF},
             "y": {"t1": 200, "t2": 25, "t3": INF},
             "z": {"t1": 500, "t2": INF, "t3": INF}}
    ratios = profiles.ratios(times)
    assert ratios["x"] == {"t1": 1.0, "t2": 2.0, "t3": INF}
    assert ratios["y"] == {"t1": 2.0, "t2": 1.0, "t3": INF}
    assert ratios["z"] == {"t1": 5.0, "t2": INF, "t3": INF}
    # ρ(τ): the share of the three tasks within a factor τ of the best
    assert profiles.profile(ratios["x"], 1.0) == pytest.approx(1 / 3)
    assert profiles.profile(ratios["x"], 2.0) == pytest.approx(2 / 3)
    assert profiles.profile(ratios["z"], 4.0) == 0.0
    assert profiles.profile(ratios["z"], 5.0) == pytest.approx(1 / 3)
    taus, rhos = profiles.profile_curve(ratios["x"])
    assert taus == [1.0, 2.0, 4.0] and rhos == pytest.approx([1 / 3, 2 / 3, 2 / 3])


def numeric_score(task_ratios: dict[str, float], points: int = 30001) -> float:
    """The mean of ρ over [1, 4] by the trapezoid rule on a fine grid."""
    taus = [1 + 3 * i / (points - 1) for i in range(points)]
    rhos = [profiles.profile(task_ratios, tau) for tau in taus]
    area = sum((rhos[i] + rhos[i + 1]) / 2 * (taus[i + 1] - taus[i])
               for i in range(points - 1))
    return area / 3


def test_the_score_is_the_mean_of_the_profile_over_one_to_four(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5):
        times = {opt: {f"t{i}": rng.choice([INF, rng.uniform(10, 1000)]) for i in range(6)}
                 for opt in ("a", "b", "c")}
        ratios = profiles.ratios(times)
        for opt, score in profiles.scores(times).items():
            assert score == pytest.approx(numeric_score(ratios[opt]), abs=2e-4)
            assert 0.0 <= score <= 1.0


def test_fastest_everywhere_scores_one_never_within_four_scores_zero() -> None:
    times = {"fast": {"t1": 10, "t2": 10}, "slow": {"t1": 50, "t2": 41},
             "never": {"t1": INF, "t2": INF}}
    scores = profiles.scores(times)
    assert scores == {"fast": 1.0, "slow": 0.0, "never": 0.0}
    # twice as slow on both tasks: ρ = 0 on [1, 2), 1 on [2, 4] -> 2/3
    assert profiles.scores({"a": {"t": 10}, "b": {"t": 20}})["b"] == pytest.approx(2 / 3)


def test_a_task_nobody_solves_counts_against_everyone() -> None:
    ratios = profiles.ratios({"a": {"t1": 10, "t2": INF}, "b": {"t1": 20, "t2": INF}})
    assert ratios["a"]["t2"] == INF and ratios["b"]["t2"] == INF
    assert profiles.score(ratios["a"]) == pytest.approx(0.5)


def test_standings_scores_and_verdicts_from_records() -> None:
    records = []
    for study in range(3):
        records += [record("t", "fast", study, 0, 100 + study),
                    record("t", "slow", study, 0, 300 + 10 * study),
                    record("t", "miss", study, 0, None)]
    standings = Standings(records, ["t"], ["fast", "slow", "miss"], {"t": True})
    # medians 101 and 310: slow is within τ of the best from τ = 310/101 on
    assert standings.scores("steps") == {"fast": 1.0, "slow": pytest.approx((4 - 310 / 101) / 3),
                                         "miss": 0.0}
    verdict = standings.verdicts()["t"]
    assert verdict.winner == "fast" and "miss" not in verdict.tied
    summary = standings.to_json()
    assert summary["scores"]["fast"]["steps"] == 1.0
    assert len(summary["trials"]) == 9
    assert summary["cells"][2]["steps"] is None  # ∞ is written as null
