"""Winners only beyond noise: Welch's t-test against its formula, ties named as ties (two
identical specs), a real winner named, resolved hyperparameters in summary.json."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch
from lab_checks import only_folder, read_report, read_summary

import optimlab.lab
from optimlab.lab import compare
from optimlab.lab.analysis.verdicts import decide, welch_p
from optimlab.lab.commands import cli


def welch_from_the_formula(first: list[float], second: list[float]) -> float:
    """t = (x̄ − ȳ)/√(s²ₓ/m + s²ᵧ/n) with Welch–Satterthwaite's degrees of freedom ν; the
    two-sided p = 1 − 2∫₀^|t| f_ν(u) du, Student's density integrated in fp64."""
    m, n = len(first), len(second)
    a, b = statistics.variance(first) / m, statistics.variance(second) / n
    t = abs(statistics.fmean(first) - statistics.fmean(second)) / math.sqrt(a + b)
    nu = (a + b) ** 2 / (a * a / (m - 1) + b * b / (n - 1))
    u = torch.linspace(0, t, 100_001, dtype=torch.float64)
    scale = math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)) / math.sqrt(nu * math.pi)
    density = scale * (1 + u * u / nu) ** (-(nu + 1) / 2)
    return 1 - 2 * torch.trapezoid(density, u).item()


def test_welch_p_matches_its_formula(gen: torch.Generator) -> None:
    first = (torch.randn(4, generator=gen, dtype=torch.float64) + 0.5).tolist()
    second = (2 * torch.randn(6, generator=gen, dtype=torch.float64)).tolist()
    assert welch_p(first, second) == pytest.approx(welch_from_the_formula(first, second),
                                                   rel=1e-3)


def test_the_verdict_names_a_winner_only_beyond_noise() -> None:
    apart = decide({"a": [0.97, 0.975, 0.972], "b": [0.90, 0.91, 0.905]}, True)
    assert apart.winner == "a" and apart.tied == ["a"] and apart.p_values["b"] < 0.05
    close = decide({"a": [0.976, 0.97, 0.982], "b": [0.975, 0.985, 0.966],
                    "c": [0.5, 0.51, 0.49]}, True)
    assert close.winner is None and close.tied[0] == "a" and set(close.tied) == {"a", "b"}
    assert "noise" in close.reason
    one_seed = decide({"a": [0.9], "b": [0.8]}, True)
    assert one_seed.winner is None and "one seed" in one_seed.reason
    lower = decide({"a": [3.0, 3.1], "b": [2.0, 2.1]}, higher_is_better=False)
    assert lower.winner == "b"
    same = decide({"a": [60.0, 60.0], "b": [60.0, 60.0]}, higher_is_better=False)
    assert same.winner is None  # quantised steps to target, no spread, equal: a tie


def test_two_identical_specs_are_a_tie_and_said_to_be_alike(tmp_path: Path) -> None:
    status = cli.main(["compare", "--task", "ravine", "--steps", "40", "--seeds", "3",
                       "--optimizers", "momentum", "momentum:dampening=0", "sgd:lr=0.001",
                       "--no-progress", "--out", str(tmp_path)])
    assert status == 0
    folder = only_folder(tmp_path)
    summary = read_summary(folder)
    assert summary["winner"] is None
    assert summary["verdict"]["tied"] == ["momentum", "momentum:dampening=0"]
    assert summary["verdict"]["p_values"]["sgd:lr=0.001"] < 0.05
    assert [(p["first"], p["second"]) for p in summary["alike"]] == [
        ("momentum", "momentum:dampening=0")]
    text = read_report(folder).text
    assert "no winner — momentum (" in text and "ran practically the same" in text


def test_a_winner_beyond_noise_is_named(tmp_path: Path) -> None:
    results = compare("ravine", ["momentum", "sgd:lr=0.001"], steps=40, seeds=3,
                      progress=False)
    assert results.verdict().winner == "momentum"
    assert results.alike() == []
    folder = optimlab.lab.write_report(results, tmp_path)
    summary = read_summary(folder)
    assert summary["winner"] == "momentum"
    assert "better than every other beyond the seeds' noise" in read_report(folder).text


def test_summary_json_and_the_report_show_the_resolved_hyperparameters(tmp_path: Path) -> None:
    results = compare("digits-mlp", ["adam", "adamw", "adamw:schedule=cosine,warmup=2"],
                      steps=4, seeds=1, progress=False)
    folder = optimlab.lab.write_report(results, tmp_path)
    resolved = read_summary(folder)["hyperparameters"]
    assert resolved["adam"]["weight_decay"] == 0 and resolved["adam"]["lr"] == 3e-3
    assert resolved["adamw"]["weight_decay"] == 0.01
    assert resolved["adamw"]["betas"] == [0.9, 0.999] and resolved["adamw"]["eps"] == 1e-8
    assert resolved["adamw"]["weight_decay_form"] == "decoupled"
    assert resolved["adamw"]["schedule"] == "constant"
    assert resolved["adamw:schedule=cosine,warmup=2"]["schedule"] == "cosine"
    assert resolved["adamw:schedule=cosine,warmup=2"]["warmup"] == 2
    report = read_report(folder)
    hyper = {row[0]: row[2] for row in report.tables[1][1:]}
    assert "weight_decay=0.01" in hyper["adamw"] and "weight_decay=0," in hyper["adam"]
    assert read_summary(folder)["winner"] is None  # one seed: no winner to name
