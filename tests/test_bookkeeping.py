"""The per-step bookkeeping of a group is kept while the group is unchanged
(optimlab.bookkeeping), and every write into ``param_groups`` is still seen.

* A scheduler writing ``lr`` at every step: its numbers reach the kernel, the group is not
  normalised, checked or viewed anew (only lr's range is checked) and the engine's plan
  is kept; a bad lr written by hand is refused, and the refused step changes nothing.
* ``betas`` written by hand, a tensor lr changed in place, ``amsgrad`` turned on, momentum
  0 -> 0.9 (a new buffer), ``params`` replaced: each is seen at the next step, which
  matches the reference engine given the same writes.
"""

from __future__ import annotations

import pytest
import torch

import optimlab
from optimlab.engines import generated_c
from optimlab.hyperparameters import ArgumentError

SHAPES = [(6, 5), (9,), (3, 4, 2)]


def _pair(gen, cls, engine: str, **kwargs):
    """The same params and optimizer twice: on ``engine`` and on the reference engine."""
    first = [torch.randn(s, generator=gen).requires_grad_() for s in SHAPES]
    second = [p.detach().clone().requires_grad_() for p in first]
    return ((first, cls(first, engine=engine, **kwargs)),
            (second, cls(second, engine="reference", **kwargs)))


def _step(gen, pairs) -> None:
    grads = [torch.randn(s, generator=gen) for s in SHAPES]
    for params, optimizer in pairs:
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        optimizer.step()


def _assert_level(pairs) -> None:
    (mine, _), (reference, _) = pairs
    for a, b in zip(mine, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


ENGINE = "generated" if generated_c.available() else "reference"


def test_a_scheduler_writing_lr_keeps_the_plan_and_checks_only_lr(gen, monkeypatch) -> None:
    pairs = _pair(gen, optimlab.AdamW, ENGINE, lr=1e-2, weight_decay=0.1)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1 / (1 + s)) for _, o in pairs]
    _step(gen, pairs)
    optimizer = pairs[0][1]
    plan = optimizer._engine_caches[0].get(ENGINE, {}).get("plan")
    full = []
    monkeypatch.setattr(optimizer, "normalize_group", lambda group: full.append(group))
    for _ in range(4):
        for scheduler in schedulers:
            scheduler.step()
        _step(gen, pairs)
    assert not full, "a new lr took the whole path"
    assert optimizer._engine_caches[0].get(ENGINE, {}).get("plan") is plan
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 5)
    _assert_level(pairs)


def test_a_bad_lr_is_refused_and_the_refused_step_changes_nothing(gen) -> None:
    pairs = _pair(gen, optimlab.Adam, ENGINE)
    _step(gen, pairs)
    params, optimizer = pairs[0]
    optimizer.param_groups[0]["lr"] = -1.0
    before = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    with pytest.raises(ArgumentError, match="lr"):
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    assert all(torch.equal(optimizer.state[params[0]][k], v) for k, v in state.items())
    optimizer.param_groups[0]["lr"] = 1e-3
    pairs[1][1].param_groups[0]["lr"] = 1e-3
    _step(gen, pairs)
    _assert_level(pairs)


@pytest.mark.parametrize("change", ["betas", "tensor lr", "amsgrad", "params"])
def test_a_write_into_the_group_is_seen_at_the_next_step(gen, change: str) -> None:
    lr = torch.tensor(1e-2) if change == "tensor lr" else 1e-2
    pairs = _pair(gen, optimlab.Adam, ENGINE, lr=lr)
    if change == "tensor lr":  # one tensor each, changed in place
        pairs[1][1].param_groups[0]["lr"] = torch.tensor(1e-2)
    _step(gen, pairs)
    _step(gen, pairs)
    for params, optimizer in pairs:
        group = optimizer.param_groups[0]
        if change == "betas":
            group["betas"] = (0.5, 0.9)
        elif change == "tensor lr":
            group["lr"].fill_(0.1)
        elif change == "amsgrad":
            group["amsgrad"] = True
        else:
            group["params"] = params[:2]
    _step(gen, pairs)
    _step(gen, pairs)
    _assert_level(pairs)
    params, optimizer = pairs[0]
    if change == "amsgrad":
        assert "max_exp_avg_sq" in optimizer.state[params[0]]
    if change == "params":
        assert optimizer.engines_used() == {ENGINE: 2}


def test_momentum_turned_on_by_hand_adds_its_buffer(gen) -> None:
    pairs = _pair(gen, optimlab.SGD, ENGINE, lr=0.05)
    _step(gen, pairs)
    for _, optimizer in pairs:
        optimizer.param_groups[0]["momentum"] = 0.9
    for _ in range(3):
        _step(gen, pairs)
    _assert_level(pairs)
    params, optimizer = pairs[0]
    assert "momentum_buffer" in optimizer.state[params[0]]
