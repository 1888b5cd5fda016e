"""The optimlab command end to end, on tiny settings: each command writes a run folder
whose report parses as HTML, is self-contained and holds its table; bad input is refused
before training with a message naming it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lab_checks import only_folder, read_metrics, read_report, read_summary

from optimlab.lab import cli, runner


def optimlab(*arguments: str) -> int:
    return cli.main([*arguments])


def test_compare_writes_the_report_csv_json_and_figures(tmp_path: Path, capsys) -> None:
    status = optimlab("compare", "--steps", "12", "--seeds", "2", "--no-progress",
                      "--optimizers", "sgd", "adam:lr=3e-3,bias_correction=false",
                      "sgd:lr=1e5", "--out", str(tmp_path))
    assert status == 0
    folder = only_folder(tmp_path)
    assert folder.name.endswith("-digits-mlp")
    report = read_report(folder)
    header, *rows = report.tables[0]
    assert header[0] == "optimizer" and [row[0] for row in rows] == [
        "sgd", "adam:lr=0.003,bias_correction=false", "sgd:lr=100000"]
    assert report.flagged_rows == 1 and "seed 0 diverged at step" in rows[2][-1]
    assert report.tables[1][0] == ["optimizer", "training", "hyperparameters"]
    assert "bias_correction=false" in report.tables[1][2][2]
    for name in ["loss_vs_step", "loss_vs_time", "metric_vs_step", "lr_schedule",
                 "grad_norm", "param_norm"]:
        assert (folder / f"{name}.png").stat().st_size > 1000, name
        assert f"{name}.png" in report.links
    metrics = read_metrics(folder)
    assert {row["seed"] for row in metrics} == {"0", "1"}
    assert {"train_loss", "heldout_accuracy", "lr", "grad_norm"} <= {r["metric"] for r in metrics}
    summary = read_summary(folder)
    assert [row["optimizer"] for row in summary["summary"]] == [row[0] for row in rows]
    assert sum(run["status"] == "diverged" for run in summary["runs"]) == 2
    printed = capsys.readouterr().out
    assert "final held-out accuracy" in printed and str(folder / "report.html") in printed


def test_compare_with_the_recipe_schedule_warmup_and_clipping(tmp_path: Path) -> None:
    status = optimlab("compare", "--task", "char-transformer", "--steps", "6", "--seeds", "1",
                      "--optimizers", "adamw:lr=0.01", "--schedule", "linear", "--warmup", "2",
                      "--clip", "0.5", "--no-progress", "--out", str(tmp_path))
    assert status == 0
    folder = only_folder(tmp_path)
    read_report(folder)
    lrs = [float(row["value"]) for row in read_metrics(folder) if row["metric"] == "lr"]
    # warmup over 2 steps from 0, then linear decay to 0 at step 6 (optimlab.schedules)
    assert lrs == pytest.approx([0.0, 0.005, 0.01, 0.0075, 0.005, 0.0025])
    assert read_summary(folder)["settings"]["training"]["clip"] == 0.5


def test_sweep_draws_every_lr_and_keeps_diverged_points(tmp_path: Path) -> None:
    status = optimlab("sweep", "--steps", "8", "--optimizers", "sgd", "adam", "--lrs", "0.01",
                      "0.1", "1e5", "--no-progress", "--out", str(tmp_path))
    assert status == 0
    folder = only_folder(tmp_path)
    assert folder.name.endswith("-sweep-digits-mlp")
    report = read_report(folder)
    assert [row[0] for row in report.tables[0][1:]] == ["sgd", "adam"]
    assert (folder / "sweep.png").stat().st_size > 1000
    points = read_summary(folder)["points"]
    assert [p["lr"] for p in points["sgd"]] == [0.01, 0.1, 1e5]
    assert points["sgd"][-1]["diverged"] == 1 and points["sgd"][-1]["final"] is None
    assert {row["optimizer"] for row in read_metrics(folder)} >= {"sgd:lr=0.01", "adam:lr=0.1"}


def test_trajectories_draw_paths_and_an_animation(tmp_path: Path) -> None:
    status = optimlab("trajectories", "--steps", "6", "--surfaces", "ravine", "--gif",
                      "--optimizers", "sgd", "adam", "adam:bias_correction=false",
                      "--no-progress", "--out", str(tmp_path))
    assert status == 0
    folder = only_folder(tmp_path)
    report = read_report(folder)
    assert [row[0] for row in report.rows[1:] if row] == [
        "sgd", "adam", "adam:bias_correction=false"]
    for name in ["ravine_paths.png", "ravine_loss.png", "ravine_step_length.png",
                 "ravine_paths_animated.gif"]:
        assert (folder / name).stat().st_size > 1000, name
    steps = {row["step"] for row in read_metrics(folder) if row["metric"] == "x"}
    assert steps == {str(step) for step in range(7)}  # every position, start included


def test_tasks_and_optimizers_list_what_is_available(capsys) -> None:
    assert optimlab("tasks") == 0
    listed = capsys.readouterr().out
    for name in ["digits-mlp", "digits-cnn", "sparse-features", "char-transformer", "ravine",
                 "rosenbrock"]:
        assert name in listed
    assert optimlab("optimizers", "--task", "digits-mlp") == 0
    listed = capsys.readouterr().out
    for text in ["momentum", "adamw", "lr: digits-mlp", "bias_correction in {false, true}",
                 "eps_placement in {outside, inside}", "momentum_form in {heavy_ball, ema}",
                 "engine in {", "nonfinite in {ignore, skip, raise}",
                 "schedule in {linear, cosine, constant, wsd}", "warmup=", "clip="]:
        assert text in listed
    assert "differentiable in" not in listed  # a torch flag, not an option to try


@pytest.mark.parametrize(("arguments", "message"), [
    (["compare", "--task", "mnist"], "unknown task 'mnist'; valid tasks: digits-mlp"),
    (["compare", "--optimizers", "no-such-optimizer"], "unknown optimizer 'no-such-optimizer'"),
    (["compare", "--optimizers", "adam:eps_inside_sqrt=true"],
     "adam has no option 'eps_inside_sqrt'"),
    (["compare", "--optimizers", "adam:lr=-3"], "lr=-3.0 is invalid"),
    (["compare", "--schedule", "exponential"], "schedule='exponential' is invalid"),
    (["compare", "--steps", "50", "--optimizers", "adamw:warmup=80"],
     "optimizer spec 'adamw:warmup=80': warmup=80 is invalid; valid: an int 0 <= warmup <= "
     "total_steps=50"),
    (["compare", "--optimizers", "adamw:schedule=step"],
     "schedule='step' is not one of {linear, cosine, constant, wsd}"),
    (["sweep", "--optimizers", "adam:lr=0.1"], "sets lr, which the sweep varies"),
    (["sweep", "--optimizers", "adamw:weight_decay=0.1", "--weight-decays", "0", "0.1"],
     "sets weight_decay, which the sweep varies"),
])
def test_bad_input_is_one_line_naming_it(arguments, message, tmp_path: Path, capsys) -> None:
    assert optimlab(*arguments, "--out", str(tmp_path)) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert "schedules." not in captured.err  # options are named, not internal functions
    assert not any(tmp_path.iterdir())  # refused before any folder or training


def test_an_unwritable_output_folder_is_reported_before_training(tmp_path: Path,
                                                                 capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert optimlab("compare", "--out", str(blocker / "runs")) == 2
    captured = capsys.readouterr()
    assert "cannot write the output folder" in captured.err and captured.out == ""


def test_ctrl_c_writes_the_report_of_what_was_done(tmp_path: Path, monkeypatch,
                                                  capsys) -> None:
    real_train, calls = runner.train, []

    def interrupted_third(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner, "train", interrupted_third)
    status = optimlab("compare", "--task", "ravine", "--steps", "5", "--seeds", "2",
                      "--optimizers", "sgd", "adam", "--no-progress", "--out", str(tmp_path))
    assert status == 130
    folder = only_folder(tmp_path)
    report = read_report(folder)
    # seed by seed, each spec in turn: sgd 0, adam 0, then Ctrl-C before sgd 1
    assert report.column(0, "optimizer") == ["sgd", "adam"]
    assert report.column(0, "runs") == ["seed 1 not run", "seed 1 not run"]
    assert "Not run: sgd (seed 1); adam (seed 1)" in report.text
    summary = read_summary(folder)
    assert summary["interrupted"] is True and summary["not_run"] == {"sgd": [1], "adam": [1]}
    assert "interrupted" in capsys.readouterr().err


def test_a_missing_lab_extra_is_one_clear_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "missing_extras", lambda: ["matplotlib"])
    assert optimlab("tasks") == 1
    assert "pip install 'optimlab[lab]'" in capsys.readouterr().err


def test_the_console_script_runs() -> None:
    script = shutil.which("optimlab", path=str(Path(sys.executable).parent))
    assert script, "the optimlab console script is not installed next to this Python"
    done = subprocess.run([script, "tasks"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and "digits-mlp" in done.stdout
