"""Property tests over shapes and hyperparameters: finite inputs never give a non-finite
output, and lr = 0 leaves the parameters unchanged."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab

SETTINGS = settings(max_examples=60, deadline=None)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
unit = st.floats(0.0, 0.999)
decay = st.floats(0.0, 1.0)
forms = st.sampled_from(["l2", "decoupled", "independent"])
placements = st.sampled_from(["outside", "inside"])


@st.composite
def sgd_kwargs(draw):
    momentum = draw(unit)
    nesterov = momentum > 0 and draw(st.booleans())
    form = draw(st.sampled_from(["heavy_ball", "ema"]))
    dampening = 0.0 if nesterov or form == "ema" else draw(st.floats(0.0, 1.0))
    return {"momentum": momentum, "dampening": dampening, "nesterov": nesterov,
            "momentum_form": form, "lr_in_momentum": draw(st.booleans())}


OPTIONS = {
    "SGD": sgd_kwargs(),
    "Adagrad": st.fixed_dictionaries({
        "lr_decay": st.floats(0.0, 1.0), "initial_accumulator_value": st.floats(0.0, 1.0),
        "eps": st.floats(1e-10, 1.0), "eps_placement": placements}),
    "RMSprop": st.fixed_dictionaries({
        "alpha": unit, "eps": st.floats(1e-10, 1.0), "momentum": unit,
        "centered": st.booleans(), "eps_placement": placements,
        "lr_in_momentum": st.booleans(), "initial_accumulator_value": st.floats(0.0, 1.0)}),
    "Adam": st.fixed_dictionaries({
        "betas": st.tuples(unit, unit), "eps": st.floats(1e-10, 1.0), "amsgrad": st.booleans(),
        "bias_correction": st.booleans(), "eps_root": st.floats(0.0, 1e-3),
        "eps_placement": st.sampled_from(["outside", "inside", "hat"])}),
}
OPTIONS["AdamW"] = OPTIONS["Adam"]


@st.composite
def problems(draw):
    name = draw(st.sampled_from(sorted(OPTIONS)))
    kwargs = {**draw(OPTIONS[name]), "lr": draw(st.floats(0.0, 1.0)),
              "weight_decay": draw(decay), "weight_decay_form": draw(forms),
              "maximize": draw(st.booleans())}
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    shape = draw(shapes)
    magnitude = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    seed = draw(st.integers(0, 2**31 - 1))
    return name, kwargs, dtype, shape, magnitude, seed


def _train(name, kwargs, dtype, shape, magnitude, seed, steps=8):
    gen = torch.Generator().manual_seed(seed)
    start = torch.randn(shape, dtype=dtype, generator=gen) * magnitude
    param = start.clone().requires_grad_()
    optimizer = getattr(optimlab, name)([param], **kwargs)
    for _ in range(steps):
        param.grad = torch.randn(shape, dtype=dtype, generator=gen) * magnitude
        optimizer.step()
    return start, param.detach(), optimizer


@SETTINGS
@given(problems())
def test_finite_inputs_give_finite_outputs(problem) -> None:
    _, final, optimizer = _train(*problem)
    assert torch.isfinite(final).all(), problem
    for state in optimizer.state.values():
        assert all(torch.isfinite(v).all() for v in state.values()), problem


@SETTINGS
@given(problems())
def test_zero_lr_leaves_params_unchanged(problem) -> None:
    name, kwargs, *rest = problem
    if kwargs["weight_decay_form"] == "independent":  # θ ← θ(1 − λ) does not scale with lr
        kwargs = {**kwargs, "weight_decay": 0.0}
    start, final, _ = _train(name, {**kwargs, "lr": 0.0}, *rest)
    assert torch.equal(start, final), problem
