"""optimlab with preset="keras" against Keras 3 itself (on its PyTorch backend, in fp64):
same problem, same gradients, same lr schedule, 60 steps, every step within 1e-10.

Keras is an optional peer: ``pip install optimlab[conformance]``. Without it these tests
skip, saying so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from conformance import Problem, assert_conforms, gradients, make_problem


@pytest.fixture(scope="module")
def keras() -> Any:
    """Keras on its PyTorch backend, imported by the first test that needs it (importing
    it costs ~4 s, which a worker that runs none of these tests need not pay)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # read when keras is first imported
    module = pytest.importorskip(
        "keras", minversion="3.0",
        reason="Keras 3 is not installed (pip install 'optimlab[conformance]')")
    if module.backend.backend() != "torch":
        pytest.skip(f"keras was imported with the {module.backend.backend()!r} backend "
                    "before these tests could choose 'torch'")
    return module


@dataclass(frozen=True)
class KerasCase:
    name: str  # the class, in optimlab (and in keras.optimizers, unless keras_name says)
    theirs: dict[str, Any]  # keras.optimizers.<name>(learning_rate=<schedule>, **theirs)
    ours: dict[str, Any] = field(default_factory=dict)  # optimlab.<name>(preset="keras", ...)
    peak_lr: float = 0.01
    torch_differs: bool = True  # preset="torch" with the same keywords misses Keras
    keras_name: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.theirs.items())})"


CASES = [
    KerasCase("SGD", {"momentum": 0.9}, {"momentum": 0.9}, peak_lr=0.05),
    KerasCase("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05},
              {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05}, peak_lr=0.05),
    KerasCase("Adagrad", {}, peak_lr=0.1),
    KerasCase("Adagrad", {"initial_accumulator_value": 0.5, "epsilon": 1e-2,
                          "weight_decay": 0.05},
              {"initial_accumulator_value": 0.5, "eps": 1e-2, "weight_decay": 0.05},
              peak_lr=0.1),
    KerasCase("RMSprop", {}),
    KerasCase("RMSprop", {"centered": True, "epsilon": 1e-3},
              {"centered": True, "eps": 1e-3}),
    KerasCase("RMSprop", {"momentum": 0.9, "rho": 0.95, "weight_decay": 0.05},
              {"momentum": 0.9, "alpha": 0.95, "weight_decay": 0.05}),
    KerasCase("RMSprop", {"momentum": 0.5, "centered": True},
              {"momentum": 0.5, "centered": True}),
    KerasCase("Adam", {}),
    KerasCase("Adam", {"epsilon": 0.1, "beta_2": 0.99, "weight_decay": 0.05},
              {"eps": 0.1, "betas": (0.9, 0.99), "weight_decay": 0.05}),
    KerasCase("Adam", {"amsgrad": True, "epsilon": 0.1}, {"amsgrad": True, "eps": 0.1}),
    KerasCase("AdamW", {}),
    KerasCase("AdamW", {"weight_decay": 0.1, "epsilon": 0.05, "beta_1": 0.8},
              {"weight_decay": 0.1, "eps": 0.05, "betas": (0.8, 0.999)}),
    KerasCase("NAdam", {}, keras_name="Nadam"),
    KerasCase("NAdam", {"epsilon": 0.05, "beta_1": 0.8, "weight_decay": 0.05},
              {"eps": 0.05, "betas": (0.8, 0.999), "weight_decay": 0.05}, keras_name="Nadam"),
    KerasCase("Adamax", {}, torch_differs=False),  # ε = 1e-7 is too small to tell apart
    KerasCase("Adamax", {"epsilon": 0.05, "beta_2": 0.9, "weight_decay": 0.05},
              {"eps": 0.05, "betas": (0.9, 0.9), "weight_decay": 0.05}),
    KerasCase("Adadelta", {}, peak_lr=1.0),
    KerasCase("Adadelta", {"rho": 0.9, "epsilon": 1e-3, "weight_decay": 0.05},
              {"rho": 0.9, "eps": 1e-3, "weight_decay": 0.05}, peak_lr=1.0),
]


@pytest.fixture(autouse=True)
def keras_in_float64(keras: Any):
    """Keras's lr and its optimizer variables in fp64 for this test, as before after."""
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)


def listed_schedule(keras: Any, lrs: list[float]) -> Any:
    """The problem's lrs as a Keras schedule: Keras asks it for the lr of each step."""

    class ListedSchedule(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> float:
            return lrs[int(step)]

    return ListedSchedule()


def run_keras(keras: Any, problem: Problem, case: KerasCase) -> list[list[torch.Tensor]]:
    variables = [keras.Variable(p.clone(), dtype="float64") for p in problem.start]
    optimizer = getattr(keras.optimizers, case.keras_name or case.name)(
        learning_rate=listed_schedule(keras, problem.lrs), **case.theirs)
    trajectory = []
    for step in range(len(problem.lrs)):
        params = [v.value for v in variables]
        optimizer.apply(gradients(problem, step, params), variables)
        trajectory.append([v.value.detach().clone() for v in variables])
    return trajectory


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_preset_keras_follows_keras(case: KerasCase, seed: int, keras: Any) -> None:
    problem = make_problem(seed, case.peak_lr)
    theirs = run_keras(keras, problem, case)
    assert theirs[-1][0].dtype == torch.float64
    # Keras keeps NAdam's Π_t in floatx (fp64 here), torch its mu_product in the default
    # dtype: fp64 too for the comparison
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert_conforms(problem, case.name, {"preset": "keras", **case.ours}, theirs,
                        torch_differs=case.torch_differs)
    finally:
        torch.set_default_dtype(previous)
