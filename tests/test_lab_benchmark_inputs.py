"""What the benchmark is given: bad arguments are refused in one line naming them, a task
whose data is not installed is left out with the command that installs it, and every
registry entry — one added later included — has a search space."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from optimlab import registry
from optimlab.lab.commands import cli
from optimlab.lab.commands.benchmark import make_setup, resolve_tasks
from optimlab.lab.inputs.specs import parse_spec
from optimlab.lab.running.benchmark import space_of, trial_spec
from optimlab.lab.running.trials import sobol_points
from optimlab.lab.workloads import more_data
from optimlab.lab.workloads.tasks import get_task


@pytest.mark.parametrize(("arguments", "message"), [
    (["--trials", "0"], "argument --trials: 0 is invalid; valid: an integer >= 1"),
    (["--studies", "-1"], "argument --studies: -1 is invalid; valid: an integer >= 1"),
    (["--workers", "0"], "argument --workers: 0 is invalid; valid: an integer >= 1"),
    (["--tasks", "mnist"], "unknown task 'mnist' (did you mean 'mnist1d-mlp'?)"),
    (["--tune", "beta9"], "--tune beta9: not in the optimizers' search spaces; valid: "),
    (["--optimizers", "no-such-optimizer"], "unknown optimizer 'no-such-optimizer'"),
    (["--tasks", "digits-mlp", "digits-mlp"], "--tasks: given twice: digits-mlp"),
])
def test_bad_input_is_one_line_naming_it(arguments: list[str], message: str, capsys,
                                         tmp_path: Path) -> None:
    try:
        status = cli.main(["benchmark", *arguments, "--out", str(tmp_path)])
    except SystemExit as exit_:  # argparse's own refusals
        status = exit_.code
    assert status == 2
    captured = capsys.readouterr()
    assert message in captured.err.strip().splitlines()[-1]  # after argparse.s usage
    assert not list(tmp_path.glob("*.journal"))  # nothing planned, nothing trained


def test_missing_fashion_mnist_is_left_out_with_the_command(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(more_data, "FASHION_MNIST", tmp_path / "nowhere")
    reason = get_task("fashion-mlp").unavailable()
    assert "apt-get install dataset-fashion-mnist" in reason
    usable, missing = resolve_tasks(["digits-mlp", "fashion-mlp"])
    assert usable == ["digits-mlp"] and missing == {"fashion-mlp": reason}
    with pytest.raises(ValueError, match="no task can run here"):
        resolve_tasks(["fashion-mlp"])


def test_every_registry_entry_has_a_search_space() -> None:
    for name, entry in registry.OPTIMIZERS.items():
        keys = [dim.key for dim in entry.search_space]
        assert keys[0] == "lr" and "warmup" in keys, name
        lr = entry.search_space[0]
        assert lr.log and lr.low < entry.default_lr < lr.high
    assert "momentum" in [d.key for d in registry.get("momentum").search_space]
    assert "momentum" not in [d.key for d in registry.get("sgd").search_space]
    assert "betas[0]" in [d.key for d in registry.get("adam").search_space]


def test_an_entry_added_later_is_tunable_with_no_more_code() -> None:
    entry = registry.Entry("heavy", registry.get("momentum").cls, {"momentum": 0.95},
                           "SGD with momentum 0.95", 0.02)
    keys = [dim.key for dim in entry.search_space]
    assert keys == ["lr", "weight_decay", "momentum", "warmup"]
    assert entry.search_space[0].low == pytest.approx(0.02 / 10)


def test_a_trial_spec_carries_its_point(seed: int) -> None:
    spec = parse_spec("adam:eps=1e-6")
    space = space_of(spec)
    (point,) = sobol_points(space, 1, seed=seed % 1000)
    built = trial_spec(spec, space, point)
    assert built.overrides["eps"] == 1e-6
    assert built.overrides["lr"] == point["lr"]
    assert built.overrides["betas"] == (pytest.approx(1 - point["betas[0]"]), 0.999)
    assert built.training["warmup"] == point["warmup"]
    optimizer = built.build([torch.nn.Parameter(torch.zeros(2))])
    assert math.isclose(optimizer.defaults["weight_decay"], point["weight_decay"])
    # keys a spec sets are not tuned; one-shot runs take the registry's default lr
    assert "betas[0]" not in [d.key for d in space_of(parse_spec("adam:betas=0.9/0.95"))]
    assert trial_spec(spec, (), {}).overrides["lr"] == registry.get("adam").default_lr


def test_points_are_the_same_sequence_for_every_worker() -> None:
    space = space_of(parse_spec("momentum"))
    assert sobol_points(space, 5, seed=1) == sobol_points(space, 5, seed=1)
    assert sobol_points(space, 3, seed=1) == sobol_points(space, 5, seed=1)[:3]
    assert sobol_points(space, 5, seed=1) != sobol_points(space, 5, seed=2)
    setup, _ = make_setup(["digits-mlp"], ["sgd"], trials=2, studies=1, storage="x.journal")
    assert setup.storage == "x.journal"
