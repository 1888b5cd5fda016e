"""Parity with torch.optim wherever the conventions coincide: float32 and float64, 25 steps,
several shapes and param groups, random gradients."""

from __future__ import annotations

import inspect

import pytest
import torch
from cases import TORCH_CASES, TWINNED_NAMES, Case, optimizer_class, torch_class

import optimlab
from optimlab.registry import torch_twin
from optimlab.rules import MATRIX

STEPS = 25
SHAPES = [(), (5,), (4, 3), (2, 3, 4)]
TOLERANCE = {torch.float64: {"rtol": 1e-10, "atol": 1e-12},
             torch.float32: {"rtol": 1e-5, "atol": 1e-6}}


def _twins(gen: torch.Generator, dtype: torch.dtype, shapes=SHAPES):
    start = [torch.randn(shape, dtype=dtype, generator=gen) for shape in shapes]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    return ours, theirs


def _run(optimizers, param_lists, gen, steps=STEPS, on_step=None):
    for step in range(steps):
        for index in range(len(param_lists[0])):
            grad = torch.randn(param_lists[0][index].shape, dtype=param_lists[0][index].dtype,
                               generator=gen)
            for params in param_lists:
                params[index].grad = grad.clone()
        for optimizer in optimizers:
            optimizer.step()
        if on_step:
            on_step(step)


def _decay(name: str, weight_decay: float) -> dict:
    """``weight_decay`` where torch's class has it (torch.optim.Rprop has none, and a group's
    weight_decay means nothing to it)."""
    takes = "weight_decay" in inspect.signature(getattr(torch.optim, name)).parameters
    return {"weight_decay": weight_decay} if takes else {}


def _assert_same(ours, theirs, dtype):
    for mine, other in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine.detach(), other.detach(), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_parity(case: Case, dtype: torch.dtype, gen: torch.Generator) -> None:
    ours, theirs = _twins(gen, dtype, [case.shape(s) for s in SHAPES])
    mine = case.build(ours)
    other = torch_twin(case.cls)(theirs, **case.kwargs)
    _run([mine, other], [ours, theirs], gen)
    _assert_same(ours, theirs, dtype)
    for p, q in zip(ours, theirs, strict=True):
        assert sorted(mine.state[p]) == sorted(other.state[q])


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_parity_with_param_groups_and_tensor_lr(case: Case, gen: torch.Generator) -> None:
    dtype = torch.float64
    ours, theirs = _twins(gen, dtype, [case.shape(s) for s in SHAPES])
    lr = case.kwargs["lr"]

    def groups(params):
        return [{"params": params[:2], "lr": torch.tensor(lr * 2, dtype=torch.float64)},
                {"params": params[2:3]},
                {"params": params[3:], "lr": lr / 3, **_decay(case.name, 0.05)}]

    kwargs = {k: v for k, v in case.kwargs.items() if k != "lr"}
    mine = getattr(optimlab, case.name)(groups(ours), lr=lr, **kwargs)
    other = torch_twin(case.cls)(groups(theirs), lr=lr, **kwargs)
    _run([mine, other], [ours, theirs], gen)
    _assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_parity_under_lr_schedule_and_add_param_group(case: Case, gen: torch.Generator) -> None:
    dtype = torch.float64
    ours, theirs = _twins(gen, dtype, [case.shape(s) for s in SHAPES])
    mine, other = case.build(ours[:2]), torch_twin(case.cls)(theirs[:2], **case.kwargs)
    schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5)
                  for o in (mine, other)]

    def on_step(step):
        for scheduler in schedulers:
            scheduler.step()
        if step == 6:  # params joining mid-training, with their own lr
            mine.add_param_group({"params": ours[2:], "lr": 0.003})
            other.add_param_group({"params": theirs[2:], "lr": 0.003})

    _run([mine, other], [ours, theirs], gen, on_step=on_step)
    _assert_same(ours, theirs, dtype)


@pytest.mark.parametrize("name", TWINNED_NAMES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=str)
def test_parity_on_complex_params(name: str, dtype: torch.dtype, gen: torch.Generator) -> None:
    cls = getattr(optimlab, name)
    ours, theirs = _twins(gen, dtype, shapes=[(3, 5), (2, 4)] if
                          cls.rule.structure == MATRIX else [(3,), (2, 4)])
    kwargs = {"lr": 0.01, **_decay(name, 0.1)}
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = 0.9
    if not cls.rule.elementwise:  # no meaning on (re, im) pairs: refused, as torch does
        with pytest.raises(optimlab.ArgumentError, match="does not support complex"):
            cls(ours, **kwargs)
        other = torch_twin(cls)(theirs, **kwargs)
        with pytest.raises(RuntimeError, match="does not support complex"):
            _run([other], [theirs], gen, steps=1)
        return
    mine = cls(ours, **kwargs)
    other = torch_twin(cls)(theirs, **kwargs)
    _run([mine, other], [ours, theirs], gen)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    _assert_same(ours, theirs, real)


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.1}, {"lr": 0.1, "maximize": True}, {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.1, "momentum": 0.9, "dampening": 0.2}, {"lr": 0.1, "momentum": 0.9, "nesterov": True},
], ids=str)
def test_sgd_sparse_gradients_as_torch(kwargs, gen: torch.Generator) -> None:
    _sparse_parity("SGD", kwargs, gen)


@pytest.mark.parametrize("kwargs", [{"lr": 0.1}, {"lr": 0.1, "lr_decay": 0.1, "maximize": True},
                                    {"lr": 0.1, "initial_accumulator_value": 0.5}], ids=str)
def test_adagrad_sparse_gradients_as_torch(kwargs, gen: torch.Generator) -> None:
    _sparse_parity("Adagrad", kwargs, gen)


@pytest.mark.parametrize(("name", "kwargs"), [
    ("SGD", {"lr": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1, "weight_decay_form": "decoupled"}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "eps_placement": "inside", "eps": 1e-3}),
], ids=str)
def test_sparse_gradient_moves_as_its_dense_twin(name, kwargs, gen: torch.Generator) -> None:
    """Where torch.optim refuses a sparse gradient (weight decay), optimlab takes it, and
    the step is exactly that of the same gradient made dense."""
    sparse = torch.nn.Embedding(20, 4, sparse=True).double()
    dense = torch.nn.Embedding(20, 4, sparse=False).double()
    dense.load_state_dict(sparse.state_dict())
    _train_twins([sparse, dense], [optimizer_class(name)(m.parameters(), **kwargs)
                                   for m in (sparse, dense)], gen)
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=1e-12, atol=1e-12)


def _sparse_parity(name, kwargs, gen):
    embeddings = [torch.nn.Embedding(20, 4, sparse=True).double() for _ in range(2)]
    embeddings[1].load_state_dict(embeddings[0].state_dict())
    optimizers = [optimizer_class(name)(embeddings[0].parameters(), **kwargs),
                  torch_class(name)(embeddings[1].parameters(), **kwargs)]
    _train_twins(embeddings, optimizers, gen)
    torch.testing.assert_close(embeddings[0].weight, embeddings[1].weight, rtol=1e-12,
                               atol=1e-12)


def _train_twins(embeddings, optimizers, gen, steps=10):
    for _ in range(steps):
        rows = torch.randint(0, 20, (6,), generator=gen)  # repeated rows included
        weights = torch.randn(6, 4, dtype=torch.float64, generator=gen)
        for embedding, optimizer in zip(embeddings, optimizers, strict=True):
            optimizer.zero_grad()
            (embedding(rows) * weights).sum().backward()
            optimizer.step()
