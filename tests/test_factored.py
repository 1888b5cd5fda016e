"""Adafactor (per-tensor, factored state) as a drop-in for torch.optim.Adafactor: its state
names and shapes, its numbers in fp32 and fp64, checkpoints both ways mid-run, ε₁ from the
param's storage dtype, torch's refusals; and every engine's answer to a rule that is not
elementwise (Adafactor's and Muon's)."""

from __future__ import annotations

import pytest
import torch

import optimlab
from optimlab import engines
from optimlab.rules.adafactor import ADAFACTOR_RULE

SHAPES = [(5, 3), (2, 4, 3), (7,), ()]
TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-6},
             torch.float64: {"rtol": 1e-12, "atol": 1e-12}}


def _twins(gen, dtype=torch.float32, shapes=SHAPES):
    values = [torch.randn(s, dtype=dtype, generator=gen) for s in shapes]
    return ([v.clone().requires_grad_() for v in values],
            [v.clone().requires_grad_() for v in values])


def _steps(pairs, gen, steps):
    """Step each (optimizer, params) on the same random gradients."""
    for _ in range(steps):
        grads = [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in pairs[0][1]]
        for optimizer, params in pairs:
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad.clone()
            optimizer.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_state_names_shapes_and_numbers_are_torchs(dtype, gen) -> None:
    ours, theirs = _twins(gen, dtype)
    mine = optimlab.Adafactor(ours, lr=0.02, weight_decay=0.1)
    other = torch.optim.Adafactor(theirs, lr=0.02, weight_decay=0.1)
    _steps([(mine, ours), (other, theirs)], gen, 6)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, **TOLERANCE[dtype])
        assert sorted(mine.state[p]) == sorted(other.state[q])
        for key, value in other.state[q].items():
            assert mine.state[p][key].shape == value.shape, key
            torch.testing.assert_close(mine.state[p][key], value, **TOLERANCE[dtype])
    assert {k: tuple(v.shape) for k, v in mine.state[ours[1]].items()} == {
        "step": (), "row_var": (2, 4, 1), "col_var": (2, 1, 3)}
    assert mine.moment(ours[0], "row_var").shape == (5, 1)  # a factored moment as declared


@pytest.mark.parametrize("direction", ["torch->optimlab", "optimlab->torch"])
def test_checkpoints_load_both_ways_mid_run(direction, gen) -> None:
    """Three steps by one, its state dict through torch.save semantics, three by the other:
    where three steps of torch's alone would have landed."""
    dtype = torch.float32
    straight, resumed = _twins(gen, dtype)
    through = [p.detach().clone().requires_grad_() for p in straight]
    make_first, make_second = (torch.optim.Adafactor, optimlab.Adafactor) \
        if direction == "torch->optimlab" else (optimlab.Adafactor, torch.optim.Adafactor)
    uninterrupted = torch.optim.Adafactor(straight, lr=0.03, d=2.0)
    first = make_first(resumed, lr=0.03, d=2.0)
    _steps([(uninterrupted, straight), (first, resumed)], gen, 3)
    with torch.no_grad():
        for p, q in zip(through, resumed, strict=True):
            p.copy_(q)
    second = make_second(through, lr=0.03, d=2.0)
    second.load_state_dict(first.state_dict())
    _steps([(uninterrupted, straight), (second, through)], gen, 3)
    for p, q in zip(through, straight, strict=True):
        torch.testing.assert_close(p, q, **TOLERANCE[dtype])


def test_eps1_follows_the_param_storage_dtype(gen) -> None:
    """torch takes ε₁ = finfo(param.dtype).eps; the engine hands the rule an fp32 copy of a
    bf16 param, so the rule reads it from the stored param (Rule.tensor_scalars). With
    gradients so small that V̂ < ε₁², the clamp sets the step: with bf16's ε₁ (7.8e-3) a
    gradient of ~1e-3 moves θ by ~1/8 of what fp32's ε₁ would."""
    assert ADAFACTOR_RULE.tensor_scalars({"eps1": None}, torch.ones(2, dtype=torch.bfloat16)) \
        == {"eps1_now": torch.finfo(torch.bfloat16).eps}
    assert ADAFACTOR_RULE.tensor_scalars({"eps1": 1e-5}, torch.ones(2)) == {"eps1_now": 1e-5}
    start = torch.randn(6, 4, generator=gen).to(torch.bfloat16)
    grad = (1e-3 * torch.randn(6, 4, generator=gen)).to(torch.bfloat16)
    moved = {}
    for name, cls in (("ours", optimlab.Adafactor), ("torch", torch.optim.Adafactor)):
        param = start.clone().requires_grad_()
        param.grad = grad.clone()
        optimizer = cls([param], lr=0.5)
        optimizer.step()
        moved[name] = (param.float() - start.float()).abs().max().item()
    assert moved["torch"] == pytest.approx(moved["ours"], rel=0.1), moved
    as_fp32 = start.float().requires_grad_()
    as_fp32.grad = grad.float()
    optimlab.Adafactor([as_fp32], lr=0.5).step()
    assert (as_fp32 - start.float()).abs().max().item() > 3 * moved["ours"]


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"lr": -1.0}, "lr"), ({"beta2_decay": 0.5}, "beta2_decay"), ({"eps": (-1.0, 1e-3)}, "eps"),
    ({"eps": (None, -1e-3)}, "eps"), ({"d": 0.5}, "d"), ({"weight_decay": -0.1}, "weight_decay"),
], ids=str)
def test_torchs_bad_inputs_are_refused_alike(kwargs, argument) -> None:
    param = torch.randn(3, 2, requires_grad=True)
    with pytest.raises(ValueError):
        torch.optim.Adafactor([param], **kwargs)
    with pytest.raises(optimlab.ArgumentError, match=f"{argument}.*invalid; valid: "):
        optimlab.Adafactor([param], **kwargs)


def test_complex_params_and_8bit_state_are_refused_with_reasons() -> None:
    with pytest.raises(optimlab.ArgumentError, match="does not support complex"):
        optimlab.Adafactor([torch.randn(3, 2, dtype=torch.complex64, requires_grad=True)])
    with pytest.raises(optimlab.ArgumentError, match=r"state_dtype=torch\.int8 .*factored"):
        optimlab.Adafactor([torch.randn(3, 2, requires_grad=True)], state_dtype=torch.int8)


def test_bf16_factored_state_is_stored_narrow(gen) -> None:
    big = torch.randn(128, 64, generator=gen).requires_grad_()
    optimizer = optimlab.Adafactor([big], state_dtype=torch.bfloat16)
    big.grad = torch.randn(128, 64, generator=gen)
    optimizer.step()
    assert {k: v.dtype for k, v in optimizer.state[big].items() if k != "step"} == {
        "row_var": torch.bfloat16, "col_var": torch.bfloat16}
    assert optimizer.moment(big, "col_var").shape == (1, 64)


# --- every engine, and rules that are not elementwise ---------------------------------------


@pytest.mark.parametrize("engine", engines.ENGINES)
@pytest.mark.parametrize(("cls", "structure"), [(optimlab.Adafactor, "per-tensor"),
                                                (optimlab.Muon, "matrix")],
                         ids=["Adafactor", "Muon"])
def test_every_engine_declines_with_its_reason_and_the_reference_engine_steps(
        cls, structure, engine, gen) -> None:
    """generated flattens a group's tensors, which changes a per-tensor or matrix rule's
    meaning; native has no kernel for it: each declines and says why. compiled takes the
    rule with one compiled call per tensor (engines/inductor_tensors.py), auto leaves a
    small group to the reference engine; every engine gives engine='reference''s numbers
    (compiled: within rounding)."""
    shapes = [(4, 3), (3, 5)]
    ours, theirs = _twins(gen, shapes=shapes)
    mine = cls(ours, engine=engine)
    reference = cls(theirs, engine="reference")
    _steps([(mine, ours), (reference, theirs)], gen, 2)
    taker = "compiled" if engine == "compiled" else "reference"
    assert mine.engines_used() in ({taker: len(shapes)}, {"reference": len(shapes)})
    declined = mine.declined()
    expected = {"auto": {"generated", "native"}, "reference": set()}.get(engine, {engine})
    assert expected <= set(declined) <= expected | {"compiled"}, declined
    for name in expected - {"native"}:
        assert structure in declined[name]
    if "native" in expected:
        assert "no fused kernel" in declined["native"]
    for p, q in zip(ours, theirs, strict=True):
        if engine == "compiled":
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(p, q)
