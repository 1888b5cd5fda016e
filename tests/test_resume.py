"""Exact resume: 2N steps straight == N steps, optimizer + scheduler + params saved with
torch.save to a file, fresh objects, load, N more steps; bit for bit, for every optimizer
and option set of the registry on the reference engine, one per state structure on the
other engines, and every storage of the moments (the param's dtype, bf16, 8-bit), as
tests/cases.py's with_state_dtypes says (every case everywhere under explore). A state
dict that does not fit is refused with a message and leaves the optimizer exactly as it was."""

from __future__ import annotations

import re

import pytest
import torch
from cases import BIG_SHAPE, Case, is_moment, optimizer_class, with_state_dtypes
from snapshots import bitwise_equal, snapshot

import optimlab
from optimlab.engines import ENGINES

SHAPES = [(3,), (4, 2), (), (2, 1, 3)]
HALF = 6


def _shapes(state_dtype: torch.dtype | None) -> list[tuple[int, ...]]:
    """SHAPES, and a tensor large enough for bf16 or 8-bit moments where they are asked
    for (smaller ones keep the param's dtype)."""
    return SHAPES if state_dtype is None else [*SHAPES[:2], BIG_SHAPE, *SHAPES[2:]]


def _batches(gen: torch.Generator, steps: int, shapes=SHAPES) -> list[list[torch.Tensor | None]]:
    """Gradients per step: the last param has none on every third step, and step 4 holds
    an Inf (skipped: every case runs with nonfinite="skip")."""
    batches = []
    for step in range(steps):
        grads = [torch.randn(shape, dtype=torch.float64, generator=gen) for shape in shapes]
        if step % 3 == 1:
            grads[-1] = None
        if step == 4:
            grads[1][0, 0] = float("inf")
        batches.append(grads)
    return batches


def _build(case: Case, params: list[torch.Tensor], engine: str, state_dtype=None):
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.5 * case.kwargs["lr"]}]
    optimizer = case.build(groups, engine=engine, nonfinite="skip", state_dtype=state_dtype)
    schedule = optimlab.schedules.get("cosine", total_steps=2 * HALF, warmup=3, min_lr_ratio=0.1)
    return optimizer, schedule.scheduler(optimizer)


def _train(params, optimizer, scheduler, batches) -> None:
    for grads in batches:
        for param, grad in zip(params, grads, strict=True):
            param.grad = None if grad is None else grad.clone()
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize(("case", "state_dtype", "engine"),
                         with_state_dtypes(sorted(ENGINES), every_case=False))
def test_resume_is_bitwise_exact(case: Case, state_dtype, engine: str, gen, tmp_path) -> None:
    shapes = [case.shape(s) for s in _shapes(state_dtype)]
    start = [torch.randn(shape, dtype=torch.float64, generator=gen) for shape in shapes]
    batches = _batches(gen, 2 * HALF, shapes)

    straight = [p.clone().requires_grad_() for p in start]
    straight_optimizer, scheduler = _build(case, straight, engine, state_dtype)
    _train(straight, straight_optimizer, scheduler, batches)

    first = [p.clone().requires_grad_() for p in start]
    optimizer, scheduler = _build(case, first, engine, state_dtype)
    _train(first, optimizer, scheduler, batches[:HALF])
    path = tmp_path / "checkpoint.pt"
    torch.save({"params": [p.detach() for p in first], "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, path)
    del first, optimizer, scheduler

    checkpoint = torch.load(path, weights_only=True)
    resumed = [torch.zeros(shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    with torch.no_grad():
        for param, saved in zip(resumed, checkpoint["params"], strict=True):
            param.copy_(saved)
    optimizer, scheduler = _build(case, resumed, engine, state_dtype)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    _train(resumed, optimizer, scheduler, batches[HALF:])

    assert bitwise_equal(snapshot(resumed, optimizer), snapshot(straight, straight_optimizer))
    assert optimizer.skipped_steps == straight_optimizer.skipped_steps == 1
    if state_dtype is not None:  # the big param's moments really are narrow
        stored = {v.dtype for k, v in optimizer.state[resumed[2]].items()
                  if is_moment(optimizer, k)}
        assert stored <= {torch.bfloat16} if state_dtype == torch.bfloat16 else \
            stored <= {torch.int8, torch.uint8, torch.float32}, stored


# --- state dicts that do not fit ---------------------------------------------------------

FAMILIES = {
    "SGD": {"momentum": 0.9},
    "Adagrad": {},
    "RMSprop": {"momentum": 0.5, "centered": True},
    "Adam": {"amsgrad": True},
    "AdamW": {},
}


def _trained(name: str, kwargs: dict, params: list[torch.Tensor], gen, steps: int = 2):
    optimizer = optimizer_class(name)(params, lr=0.01, **kwargs)
    for _ in range(steps):
        for param in params:
            param.grad = torch.randn(param.shape, generator=gen)
        optimizer.step()
    return optimizer


def _misfits(name: str, gen) -> list[tuple[str, dict, str]]:
    """(what, state dict, expected message) for state dicts that do not fit a trained
    ``name`` over params of SHAPES."""
    def params(shapes=SHAPES):
        return [torch.randn(s, generator=gen).requires_grad_() for s in shapes]

    kwargs = FAMILIES[name]
    misfits = []
    for other, other_kwargs in FAMILIES.items():
        if other == name or {name, other} <= {"Adam", "AdamW"}:
            continue  # Adam and AdamW: the same algorithm, loads both ways as in torch
        state_dict = _trained(other, other_kwargs, params(), gen).state_dict()
        misfits.append((f"{other}'s", state_dict, "saved by another optimizer"))
    plain_sgd = _trained("SGD", {}, params(), gen).state_dict()  # no state: its groups tell
    if name != "SGD":
        misfits.append(("stateless SGD's", plain_sgd, "saved by another optimizer"))
    misfits += [
        ("fewer params", _trained(name, kwargs, params(SHAPES[:3]), gen).state_dict(),
         "has 3 parameter(s), the optimizer's group 0 has 4"),
        ("more params", _trained(name, kwargs, params([*SHAPES, (2,)]), gen).state_dict(),
         "has 5 parameter(s), the optimizer's group 0 has 4"),
        ("another shape", _trained(name, kwargs, params([(3,), (2, 4), (), (2, 1, 3)]),
                                   gen).state_dict(),
         "of parameter group 0, index 1 has shape (2, 4), the parameter has shape (4, 2)"),
        ("more groups", optimizer_class(name)(
            [{"params": params()[:2]}, {"params": params()[2:]}], **kwargs).state_dict(),
         "has 2 param group(s), the optimizer 1"),
        ("not a state dict", {"params": []}, "not an optimizer state dict"),
    ]
    invalid = _trained(name, kwargs, params(), gen).state_dict()
    invalid["param_groups"][0]["lr"] = -1.0
    misfits.append(("a negative lr", invalid, "lr=-1.0 is invalid; valid: lr >= 0"))
    return misfits


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_state_dict_that_does_not_fit_is_refused_and_changes_nothing(name, gen) -> None:
    start = [torch.randn(shape, generator=gen) for shape in SHAPES]
    params = [p.clone().requires_grad_() for p in start]
    twin_params = [p.clone().requires_grad_() for p in start]
    optimizer = optimizer_class(name)(params, lr=0.01, **FAMILIES[name])
    twin = optimizer_class(name)(twin_params, lr=0.01, **FAMILIES[name])
    for what, state_dict, message in _misfits(name, gen):
        grads = [torch.randn(shape, generator=gen) for shape in SHAPES]
        for own, other, grad in zip(params, twin_params, grads, strict=True):
            own.grad, other.grad = grad.clone(), grad.clone()
        optimizer.step()
        twin.step()
        before = snapshot(params, optimizer)
        with pytest.raises(ValueError, match=re.escape(message)):
            optimizer.load_state_dict(state_dict)
        assert bitwise_equal(snapshot(params, optimizer), before), what
    optimizer.step()
    twin.step()
    assert bitwise_equal(snapshot(params, optimizer), snapshot(twin_params, twin))


def test_adam_and_adamw_state_dicts_load_into_each_other(gen) -> None:
    params = [torch.randn(3, requires_grad=True)]
    adam = _trained("Adam", {"decoupled_weight_decay": True, "weight_decay": 0.1}, params, gen)
    adamw = optimlab.AdamW(params)
    adamw.load_state_dict(adam.state_dict())
    assert adamw.param_groups[0]["weight_decay"] == 0.1
    optimlab.Adam(params).load_state_dict(adamw.state_dict())


def test_a_failing_load_state_dict_pre_hook_changes_nothing(gen) -> None:
    params = [torch.randn(3, requires_grad=True)]
    optimizer = _trained("AdamW", {}, params, gen)
    state_dict = optimizer.state_dict()
    before = snapshot(params, optimizer)

    def refuse(opt, sd):
        raise RuntimeError("refused by the user's hook")

    optimizer.register_load_state_dict_pre_hook(refuse)
    with pytest.raises(RuntimeError, match="user's hook"):
        optimizer.load_state_dict(state_dict)
    assert bitwise_equal(snapshot(params, optimizer), before)
    assert len(optimizer._optimizer_load_state_dict_pre_hooks) == 1  # ours was removed
