"""The compiled engine's call per tensor (engines/inductor_tensors.py) for a rule that is
not elementwise, LAMB here (global clip, per-tensor trust ratio): the reference engine's
numbers within rounding, two param groups, fp32 and fp64, bf16 moments; a schedule and a
changed weight decay compile nothing more; state dicts both ways between engines. (The
toy per-tensor, matrix and global rules on every engine: test_structures.py.)"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import optimlab
from optimlab.engines import inductor

pytestmark = pytest.mark.skipif(not inductor.available(torch.device("cpu")),
                                reason="torch.compile has no C++ compiler here")

# 2-D tensors above 4,096 elements (Inductor picks its reduction by size: one kernel for
# all of them; bf16 moments apply from 4,096 elements) and vectors
SHAPES = [(72, 64), (64,), (80, 96), (96,)]


def _params(dtype: torch.dtype, seed: int, shapes=SHAPES) -> list[Tensor]:
    # nn.Parameter, as in a model: Dynamo would compile one for its exact shape
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in shapes]


def _train(engine: str, params: list[Tensor], seed: int, steps: int = 3,
           optimizer: optimlab.Lamb | None = None, **kwargs) -> optimlab.Lamb:
    """Two groups (their own lr and decay); gradients large enough that a clip at 1 bites."""
    if optimizer is None:
        optimizer = optimlab.Lamb([{"params": params[:2]},
                                   {"params": params[2:], "lr": 3e-3, "weight_decay": 0.1}],
                                  engine=engine, **kwargs)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) * 5
        optimizer.step()
    return optimizer


@pytest.mark.parametrize(("dtype", "state_dtype", "max_grad_norm"), [
    (torch.float32, None, 1.0), (torch.float32, None, None), (torch.float64, None, 1.0),
    (torch.float32, torch.bfloat16, 1.0)], ids=["fp32-clip", "fp32-no-clip", "fp64-clip",
                                                "bf16-moments"])
def test_lamb_compiled_per_tensor_gives_the_reference_numbers(dtype, state_dtype,
                                                              max_grad_norm, seed) -> None:
    expected, ours = _params(dtype, seed), _params(dtype, seed)
    kwargs = {"state_dtype": state_dtype, "max_grad_norm": max_grad_norm}
    reference = _train("reference", expected, seed, **kwargs)
    compiled = _train("compiled", ours, seed, **kwargs)
    assert compiled.engines_used() == {"compiled": len(SHAPES)}
    assert compiled.declined() == {}
    tolerance = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else \
        {"rtol": 1e-5, "atol": 1e-6}
    for p, q in zip(ours, expected, strict=True):
        torch.testing.assert_close(p, q, **tolerance)
        for key in ("exp_avg", "exp_avg_sq"):
            mine, theirs = compiled.state[p], reference.state[q]
            assert mine[key].dtype == theirs[key].dtype
            # a bf16 moment may round the other way where fp32 math differs in its last bit
            close = {"rtol": 1e-2, "atol": 1e-5} if mine[key].dtype == torch.bfloat16 else \
                tolerance
            torch.testing.assert_close(mine[key].double(), theirs[key].double(), **close)
            assert float(mine["step"]) == float(theirs["step"]) == 3


def _unique_graphs() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_a_schedule_and_a_new_weight_decay_compile_nothing(seed) -> None:
    params = _params(torch.float32, seed)
    expected = [torch.nn.Parameter(p.detach().clone()) for p in params]
    optimizers = [optimlab.Lamb(ps, engine=engine)
                  for ps, engine in ((params, "compiled"), (expected, "reference"))]
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda step: 1 / (1 + step))
                  for o in optimizers]
    gen = torch.Generator().manual_seed(seed)
    for step in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for optimizer, scheduler, ps in zip(optimizers, schedulers, (params, expected),
                                            strict=True):
            for p, g in zip(ps, grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
            scheduler.step()
            if step == 2:
                optimizer.param_groups[0]["weight_decay"] = 0.0  # λ = 0: no trust ratio
        if step == 0:
            compiled_after_first = _unique_graphs()
    assert _unique_graphs() == compiled_after_first
    assert optimizers[0].engines_used() == {"compiled": len(SHAPES)}
    for p, q in zip(params, expected, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_one_kernel_serves_every_matrix(seed) -> None:
    """Dynamic sizes: matrices of six shapes (and vectors of three) compile at most one
    kernel each kind, however many shapes the model has (a kernel per shape would reach
    Dynamo's limit of 8 compiles and fall back)."""
    shapes = [(72, 64), (80, 96), (96, 80), (64, 72), (128, 40), (40, 128), (64,), (40,),
              (128,)]
    params = _params(torch.float32, seed, shapes)
    before = _unique_graphs()
    optimizer = _train("compiled", params, seed, steps=2)
    assert _unique_graphs() - before <= 2
    assert optimizer.engines_used() == {"compiled": len(shapes)}


@pytest.mark.parametrize("resumed_on", ["compiled", "reference"])
def test_state_dicts_round_trip_between_engines(resumed_on: str, seed) -> None:
    """Three steps on the compiled engine, saved; loaded into a fresh optimizer on either
    engine, two more steps: the numbers of five uninterrupted reference steps."""
    expected = _params(torch.float32, seed)
    reference = _train("reference", expected, seed, steps=3)
    first = _params(torch.float32, seed)
    saved = _train("compiled", first, seed, steps=3).state_dict()
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in first]
    optimizer = optimlab.Lamb([{"params": resumed[:2]},
                               {"params": resumed[2:], "lr": 3e-3, "weight_decay": 0.1}],
                              engine=resumed_on)
    optimizer.load_state_dict(saved)
    _train(resumed_on, resumed, seed + 7, steps=2, optimizer=optimizer)
    _train("reference", expected, seed + 7, steps=2, optimizer=reference)
    assert optimizer.engines_used() == {resumed_on: len(SHAPES)}
    for p, q in zip(resumed, expected, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(optimizer.state[p]["exp_avg_sq"],
                                   reference.state[q]["exp_avg_sq"], rtol=1e-5, atol=1e-9)
        assert float(optimizer.state[p]["step"]) == 5
