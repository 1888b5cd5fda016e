"""Each seed claim in one command: ``sweep --weight-decays`` draws an lr × λ heatmap per
optimizer with its best cell; per-spec schedules put warmup vs none, cosine vs constant in
one comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_checks import only_folder, read_metrics, read_report, read_summary

from optimlab.lab import compare
from optimlab.lab.commands import cli


def test_sweep_with_weight_decays_draws_the_heatmaps(tmp_path: Path, capsys) -> None:
    status = cli.main(["sweep", "--optimizers", "adam", "adamw", "--lrs", "0.001", "0.01",
                       "--weight-decays", "0.1", "0", "--steps", "6", "--no-progress",
                       "--out", str(tmp_path)])
    assert status == 0
    folder = only_folder(tmp_path)
    assert (folder / "lr_wd_heatmap.png").stat().st_size > 10_000
    assert (folder / "sweep.png").stat().st_size > 1000
    summary = read_summary(folder)
    assert summary["weight_decays"] == [0, 0.1]
    assert set(summary["best_cells"]) == {"adam", "adamw"}
    for cell in summary["best_cells"].values():
        assert cell["lr"] in (0.001, 0.01) and cell["weight_decay"] in (0, 0.1)
    assert set(summary["points"]) == {"adam:weight_decay=0", "adam:weight_decay=0.1",
                                      "adamw:weight_decay=0", "adamw:weight_decay=0.1"}
    labels = {row["optimizer"] for row in read_metrics(folder)}
    assert "adam:weight_decay=0.1,lr=0.01" in labels and len(labels) == 8
    report = read_report(folder)
    assert "lr_wd_heatmap.png" in report.links
    assert "Best cell of each optimizer: adam at lr=" in report.text
    assert "2 optimizers × 2 weight decays × 2 lrs" in capsys.readouterr().out


def test_per_spec_schedules_in_one_comparison() -> None:
    results = compare("digits-mlp", ["adamw:schedule=constant,warmup=0", "adamw:warmup=4",
                                     "adamw"], steps=8, seeds=1, schedule="cosine",
                      warmup=0.5, progress=False)
    lrs = {run.optimizer: run.series("lr")[2] for run in results.runs}
    assert lrs["adamw:schedule=constant,warmup=0"] == [3e-3] * 8
    # cosine after 4 warmup steps (the spec's) vs after 0.5 · 8 = 4 (the comparison's)
    assert lrs["adamw:warmup=4"] == pytest.approx(lrs["adamw"])
    assert lrs["adamw"][:5] == pytest.approx([0, 7.5e-4, 1.5e-3, 2.25e-3, 3e-3])
    assert lrs["adamw"][-1] < 3e-3 / 5


def test_a_per_spec_clip_of_zero_turns_clipping_off(tmp_path: Path) -> None:
    results = compare("char-transformer", ["adamw:clip=0", "adamw:clip=0.01"], steps=2,
                      seeds=1, progress=False)
    hyper = results.hyperparameters()
    assert hyper["adamw:clip=0"]["clip"] is None and hyper["adamw:clip=0.01"]["clip"] == 0.01
