"""The benchmark's report from hand-made trials: every table, figure and file is there, a
miss is written as ✕ (null in summary.json), and headless Chromium renders every figure."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_lab_browser import CHROMIUM, image_sizes

import optimlab.lab
from optimlab.lab.analysis.benchmark_results import BenchmarkResults
from optimlab.lab.analysis.standings import ONE_SHOT, TUNED, Standings, TrialRecord
from optimlab.lab.commands.benchmark import make_setup

TASKS, OPTIMIZERS = ["digits-mlp", "sparse-features"], ["sgd", "adam"]


def made_up(seed: int) -> BenchmarkResults:
    """Two tasks, two optimizers, 3 studies x 4 trials and 3 one-shot runs each; adam is
    the faster on digits-mlp, sgd misses sparse-features everywhere."""
    rng = random.Random(seed)
    setup, _ = make_setup(TASKS, OPTIMIZERS, trials=4, studies=3, storage="unused.journal")
    records = []
    for task in TASKS:
        for opt in OPTIMIZERS:
            for study in range(3):
                for slot in range(4):
                    lr = 10 ** rng.uniform(-4, 0)
                    miss = (task == "sparse-features" and opt == "sgd") or slot == 3
                    fast = range(20, 200, 20) if opt == "adam" else range(400, 800, 20)
                    steps = None if miss else rng.choice(fast)
                    records.append(TrialRecord(
                        task, opt, TUNED, study, slot,
                        {"lr": lr, "weight_decay": 10 ** rng.uniform(-5, -1)},
                        {"steps_to_target": steps, "status": "finished",
                         "seconds_to_target": None if miss else steps / 500,
                         "final": rng.uniform(0.5, 0.97), "lr": lr, "weight_decay": 0.0}))
                records.append(TrialRecord(task, opt, ONE_SHOT, study, study, {},
                                           {"steps_to_target": 380, "status": "finished",
                                            "seconds_to_target": 0.8, "final": 0.9,
                                            "lr": 0.01, "weight_decay": 0.01}))
    standings = Standings(records, TASKS, OPTIMIZERS, {task: True for task in TASKS})
    return BenchmarkResults(setup, standings, {"fashion-mlp": "not installed"},
                            budget=len(records), complete=len(records), ran=len(records),
                            seconds=12.0)


def test_the_report_holds_tables_figures_and_every_trial(tmp_path: Path, seed: int) -> None:
    done = made_up(seed)
    folder = optimlab.lab.write_report(done, tmp_path)
    page = (folder / "report.html").read_text(encoding="utf-8")
    for text in ["Scores", "Time to target (steps)", "Time to target (seconds)",
                 "Performance profiles", "One-shot against tuned", "Landscape: digits-mlp",
                 "Left out: fashion-mlp: not installed", "✕"]:
        assert text in page, text
    assert "src=\"data:image/png;base64," in page and "<script" not in page
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["scores"]) == set(OPTIMIZERS)
    assert summary["scores"]["adam"]["steps"] == 1.0  # the only one to reach both targets
    assert len(summary["trials"]) == len(done.standings.records)
    missed = [c for c in summary["cells"] if c["task"] == "sparse-features"
              and c["optimizer"] == "sgd"]
    assert missed[0]["steps"] is None and missed[0]["study_steps"] == [None] * 3
    rows = (folder / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + len(done.standings.records)
    for name in ["profiles", "one-shot", "landscape-digits-mlp", "landscape-sparse-features"]:
        assert (folder / f"{name}.png").stat().st_size > 5000, name
    assert "adam" in optimlab.lab.table(done).splitlines()[2]  # the best score first


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get "
                    "install chromium; .ci/run installs it)")
def test_every_figure_of_the_benchmark_report_loads_in_chromium(tmp_path: Path,
                                                                seed: int) -> None:
    folder = optimlab.lab.write_report(made_up(seed), tmp_path)
    sizes = image_sizes(folder / "report.html", tmp_path / "chromium-profile")
    assert len(sizes) == len(list(folder.glob("*.png"))) == 4
    for width, height in sizes:
        assert width > 300 and height > 200, sizes
