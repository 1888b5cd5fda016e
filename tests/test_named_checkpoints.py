"""Checkpoints that survive a changed model (pytorch/pytorch#1489): when the optimizer knows
parameter names, state is matched by name. A model gains a layer, loses one, reorders its
modules and is regrouped between save and load; state moves with its parameter, new
parameters start fresh, a changed shape is refused naming the parameter, and a plain
positional torch state dict loads as before."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from cases import optimizer_class
from snapshots import bitwise_equal, snapshot
from torch import nn

import optimlab
from optimlab.engines import ENGINES

FAMILIES = {"SGD": {"momentum": 0.9}, "Adagrad": {}, "RMSprop": {"centered": True},
            "Adam": {"amsgrad": True}, "AdamW": {}}
LR, SCHEDULED_LR, STEPS = 0.02, 0.013, 4


def _model(layers: list[str], width: int = 4) -> nn.Module:
    """Modules registered in the order given: embed, body, norm, head, extra."""
    make = {"embed": lambda: nn.Embedding(10, width), "body": lambda: nn.Linear(width, 4),
            "norm": lambda: nn.LayerNorm(4), "head": lambda: nn.Linear(4, 3),
            "extra": lambda: nn.Linear(4, 4)}
    model = nn.Module()
    for name in layers:
        model.add_module(name, make[name]())
    return model


def _grads(names: list[str], steps: int, gen: torch.Generator, shapes: dict) -> list[dict]:
    return [{name: torch.randn(shapes[name], generator=gen) for name in names}
            for _ in range(steps)]


def _train(model: nn.Module, optimizer, grads: list[dict]) -> None:
    for step_grads in grads:
        for name, param in model.named_parameters():
            param.grad = step_grads[name].clone()
        optimizer.step()


def _copy_common(src: nn.Module, dst: nn.Module) -> None:
    """Give dst's parameters that src also has src's values (a checkpoint of the model)."""
    values = dict(src.named_parameters())
    with torch.no_grad():
        for name, param in dst.named_parameters():
            if name in values:
                param.copy_(values[name])


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_state_moves_with_its_parameter(name: str, engine: str, gen) -> None:
    cls, kwargs = optimizer_class(name), {**FAMILIES[name], "engine": engine}
    torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    old = _model(["embed", "body", "norm", "head"])
    straight = _model(["embed", "body", "norm", "head"])
    straight.load_state_dict(old.state_dict())
    # v2 reorders (head first), loses norm, gains extra; embed.* is split off its group
    new = _model(["head", "embed", "body", "extra"])
    _copy_common(old, new)
    shapes = {n: p.shape for m in (old, new) for n, p in m.named_parameters()}
    grads = _grads(sorted(shapes), 2 * STEPS, gen, shapes)

    old_optimizer = cls(optimlab.param_groups(old, 0.1), lr=LR, **kwargs)
    straight_optimizer = cls(optimlab.param_groups(straight, 0.1), lr=LR, **kwargs)
    for model, optimizer in ((old, old_optimizer), (straight, straight_optimizer)):
        _train(model, optimizer, grads[:STEPS])
        optimizer.param_groups[0]["lr"] = SCHEDULED_LR  # as a scheduler would have set it
    _train(straight, straight_optimizer, grads[STEPS:])
    saved = old_optimizer.state_dict()
    _copy_common(old, new)

    groups = optimlab.param_groups(new, 0.1, lr=LR, lr_multipliers={"embed.*": 0.5})
    optimizer = cls(groups, **kwargs)
    with pytest.warns(UserWarning, match=re.escape(
            "2 parameter(s) start fresh (no saved state): ['extra.weight', 'extra.bias']; 2 "
            "saved parameter(s) no longer exist and were dropped: ['norm.weight', 'norm.bias']")):
        optimizer.load_state_dict(saved)

    params = dict(new.named_parameters())
    old_state = {n: old_optimizer.state[p] for n, p in old.named_parameters()}
    for param_name, param in params.items():
        if param_name.startswith("extra"):
            assert param not in optimizer.state
        else:
            assert bitwise_equal(optimizer.state[param], old_state[param_name]), param_name
    settings = {n: g for g in optimizer.param_groups for n in g["param_names"]}
    # the decay group only gained a parameter: the same group, its saved (scheduled) lr;
    # embed.weight was split off the no-decay group: the new groups keep their own settings
    assert settings["body.weight"]["lr"] == settings["extra.weight"]["lr"] == SCHEDULED_LR
    assert settings["embed.weight"]["lr"] == 0.5 * LR and settings["body.bias"]["lr"] == LR
    assert settings["embed.weight"]["weight_decay"] == settings["extra.bias"]["weight_decay"] == 0

    fresh = {n: params[n].detach().clone().requires_grad_() for n in ("extra.weight",
                                                                      "extra.bias")}
    _train(new, optimizer, grads[STEPS:])
    # body.weight and head.weight kept their group and settings: bitwise on the straight path
    expected = dict(straight.named_parameters())
    for param_name in ("body.weight", "head.weight"):
        assert torch.equal(params[param_name], expected[param_name]), param_name
    # the new layer trains from fresh state with its group's settings
    for param_name, param in fresh.items():
        group = settings[param_name]
        alone = cls([param], lr=group["lr"], weight_decay=group["weight_decay"], **kwargs)
        for step_grads in grads[STEPS:]:
            param.grad = step_grads[param_name].clone()
            alone.step()
        assert torch.equal(params[param_name], param), param_name


def test_a_changed_shape_is_refused_naming_the_parameter(gen) -> None:
    old = _model(["embed", "body", "head"])
    optimizer = optimlab.AdamW(old.named_parameters())
    for param in old.parameters():
        param.grad = torch.randn(param.shape, generator=gen)
    optimizer.step()
    wider = _model(["embed", "body", "head"], width=6)
    target = optimlab.AdamW(wider.named_parameters())
    before = snapshot(list(wider.parameters()), target)
    with pytest.raises(ValueError, match=re.escape(
            "the saved 'exp_avg' of parameter 'embed.weight' has shape (10, 4), the "
            "parameter has shape (10, 6)")):
        target.load_state_dict(optimizer.state_dict())
    assert bitwise_equal(snapshot(list(wider.parameters()), target), before)


def test_duplicate_names_are_refused() -> None:
    params = [torch.randn(2, requires_grad=True) for _ in range(2)]
    optimizer = optimlab.Adam([("w", params[0])])
    saved = optimlab.Adam([{"params": [("w", params[0])]}, {"params": [("w", params[1])]}])
    with pytest.raises(ValueError, match="the name 'w' appears twice in the state dict"):
        optimizer.load_state_dict(saved.state_dict())


def test_positional_and_torch_state_dicts_load_as_before(gen) -> None:
    """Names on one side only: by position, as torch. torch.optim built from
    named_parameters() records names too, and then loads into optimlab by name."""
    model = _model(["embed", "body", "head"])
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=gen)
    positional = torch.optim.AdamW(model.parameters(), lr=0.01)
    named = torch.optim.AdamW(reversed(list(model.named_parameters())), lr=0.01)
    for optimizer in (positional, named):
        optimizer.step()
    ours = optimlab.AdamW(model.named_parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing fresh, nothing dropped: no warning
        ours.load_state_dict(positional.state_dict())
        assert all(bitwise_equal(ours.state[p], positional.state[p])
                   for p in model.parameters())
        ours.load_state_dict(named.state_dict())  # saved in reverse order: matched by name
        assert all(bitwise_equal(ours.state[p], named.state[p]) for p in model.parameters())
    assert ours.param_groups[0]["param_names"] == [n for n, _ in model.named_parameters()]
    back = torch.optim.AdamW(model.parameters())
    back.load_state_dict(ours.state_dict())  # torch ignores names: positional
    assert all(bitwise_equal(back.state[p], ours.state[p]) for p in model.parameters())
