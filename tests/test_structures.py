"""Every structure a rule can declare (rules.Rule.structure) on every engine: which engines
decline it, with their reason (the generated engine takes elementwise rules only; the
compiled engine takes any, the others with a call per tensor), and that every engine, auto
included, still steps it to the reference engine's numbers, for groups small and large.
Toy rules stand for each structure (normalised SGD per tensor, a matmul per matrix, a clip
over the whole optimizer), so the test does not depend on which optimizers the registry
holds."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import optimlab
from optimlab import engines
from optimlab.hyperparameters import Range
from optimlab.optimizers.common import COMMON_SPECS, TORCH_RUN_OPTIONS
from optimlab.rules import ELEMENTWISE, GLOBAL, MATRIX, PER_TENSOR, Rule, no_scalars

SMALL = [(3,), (4, 5), (2, 3, 4)] * 13 + [(7,)]  # 40 tensors, as in the probe
LARGE = [(300, 300), (5,)]  # one above the compiled engine's bucket size


def _scaled(param: Tensor, grad: Tensor, state, hp):
    """θ ← θ − η g (1 + |g|)/2: elementwise."""
    return param - hp["lr"] * grad * (1 + grad.abs()) / 2, state


def _normalized(param: Tensor, grad: Tensor, state, hp):
    """θ ← θ − η g/‖g‖: per tensor (a compiled engine that joined the tensors would divide
    by the norm of them all: 0.0075 off after 3 steps on 40 tensors)."""
    return param - hp["lr"] * grad / grad.norm().clamp_min(1e-12), state


def _orthogonalish(param: Tensor, grad: Tensor, state, hp):
    """θ ← θ − η G Gᵀ G / ‖G‖³ on a matrix view (a matmul: a flat bucket has no shape)."""
    matrix = grad.reshape(grad.shape[0], -1) if grad.dim() > 1 else grad.reshape(1, -1)
    cubed = matrix @ matrix.T @ matrix / matrix.norm().clamp_min(1e-12) ** 3
    return param - hp["lr"] * cubed.reshape(grad.shape), state


def _clipped(param: Tensor, grad: Tensor, state, hp):
    """θ ← θ − η g / c, c = max(1, ‖G‖) over the whole optimizer."""
    return param - hp["lr"] * grad / hp["clip"], state


def _clip(defaults, grads) -> dict:
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    return {"clip": float(total.clamp(min=1.0))}


def _toy(name: str, update, structure: str, **extra) -> type[optimlab.Optimizer]:
    rule = Rule(name, update, numbers=("lr", "weight_decay"), options=("maximize",
                "weight_decay_form"), step_scalars=no_scalars, step_numbers=(),
                state_keys=lambda hp: (), counts_steps=False, structure=structure, **extra)

    class Toy(optimlab.Optimizer):
        specs = {**COMMON_SPECS, "lr": Range(0.0)}
        presets = {"torch": {**TORCH_RUN_OPTIONS, "lr": 0.1, "weight_decay": 0.0}}

        def __init__(self, params, engine: str = "auto") -> None:
            super().__init__(params, {}, engine=engine)

    Toy.rule = rule
    Toy.__name__ = f"Toy{structure.title().replace('-', '')}"
    return Toy


TOYS = {ELEMENTWISE: _toy("scaled", _scaled, ELEMENTWISE),
        PER_TENSOR: _toy("normalized", _normalized, PER_TENSOR),
        MATRIX: _toy("orthogonalish", _orthogonalish, MATRIX),
        GLOBAL: _toy("clipped", _clipped, GLOBAL, global_scalars=_clip)}


def _run(cls, engine: str, shapes, seed: int) -> tuple[list[Tensor], optimlab.Optimizer]:
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    optimizer = cls(params, engine=engine)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen) * 3
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("shapes", [SMALL, LARGE], ids=["40-small", "large"])
@pytest.mark.parametrize("engine", [e for e in engines.ENGINES if e != "reference"])
@pytest.mark.parametrize("structure", list(TOYS))
def test_every_structure_on_every_engine(structure: str, engine: str, shapes, seed) -> None:
    if engine == "compiled" and structure == ELEMENTWISE and shapes is SMALL:
        pytest.skip("compiles a kernel (seconds); the large group compiles the same rule")
    expected, _ = _run(TOYS[structure], "reference", shapes, seed)
    params, optimizer = _run(TOYS[structure], engine, shapes, seed)
    for p, q in zip(params, expected, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
    declined = optimizer.declined()
    # a call per tensor for a rule not elementwise; a matrix rule stays on the reference
    # engine (Inductor's fused bf16 matmuls round otherwise: engines/inductor.py)
    compiles = structure != MATRIX
    if engine == "compiled":
        assert ("compiled" not in declined) == compiles
    if structure == ELEMENTWISE:
        assert "generated" not in declined
    else:
        # auto compiles groups of 2^20 elements or 100 tensors only (these are smaller)
        assert optimizer.engines_used() == {
            "compiled" if engine == "compiled" and compiles else "reference": len(shapes)}
        if "generated" in engines.CHAINS[engine]:
            assert structure in declined["generated"] and "elementwise" in declined["generated"]
    if engine == "native" or "native" in declined:  # auto reaches it only for what is left
        assert "no fused kernel" in declined["native"]


@pytest.mark.parametrize("structure", [ELEMENTWISE, PER_TENSOR])
def test_a_rule_dynamo_cannot_trace_falls_through_with_the_reason(structure: str,
                                                                  seed) -> None:
    """A rule that Dynamo refuses (a branch on a tensor's value, which fullgraph cannot
    capture; the C tracer refuses it too), elementwise (one call over a bucket) or not (a
    call per tensor), is stepped by the reference engine, and the reason is kept; nothing
    escapes the fallback and nothing is stepped twice."""
    def branches_on_data(param, grad, state, hp):
        if bool(grad.sum() > 0):
            return param - hp["lr"] * grad, state
        return param + hp["lr"] * grad, state

    cls = _toy("branches_on_data", branches_on_data, structure, **(
        {"global_scalars": _clip} if structure == GLOBAL else {}))
    expected, _ = _run(cls, "reference", LARGE, seed)
    params, optimizer = _run(cls, "compiled", LARGE, seed)
    for p, q in zip(params, expected, strict=True):
        torch.testing.assert_close(p, q)
    assert optimizer.engines_used() == {"reference": 2}
    assert "torch.compile failed" in optimizer.declined()["compiled"]
