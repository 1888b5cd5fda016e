"""Tasks and the runner: each task learns, a seed fixes a run, divergence is recorded, and
a user's own model and data run through the same machinery."""

from __future__ import annotations

import math

import pytest
import torch

import optimlab.lab
from optimlab.lab import compare
from optimlab.lab.inputs.specs import parse_spec
from optimlab.lab.running import runner
from optimlab.lab.running.records import DIVERGED, FINISHED, INTERRUPTED
from optimlab.lab.running.runner import Settings, run_all, train
from optimlab.lab.workloads.tasks import TASKS, get_task

# (task, optimizer, steps): short runs, long enough to learn something
LEARNING = {"digits-mlp": ("adam", 60), "digits-cnn": ("adam", 60),
            "sparse-features": ("adagrad", 150), "char-transformer": ("adamw", 25),
            "ravine": ("momentum", 40), "rosenbrock": ("adam", 40),
            "mnist1d-mlp": ("adam", 60), "fashion-mlp": ("adam", 40),
            "char-transformer-long": ("adamw", 25)}


def short(task_name: str, steps: int, **options) -> Settings:
    task = get_task(task_name)
    return Settings(steps=steps, batch_size=task.batch_size, training=task.training,
                    eval_points=options.pop("eval_points", 2), **options)


def test_every_task_is_covered() -> None:
    assert set(LEARNING) == set(TASKS)


@pytest.mark.parametrize("name", list(LEARNING))
def test_each_task_learns(name: str) -> None:
    optimizer, steps = LEARNING[name]
    task = get_task(name)
    if task.unavailable():
        pytest.skip(task.unavailable())
    run = train(task, parse_spec(optimizer), seed=0, settings=short(name, steps))
    assert run.status == FINISHED and run.steps_done == steps
    losses = run.series("train_loss")[2]
    last_quarter = losses[-max(1, len(losses) // 4):]  # minibatch losses are noisy
    assert sum(last_quarter) / len(last_quarter) < 0.8 * losses[0], losses
    headline = run.series(task.headline.key)[2]
    better = headline[-1] > headline[0] if task.headline.higher_is_better else (
        headline[-1] < headline[0])
    assert better, headline


def test_digits_accuracy_is_well_above_chance_after_a_short_run() -> None:
    task = get_task("digits-mlp")
    run = train(task, parse_spec("adam"), seed=1, settings=short("digits-mlp", 100))
    assert run.last("heldout_accuracy") > 0.8  # chance: 0.1


def records_without_time(run) -> list[tuple]:
    return [(r.step, r.metric, r.value) for r in run.records]


@pytest.mark.parametrize("name", ["digits-mlp", "sparse-features", "char-transformer"])
def test_a_seed_fixes_the_run(name: str) -> None:
    task, spec = get_task(name), parse_spec(task_optimizer := TASKS[name].optimizers[-1])
    settings = short(name, 8)
    first, again = (train(task, spec, 3, settings) for _ in range(2))
    other = train(task, spec, 4, settings)
    assert records_without_time(first) == records_without_time(again), task_optimizer
    assert records_without_time(first) != records_without_time(other)


def test_a_diverging_run_is_recorded_at_its_step_and_the_others_go_on() -> None:
    task = get_task("digits-mlp")
    specs = [parse_spec("sgd:lr=1e5"), parse_spec("adam")]
    results = run_all(task, specs, short("digits-mlp", 30, seeds=(0,)), progress=False)
    diverged, fine = results.runs
    assert diverged.status == DIVERGED and 1 <= diverged.diverged_at < 30
    assert diverged.steps_done == diverged.diverged_at
    assert not math.isfinite(diverged.records[-1].value)
    assert fine.status == FINISHED and fine.steps_done == 30
    rows = {row.optimizer: row for row in results.summary()}
    assert rows["sgd:lr=100000"].diverged == [(0, diverged.diverged_at)]
    assert rows["sgd:lr=100000"].final_mean is None and rows["adam"].final_mean > 0.3


def test_an_optimizer_refusing_a_non_finite_gradient_ends_its_run_as_diverged() -> None:
    task = get_task("digits-mlp")
    run = train(task, parse_spec("sgd:lr=1e5,nonfinite=raise"), 0, short("digits-mlp", 30))
    assert run.status == DIVERGED and run.steps_done == run.diverged_at < 30
    last = {r.metric: r.value for r in run.records if r.step == run.diverged_at}
    assert math.isfinite(last["train_loss"]) and not math.isfinite(last["grad_norm"])


def test_ctrl_c_keeps_the_runs_that_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_train = runner.train

    def interrupted_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner, "train", interrupted_second)
    task = get_task("ravine")
    results = run_all(task, [parse_spec("sgd"), parse_spec("adam")],
                      short("ravine", 5, seeds=(0,)), progress=False)
    assert results.interrupted and [run.optimizer for run in results.runs] == ["sgd"]
    assert INTERRUPTED not in {run.status for run in results.runs}


def test_epochs_become_steps_over_the_training_set() -> None:
    task = get_task("digits-mlp")
    per_epoch = task.epoch_steps(64)
    assert per_epoch == 1347 // 64  # 75% of 1,797 digits, full batches of 64
    assert task.steps_for_epochs(2, 64) == 2 * per_epoch
    with pytest.raises(ValueError, match="has no epochs"):
        get_task("ravine").steps_for_epochs(1, 1)


def blobs(gen: torch.Generator, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian clusters in 5-D: an easy problem any optimizer learns."""
    targets = torch.randint(0, 3, (count,), generator=gen)
    centres = torch.tensor([[2.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0], [0, 0, 2.0, 0, 0]])
    return centres[targets] + 0.5 * torch.randn(count, 5, generator=gen), targets


def test_your_own_model_and_tensors(gen: torch.Generator, tmp_path) -> None:
    results = compare("blobs", ["momentum:lr=0.05", "adam:lr=0.01"],
                      model=lambda: torch.nn.Linear(5, 3),
                      data=blobs(gen, 256), heldout=blobs(gen, 128), steps=40, seeds=2,
                      batch_size=32, progress=False)
    assert {run.optimizer for run in results.runs} == {"momentum:lr=0.05", "adam:lr=0.01"}
    assert all(run.last("heldout_accuracy") > 0.8 for run in results.runs)
    folder = optimlab.lab.write_report(results, tmp_path)
    assert (folder / "report.html").is_file() and folder.name.endswith("-blobs")


def test_your_own_model_and_a_dataloader(gen: torch.Generator) -> None:
    inputs, targets = blobs(gen, 192)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets),
                                         batch_size=32, shuffle=True)
    results = compare("blobs-loader", ["adam:lr=0.01"], model=lambda: torch.nn.Linear(5, 3),
                      data=loader, steps=20, seeds=1, progress=False)
    run = results.runs[0]
    assert run.status == FINISHED and run.steps_done == 20
    assert run.last("train_set_accuracy") > run.series("train_set_accuracy")[2][0]


def test_bad_input_to_compare_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'digits'.*digits-mlp"):
        compare("digits", ["adam"])
    with pytest.raises(ValueError, match="given twice: adam"):
        compare("ravine", ["adam", "adam"])
    with pytest.raises(ValueError, match="data is not"):
        compare("mine", ["adam"], model=lambda: torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="warmup"):
        compare("ravine", ["adam"], steps=10, warmup=50)
