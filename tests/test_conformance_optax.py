"""optimlab with preset="optax" against optax itself (JAX on the CPU, in fp64 through
jax_enable_x64): same problem, same gradients, same lr schedule, 60 steps, every step
within 1e-10.

optax is an optional peer: ``pip install optimlab[conformance]``. Without it these tests
skip, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from conformance import Problem, assert_conforms, gradients, make_problem


@pytest.fixture(scope="module")
def optax() -> Any:
    """optax on JAX's CPU backend in fp64, imported by the first test that needs it
    (JAX's import costs seconds that a worker running none of these tests need not pay)."""
    jax = pytest.importorskip(
        "jax", reason="JAX is not installed (pip install 'optimlab[conformance]')")
    pytest.importorskip("numpy", reason="NumPy is not installed (JAX needs it)")
    module = pytest.importorskip(
        "optax", reason="optax is not installed (pip install 'optimlab[conformance]')")
    jax.config.update("jax_enable_x64", True)  # fp64 arrays: compare at 1e-10
    jax.config.update("jax_platforms", "cpu")
    return module


@dataclass(frozen=True)
class OptaxCase:
    optax_name: str  # optax.<optax_name>(learning_rate=<schedule>, **theirs)
    name: str  # optimlab.<name>(preset="optax", **ours)
    theirs: dict[str, Any] = field(default_factory=dict)
    ours: dict[str, Any] = field(default_factory=dict)
    peak_lr: float = 0.01
    torch_differs: bool = True  # preset="torch" with the same keywords misses optax

    @property
    def id(self) -> str:
        return f"{self.optax_name}({', '.join(f'{k}={v}' for k, v in self.theirs.items())})"


CASES = [
    # optax.sgd is torch's heavy ball (trace, then the lr): the torch preset matches too
    OptaxCase("sgd", "SGD", peak_lr=0.05, torch_differs=False),
    OptaxCase("sgd", "SGD", {"momentum": 0.9}, {"momentum": 0.9}, peak_lr=0.05,
              torch_differs=False),
    OptaxCase("sgd", "SGD", {"momentum": 0.9, "nesterov": True},
              {"momentum": 0.9, "nesterov": True}, peak_lr=0.05, torch_differs=False),
    OptaxCase("adagrad", "Adagrad", peak_lr=0.1),
    OptaxCase("adagrad", "Adagrad", {"initial_accumulator_value": 0.5, "eps": 1e-2},
              {"initial_accumulator_value": 0.5, "eps": 1e-2}, peak_lr=0.1),
    OptaxCase("rmsprop", "RMSprop"),
    OptaxCase("rmsprop", "RMSprop", {"eps": 1e-3}, {"eps": 1e-3}),
    OptaxCase("rmsprop", "RMSprop", {"eps": 1e-3, "eps_in_sqrt": False},
              {"eps": 1e-3, "eps_placement": "outside"}),
    OptaxCase("rmsprop", "RMSprop", {"centered": True, "eps": 1e-3},
              {"centered": True, "eps": 1e-3}),
    OptaxCase("rmsprop", "RMSprop", {"momentum": 0.9, "decay": 0.95},
              {"momentum": 0.9, "alpha": 0.95}),
    OptaxCase("rmsprop", "RMSprop", {"momentum": 0.5, "centered": True, "eps_in_sqrt": False},
              {"momentum": 0.5, "centered": True, "eps_placement": "outside"}),
    # optax.adam is torch's Adam equation (eps_root is a plain keyword): the torch preset
    # matches too
    OptaxCase("adam", "Adam", torch_differs=False),
    OptaxCase("adam", "Adam", {"eps_root": 1e-3, "eps": 1e-3, "b2": 0.99},
              {"eps_root": 1e-3, "eps": 1e-3, "betas": (0.9, 0.99)}, torch_differs=False),
    OptaxCase("adamw", "AdamW"),  # weight_decay 1e-4 (torch's AdamW: 1e-2)
    OptaxCase("adamw", "AdamW", {"weight_decay": 0.1, "b1": 0.8, "eps_root": 1e-4},
              {"weight_decay": 0.1, "betas": (0.8, 0.999), "eps_root": 1e-4},
              torch_differs=False),
    # Lion and LAMB have no torch twin: preset="torch" means timm's defaults
    OptaxCase("lion", "Lion", peak_lr=0.003),  # weight_decay 1e-3 (timm's: 0)
    OptaxCase("lion", "Lion", {"b1": 0.8, "weight_decay": 0.1},
              {"betas": (0.8, 0.99), "weight_decay": 0.1}, peak_lr=0.003, torch_differs=False),
    OptaxCase("lamb", "Lamb"),  # no global clip, trust ratio always, weight_decay 0
    OptaxCase("lamb", "Lamb", {"weight_decay": 0.1, "b2": 0.99, "eps": 1e-4},
              {"weight_decay": 0.1, "betas": (0.9, 0.99), "eps": 1e-4}),
    # optax.nadam is adam(nesterov=True): NAdam with a constant μ_t = β₁
    OptaxCase("nadam", "NAdam"),
    OptaxCase("nadam", "NAdam", {"b1": 0.8, "eps": 1e-3}, {"betas": (0.8, 0.999), "eps": 1e-3}),
    # optax.radam adds ε to √v̂, torch to √v before the bias correction
    OptaxCase("radam", "RAdam", {"eps": 1e-3}, {"eps": 1e-3}),
    OptaxCase("radam", "RAdam", {"b2": 0.9, "eps": 1e-2}, {"betas": (0.9, 0.9), "eps": 1e-2}),
    # optax.adamax and optax.adadelta are torch's equations
    OptaxCase("adamax", "Adamax", {"eps": 1e-3}, {"eps": 1e-3}, torch_differs=False),
    OptaxCase("adadelta", "Adadelta", {"rho": 0.95, "eps": 1e-4}, {"rho": 0.95, "eps": 1e-4},
              peak_lr=1.0, torch_differs=False),
]


def _to_torch(array: Any) -> torch.Tensor:
    import numpy as np  # installed with JAX (the optax fixture checks)

    return torch.from_numpy(np.array(array))


def run_optax(optax: Any, problem: Problem, case: OptaxCase) -> list[list[torch.Tensor]]:
    import jax.numpy as jnp  # imported by the optax fixture

    lrs = jnp.asarray(problem.lrs, dtype=jnp.float64)
    optimizer = getattr(optax, case.optax_name)(learning_rate=lambda count: lrs[count],
                                                **case.theirs)
    params = [jnp.asarray(p.numpy()) for p in problem.start]
    state = optimizer.init(params)
    trajectory = []
    for step in range(len(problem.lrs)):
        grads = gradients(problem, step, [_to_torch(p) for p in params])
        updates, state = optimizer.update([jnp.asarray(g.numpy()) for g in grads], state,
                                          params)
        params = optax.apply_updates(params, updates)
        trajectory.append([_to_torch(p) for p in params])
    return trajectory


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_preset_optax_follows_optax(case: OptaxCase, seed: int, optax: Any) -> None:
    problem = make_problem(seed, case.peak_lr)
    theirs = run_optax(optax, problem, case)
    assert theirs[-1][0].dtype == torch.float64
    assert_conforms(problem, case.name, {"preset": "optax", **case.ours}, theirs,
                    torch_differs=case.torch_differs)
