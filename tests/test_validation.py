"""Bad input is refused at construction (and in add_param_group, and at step for groups
changed by hand) with an error naming the argument, the value and the valid range; nothing
is half-applied."""

from __future__ import annotations

import pytest
import torch
from cases import optimizer_class

import optimlab


def _param():
    return torch.randn(3, requires_grad=True)


BAD = [
    ("SGD", {"lr": -0.1}, "lr=-0.1", "lr >= 0"),
    ("SGD", {"lr": float("nan")}, "lr=nan", "lr >= 0"),
    ("SGD", {"momentum": -0.5}, "momentum=-0.5", "0 <= momentum < 1"),
    ("SGD", {"momentum": 1.0}, "momentum=1.0", "0 <= momentum < 1"),
    ("SGD", {"weight_decay": -1e-4}, "weight_decay=-0.0001", "weight_decay >= 0"),
    ("SGD", {"nesterov": True}, "nesterov=True", "momentum > 0"),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening=0.1",
     "dampening = 0"),
    ("SGD", {"momentum_form": "exponential"}, "momentum_form='exponential'", "'heavy_ball'"),
    ("SGD", {"momentum": 0.9, "momentum_form": "ema", "dampening": 0.5}, "dampening=0.5",
     "dampening=0"),
    ("SGD", {"weight_decay": 2.0, "weight_decay_form": "independent"}, "weight_decay",
     "<= 1"),
    ("SGD", {"lr": torch.tensor([0.1, 0.2])}, "lr", "1-element"),
    ("Adagrad", {"eps": -1e-10}, "eps=-1e-10", "eps >= 0"),
    ("Adagrad", {"lr_decay": -0.1}, "lr_decay=-0.1", "lr_decay >= 0"),
    ("Adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value=-1.0", ">= 0"),
    ("Adagrad", {"eps_placement": "under"}, "eps_placement='under'", "'inside'"),
    ("RMSprop", {"alpha": 1.0}, "alpha=1.0", "0 <= alpha < 1"),
    ("RMSprop", {"alpha": -0.1}, "alpha=-0.1", "0 <= alpha < 1"),
    ("RMSprop", {"momentum": -0.9}, "momentum=-0.9", "0 <= momentum < 1"),
    ("RMSprop", {"centered": "yes"}, "centered='yes'", "[False, True]"),
    ("Adam", {"betas": (0.9, 1.0)}, "betas[1]=1.0", "0 <= betas[1] < 1"),
    ("Adam", {"betas": (-0.1, 0.999)}, "betas[0]=-0.1", "0 <= betas[0] < 1"),
    ("Adam", {"betas": 0.9}, "betas=0.9", "a pair"),
    ("Adam", {"eps": -1e-8}, "eps=-1e-08", "eps >= 0"),
    ("Adam", {"eps_root": -1.0}, "eps_root=-1.0", "eps_root >= 0"),
    ("Adam", {"decoupled_weight_decay": True, "weight_decay_form": "l2"},
     "decoupled_weight_decay=True", "'decoupled'"),
    ("AdamW", {"weight_decay": -0.01}, "weight_decay=-0.01", "weight_decay >= 0"),
    ("AdamW", {"weight_decay_form": "coupled"}, "weight_decay_form='coupled'", "'independent'"),
    ("AdamW", {"preset": "pytorch"}, "preset='pytorch'", "'torch'"),
    ("Adam", {"preset": "timm_tf"}, "preset='timm_tf'", "['torch', 'keras', 'optax']"),
    ("RMSprop", {"preset": "tf"}, "preset='tf'", "'timm_tf'"),
    ("SGD", {"momentum": 0.9, "lr_in_momentum": "yes"}, "lr_in_momentum='yes'",
     "[False, True]"),
    ("RMSprop", {"lr_in_momentum": "no"}, "lr_in_momentum='no'", "[False, True]"),
    ("RMSprop", {"initial_accumulator_value": -0.5}, "initial_accumulator_value=-0.5",
     "initial_accumulator_value >= 0"),
    ("RMSprop", {"eps_placement": "hat"}, "eps_placement='hat'", "['outside', 'inside']"),
    ("Adam", {"eps_placement": "above"}, "eps_placement='above'", "'hat'"),
    ("Adam", {"preset": "keras", "decoupled_weight_decay": True, "weight_decay_form": "l2"},
     "decoupled_weight_decay=True", "'decoupled'"),
    ("AdamW", {"engine": "turbo"}, "engine='turbo'", "'reference'"),
    ("AdamW", {"differentiable": True, "state_dtype": torch.int8}, "differentiable=True",
     "state_dtype None or a float dtype"),
    ("AdamW", {"state_dtype": torch.int16}, "state_dtype=torch.int16", "torch.int8"),
]


@pytest.mark.parametrize(("name", "kwargs", "names", "valid"), BAD, ids=lambda x: str(x))
def test_bad_hyperparameter_is_refused_with_its_range(name, kwargs, names, valid) -> None:
    with pytest.raises(ValueError, match="valid") as error:
        optimizer_class(name)([_param()], **kwargs)
    message = str(error.value)
    assert name in message and names in message and valid in message, message


@pytest.mark.parametrize(("params", "words"), [
    ([], "params is empty"),
    (torch.randn(3, requires_grad=True), "single tensor"),
    ({torch.randn(3, requires_grad=True)}, "is a set"),
    ([1.0, 2.0], "params[0] of group 0 is a float"),
    ([torch.randn(2, requires_grad=True), "weight"], "params[1] of group 0 is a str"),
    ([torch.arange(3)], "dtype torch.int64"),
    ([torch.randn(3, requires_grad=True) * 2], "not a leaf"),
    (42, "not iterable"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_params_are_refused(params, words) -> None:
    with pytest.raises(ValueError) as error:
        optimlab.Adam(params)
    assert words in str(error.value) and "valid" in str(error.value)
    assert isinstance(error.value, TypeError)  # what torch.optim raises for these


def test_a_parameter_in_two_groups_or_twice_is_refused() -> None:
    shared, other = _param(), _param()
    with pytest.raises(ValueError, match=r"params\[1\] of group 1 .* already in group 0"):
        optimlab.SGD([{"params": [shared]}, {"params": [other, shared]}])
    with pytest.raises(ValueError, match="earlier in the same group"):
        optimlab.SGD([shared, other, shared])


def test_refused_add_param_group_changes_nothing() -> None:
    optimizer = optimlab.Adam([_param()], lr=0.1)
    before = [dict(g) for g in optimizer.param_groups]
    with pytest.raises(ValueError, match=r"Adam: betas\[0\]=2.0"):
        optimizer.add_param_group({"params": [_param()], "betas": (2.0, 0.9)})
    with pytest.raises(ValueError, match="already in group 0"):
        optimizer.add_param_group({"params": optimizer.param_groups[0]["params"]})
    assert [dict(g) for g in optimizer.param_groups] == before


def test_group_changed_by_hand_is_refused_at_step_and_nothing_moves(gen) -> None:
    params = [_param(), _param()]
    optimizer = optimlab.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    for p in params:
        p.grad = torch.randn(3, generator=gen)
    optimizer.step()
    snapshot = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in optimizer.state[params[0]].items()}
    optimizer.param_groups[1]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"lr=-1\.0"):
        optimizer.step()
    assert all(torch.equal(p, s) for p, s in zip(params, snapshot, strict=True))
    assert all(torch.equal(optimizer.state[params[0]][k], v) for k, v in state.items())


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop"])
def test_sparse_gradient_refused_names_optimizer_and_alternatives(name, gen) -> None:
    dense, embedding = _param(), torch.nn.Embedding(10, 3, sparse=True)
    optimizer = optimizer_class(name)([("dense", dense), *embedding.named_parameters()])
    dense.grad = torch.randn(3, generator=gen)
    embedding(torch.tensor([1, 2])).sum().backward()
    before = dense.detach().clone()
    with pytest.raises(RuntimeError) as error:
        optimizer.step()
    message = str(error.value)
    assert name in message and "'weight'" in message
    assert "optimlab.SGD" in message and "optimlab.Adagrad" in message
    assert torch.equal(dense, before) and not optimizer.state
