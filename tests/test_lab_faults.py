"""Faults keep what was done: an interrupted first run keeps its steps and the report lists
what did not run; a diverged run is left out of the axis limits; a sweep marks a run no
better than chance as failed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from lab_checks import read_metrics, read_report, read_summary

import optimlab.lab
from optimlab.lab.analysis.results import Results
from optimlab.lab.inputs.specs import parse_spec
from optimlab.lab.rendering.figures import curves
from optimlab.lab.running import runner
from optimlab.lab.running.records import DIVERGED, FINISHED, INTERRUPTED, Run
from optimlab.lab.running.runner import Settings, run_all
from optimlab.lab.running.sweep import SweepResults, no_better_than_chance
from optimlab.lab.workloads.tasks import get_task


def interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Ctrl-C during the ``call``-th training step (warm-up steps count)."""
    real_step, calls = runner.train_step, []

    def step(*args, **kwargs):
        calls.append(None)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(runner, "train_step", step)


def test_an_interrupted_first_run_keeps_its_steps(monkeypatch, tmp_path: Path) -> None:
    task = get_task("digits-mlp")
    settings = Settings(steps=20, batch_size=32, seeds=(0, 1), untimed_steps=3)
    # both specs warm up first, then seed 0 of sgd: Ctrl-C during its step 7
    interrupt_at(monkeypatch, 2 * settings.untimed_steps + 7)
    results = run_all(task, [parse_spec("sgd"), parse_spec("adam")], settings,
                      progress=False)
    assert results.interrupted
    (run,) = results.runs
    assert run.status == INTERRUPTED and run.steps_done == 6
    assert run.series("train_loss")[0] == [1, 2, 3, 4, 5, 6]
    folder = optimlab.lab.write_report(results, tmp_path)
    metrics = read_metrics(folder)
    assert {int(row["step"]) for row in metrics if row["metric"] == "train_loss"} == set(
        range(1, 7))
    report = read_report(folder)
    assert report.column(0, "runs") == ["seed 0 interrupted after 6 steps; seed 1 not run",
                                        "not run (seeds 0, 1)"]
    assert "Not run: sgd (seed 1); adam (seeds 0, 1)" in report.text
    assert "sgd seed 0 after 6 steps" in report.text
    assert read_summary(folder)["runs"][0]["status"] == "interrupted"
    assert (folder / "loss_vs_step.png").stat().st_size > 5000  # a curve, not empty axes


def made_run(label: str, seed: int, losses: list[float], status: str = FINISHED) -> Run:
    run = Run("digits-mlp", label, seed, lr=0.1, status=status, steps_done=len(losses))
    for step, loss in enumerate(losses, start=1):
        run.add(step, 0.01 * step, {"train_loss": loss})
    if status == DIVERGED:
        run.diverged_at = len(losses)
    return run


def test_a_diverged_run_is_left_out_of_the_axis_limits() -> None:
    healthy = [made_run("adam", seed, [2.0 / (step + seed) for step in range(1, 30)])
               for seed in range(2)]
    exploding = made_run("sgd:lr=1e6", 0, [10.0 ** (4 * step) for step in range(1, 9)]
                         + [math.inf], DIVERGED)
    figure = curves({"adam": healthy, "sgd:lr=1e6": [exploding]}, "train_loss", "t", "step",
                    "loss")
    bottom, top = figure.axes[0].get_ylim()
    assert bottom > 0 and top < 10  # the healthy curves (0.07 to 2), not 1e32
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "sgd:lr=1e6 (diverged)" in labels and "diverged (loss → non-finite)" in labels


def test_a_sweep_marks_a_run_no_better_than_chance_as_failed() -> None:
    assert no_better_than_chance(0.1, 0.1, higher_is_better=True)
    assert no_better_than_chance(0.104, 0.1, higher_is_better=True)
    assert not no_better_than_chance(0.2, 0.1, higher_is_better=True)
    assert no_better_than_chance(4.8, 4.67, higher_is_better=False)
    assert not no_better_than_chance(0.1, None, higher_is_better=True)
    task = get_task("digits-mlp")
    assert task.chance_level() == pytest.approx(0.1, abs=0.01)  # ten balanced classes
    base = parse_spec("adam")
    runs = []
    for lr, accuracy in [(1e-3, 0.95), (1.0, 0.1)]:
        run = Run(task.name, base.with_overrides(lr=lr).label, 0, lr=lr, status=FINISHED)
        run.add(10, 1.0, {"heldout_accuracy": accuracy})
        runs.append(run)
    results = Results(task, [base.with_overrides(lr=1e-3), base.with_overrides(lr=1.0)],
                      Settings(steps=10, batch_size=8, seeds=(0,)), runs)
    sweep = SweepResults(results, [base], [1e-3, 1.0])
    good, collapsed = sweep.points(base)
    assert (good.failed, collapsed.failed, collapsed.chance) == (0, 1, 1)
    best, within = sweep.good_range(base)
    assert best.lr == 1e-3 and [p.lr for p in within] == [1e-3]
