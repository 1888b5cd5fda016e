"""Fair speed in the lab: the warm-up is left out of the timed runs, the optimizer's step is
timed apart from forward and backward, the engine is recorded, torch's threads are set for
training and restored. Time is a fake clock here: nothing depends on this machine's speed."""

from __future__ import annotations

import pytest
import torch

from optimlab.lab import compare
from optimlab.lab.commands.api import resolve_settings, resolve_task
from optimlab.lab.inputs.specs import spec_of_class
from optimlab.lab.running import runner

SLOW = 1000.0  # fake seconds that the first step of the process costs


class FakeClock:
    """``time.perf_counter`` that moves 1 ms per reading, plus what a test adds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-3
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(runner.time, "perf_counter", fake)
    return fake


def slow_first_step(clock: FakeClock) -> type[torch.optim.Optimizer]:
    """An SGD whose first step in the process costs ``SLOW`` seconds (a one-time cost),
    reporting which engine stepped its tensors, as optimlab's optimizers will."""
    first = [True]

    class SlowFirstSGD(torch.optim.SGD):
        def step(self, closure=None):
            if first[0]:
                first[0] = False
                clock.now += SLOW
            return super().step(closure)

        def engines_used(self) -> dict[str, int]:
            return {"native": sum(len(group["params"]) for group in self.param_groups)}

    return SlowFirstSGD


def blobs(count: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 3, (count,), generator=generator)
    return torch.eye(3)[targets] + 0.3 * torch.randn(count, 3, generator=generator), targets


def run_slow(clock: FakeClock, untimed_steps: int = 5):
    task = resolve_task("blobs", model=lambda: torch.nn.Linear(3, 3), data=blobs())
    settings = resolve_settings(task, steps=4, seeds=2, batch_size=16,
                                untimed_steps=untimed_steps)
    spec = spec_of_class(slow_first_step(clock), lr=0.1)
    return runner.run_all(task, [spec], settings, progress=False)


def test_the_warm_up_is_left_out_of_every_timed_run(clock: FakeClock) -> None:
    results = run_slow(clock)
    assert clock.now > SLOW  # the slow step happened: in the warm-up
    for run in results.runs:
        assert run.train_time < 1.0 and run.step_time < 1.0, run


def test_without_a_warm_up_the_first_run_pays_the_one_time_cost(clock: FakeClock) -> None:
    first, second = run_slow(clock, untimed_steps=0).runs
    assert first.step_time >= SLOW and first.train_time >= first.step_time
    assert second.train_time < 1.0


def test_the_step_is_timed_apart_and_the_engine_recorded(clock: FakeClock) -> None:
    results = run_slow(clock)
    row = results.summary()[0]
    for run in results.runs:
        assert 0 < run.step_time < run.train_time
        assert run.engines == {"native": 2} and run.engine == "native"
        assert run.to_dict()["optimizer_step_ms"] == pytest.approx(1e3 * run.step_time / 4)
    assert row.engine == "native" and row.step_ms is not None and 0 < row.step_share < 1
    assert row.steps_per_second_std is not None  # a spread over the two seeds


def test_an_optimizer_that_does_not_say_records_the_engine_asked_for() -> None:
    results = compare("ravine", ["adam:engine=reference", torch.optim.SGD], steps=2, seeds=1,
                      progress=False)
    adam, sgd = results.runs
    if adam.engines is None:  # optimlab's optimizers do not say yet
        assert adam.engine == "reference (requested)"
    else:
        assert adam.engine == "reference"
    assert sgd.optimizer == "torch.optim.SGD" and sgd.engine == "torch.optim"


def test_training_runs_on_the_threads_asked_for_and_restores_them() -> None:
    seen: list[int] = []

    class Recording(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(torch.get_num_threads())
            return super().step(closure)

    before = torch.get_num_threads()
    compare("ravine", [Recording], steps=2, seeds=1, progress=False, threads=1)
    assert set(seen) == {1} and torch.get_num_threads() == before
