"""state_dict round trips: optimlab -> optimlab (with moments in the param's dtype, bf16
and 8 bits), torch -> optimlab, optimlab -> torch. Training N steps, checkpointing through
torch.save, loading into a fresh optimizer and training M more lands where uninterrupted
training lands."""

from __future__ import annotations

import io

import pytest
import torch
from cases import BIG_SHAPE, TORCH_CASES, Case, is_moment, torch_class, with_state_dtypes

import optimlab

SHAPES = [(3,), (4, 2), ()]


def _grads(gen, steps, shapes=SHAPES):
    return [[torch.randn(shape, dtype=torch.float64, generator=gen) for shape in shapes]
            for _ in range(steps)]


def _train(optimizer, params, grads):
    for step_grads in grads:
        for param, grad in zip(params, step_grads, strict=True):
            param.grad = grad.clone()
        optimizer.step()


def _through_disk(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _resumed(make_first, make_second, gen, before=7, after=8, shapes=SHAPES):
    """Params after `before` steps with one optimizer, a checkpoint, then `after` steps with
    a fresh optimizer of the second kind; and params after all steps uninterrupted."""
    grads = _grads(gen, before + after, shapes)
    start = [torch.randn(shape, dtype=torch.float64, generator=gen) for shape in shapes]
    straight = [p.clone().requires_grad_() for p in start]
    first_optimizer = make_first(straight)
    _train(first_optimizer, straight, grads)
    resumed = [p.clone().requires_grad_() for p in start]
    first = make_first(resumed)
    _train(first, resumed, grads[:before])
    second = make_second(resumed)
    second.load_state_dict(_through_disk(first.state_dict()))
    _train(second, resumed, grads[before:])
    return resumed, straight, first_optimizer, second


@pytest.mark.parametrize(("case", "state_dtype", "engine"),
                         with_state_dtypes(["auto", "reference"], every_case=False))
def test_optimlab_to_optimlab_is_exact(case: Case, state_dtype, engine, gen) -> None:
    """Bit for bit, whatever the moments are stored in (bf16 and 8 bits need a tensor of
    codecs.SMALL_TENSOR elements or more: BIG_SHAPE)."""
    def build(params):
        return case.build(params, engine=engine, state_dtype=state_dtype)

    shapes = SHAPES if state_dtype is None else [*SHAPES, BIG_SHAPE]
    shapes = [case.shape(s) for s in shapes]
    resumed, straight, first, second = _resumed(build, build, gen, shapes=shapes)
    for p, q in zip(resumed, straight, strict=True):
        assert torch.equal(p, q)
    assert second.param_groups[0]["lr"] == first.param_groups[0]["lr"]
    stored = {v.dtype for k, v in second.state[resumed[-1]].items() if is_moment(second, k)}
    narrow = {None: {torch.float64}, torch.bfloat16: {torch.bfloat16},
              torch.int8: {torch.int8, torch.uint8, torch.float32}}[state_dtype]
    assert stored <= narrow, stored  # the last param's moments in the storage asked for


@pytest.mark.parametrize(("case", "state_dtype", "engine"),
                         [p for p in with_state_dtypes(["reference"]) if p.values[1] is not None])
def test_a_loaded_state_is_stored_as_asked_before_any_step(case: Case, state_dtype, engine,
                                                           gen) -> None:
    """A checkpoint of narrow moments loads as narrow moments: loading must not bring back
    the memory that bf16 or 8 bits saved."""
    params = [torch.randn(BIG_SHAPE, generator=gen).requires_grad_() for _ in range(2)]
    first = case.build(params[:1], engine=engine, state_dtype=state_dtype)
    params[0].grad = torch.randn(BIG_SHAPE, generator=gen)
    first.step()
    second = case.build(params[1:], engine=engine, state_dtype=state_dtype)
    second.load_state_dict(_through_disk(first.state_dict()))
    saved = {k: v.dtype for k, v in first.state[params[0]].items()}
    assert {k: v.dtype for k, v in second.state[params[1]].items()} == saved


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_torch_to_optimlab(case: Case, gen) -> None:
    def torch_optimizer(params):
        return torch_class(case.name)(params, **case.kwargs)

    resumed, straight, _, second = _resumed(torch_optimizer, case.build, gen,
                                            shapes=[case.shape(s) for s in SHAPES])
    for p, q in zip(resumed, straight, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
    assert isinstance(second, optimlab.Optimizer)


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_optimlab_to_torch(case: Case, gen) -> None:
    def torch_optimizer(params):
        return torch_class(case.name)(params, **case.kwargs)

    resumed, straight, _, _ = _resumed(case.build, torch_optimizer, gen,
                                       shapes=[case.shape(s) for s in SHAPES])
    for p, q in zip(resumed, straight, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_torch_adamw_checkpoint_keeps_our_constructor_conventions(gen) -> None:
    """A torch checkpoint has none of optimlab's options: the loading optimizer's own
    settings fill them, and torch's decoupled_weight_decay flag is honoured."""
    params = [torch.randn(3, requires_grad=True)]
    theirs = torch.optim.AdamW(params, lr=0.01)
    params[0].grad = torch.randn(3, generator=gen)
    theirs.step()
    ours = optimlab.AdamW(params, bias_correction=False, eps_root=1e-6)
    ours.load_state_dict(theirs.state_dict())
    group = ours.param_groups[0]
    assert (group["bias_correction"], group["eps_root"]) == (False, 1e-6)
    assert group["weight_decay_form"] == "decoupled" and group["lr"] == 0.01
    adam = optimlab.Adam([torch.randn(3, requires_grad=True)])
    adam.load_state_dict(torch.optim.AdamW([torch.randn(3, requires_grad=True)]).state_dict())
    assert adam.param_groups[0]["weight_decay_form"] == "decoupled"


def test_state_uses_torch_names_and_layout(gen) -> None:
    param = torch.randn(4, 3, requires_grad=True)
    expected = {
        optimlab.SGD([param], momentum=0.9): {"momentum_buffer"},
        optimlab.Adagrad([param]): {"step", "sum"},
        optimlab.RMSprop([param], momentum=0.9, centered=True):
            {"step", "square_avg", "momentum_buffer", "grad_avg"},
        optimlab.Adam([param], amsgrad=True): {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        optimlab.AdamW([param]): {"step", "exp_avg", "exp_avg_sq"},
    }
    for optimizer, keys in expected.items():
        param.grad = torch.randn(4, 3, generator=gen)
        optimizer.step()
        state = optimizer.state_dict()["state"][0]
        assert set(state) == keys
        for key in keys - {"step"}:
            assert state[key].shape == param.shape and state[key].dtype == param.dtype
        if "step" in keys:
            assert state["step"].dim() == 0 and state["step"].dtype == torch.float32
            assert float(state["step"]) == 1.0
