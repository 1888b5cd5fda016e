"""Schedule-free AdamW and SGD against facebookresearch's ``schedulefree`` package, at the
training point y and the averaged point x, through train()/eval() switches and
checkpoints taken in either mode (optimlab's and the package's, both ways), fp32 and fp64,
on every engine; the fp64 reference at x; the mode's error; the values kept per group.
(tests/test_rules_reference.py holds every case against the fp64 reference at y.)"""

from __future__ import annotations

import io

import pytest
import torch
from cases import CASES, Case, firsts
from references import REFERENCES

import optimlab
from optimlab import engines

schedulefree = pytest.importorskip("schedulefree")

SHAPES = [(), (7,), (3, 4), (2, 3, 5)]
STEPS = 12
SF_CASES = [case for case in CASES if "ScheduleFree" in case.name]
KEPT = ("k", "weight_sum", "lr_max", "scheduled_lr", "train_mode")


def _package(case: Case, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    kwargs = {k: v for k, v in case.kwargs.items() if k != "maximize"}
    return getattr(schedulefree, case.name)(params, **kwargs)


def _grads(gen: torch.Generator, dtype: torch.dtype, steps: int) -> list[list[torch.Tensor]]:
    return [[torch.randn(shape, generator=gen, dtype=dtype) for shape in SHAPES]
            for _ in range(steps)]


def _step(optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
          grads: list[torch.Tensor], sign: float) -> None:
    # the package divides the gradients in place: each optimizer gets its own copy
    for param, grad in zip(params, grads, strict=True):
        param.grad = sign * grad.clone()
    optimizer.step()


def _reload(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], build
            ) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    """A fresh optimizer over fresh params holding what the model held, loaded from
    ``optimizer``'s state dict through torch.save (a checkpoint, in whatever mode)."""
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    fresh = [p.detach().clone().requires_grad_() for p in params]
    loaded = build(fresh)
    loaded.load_state_dict(torch.load(buffer, weights_only=False))
    return loaded, fresh


def _close(ours: list[torch.Tensor], theirs: list[torch.Tensor], dtype: torch.dtype) -> None:
    tolerance = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else \
        {"rtol": 2e-5, "atol": 2e-6}
    for mine, other in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine.detach(), other.detach(), **tolerance)


def _matrix() -> list:
    """Every case on the reference engine and on auto; the first case of each class on
    every other engine (an engine adds the mechanics, not the rule's options)."""
    params = []
    for case in SF_CASES:
        for engine in engines.ENGINES:
            if engine in ("reference", "auto") or case in firsts(SF_CASES):
                for dtype in (torch.float32, torch.float64):
                    params.append(pytest.param(case, engine, dtype,
                                               id=f"{case.id}-{engine}-{dtype}"))
    return params


@pytest.mark.parametrize(("case", "engine", "dtype"), _matrix())
def test_matches_the_package_at_y_and_x(case: Case, engine: str, dtype: torch.dtype,
                                        gen: torch.Generator) -> None:
    """Steps at y, eval() to x and back, a checkpoint taken in train mode (optimlab's,
    loaded by both), one in eval mode (each side reloads its own), then the package's,
    in eval mode, loaded into optimlab: y and x agree throughout."""
    sign = -1.0 if case.kwargs.get("maximize") else 1.0
    start = [torch.randn(shape, generator=gen, dtype=dtype) for shape in SHAPES]
    mine = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]

    def build(params: list[torch.Tensor]) -> optimlab.Optimizer:
        return case.build(params, engine=engine)

    ours, package = build(mine), _package(case, theirs)
    ours.train(), package.train()
    for step, grads in enumerate(_grads(gen, dtype, STEPS), start=1):
        _step(ours, mine, grads, 1.0)
        _step(package, theirs, grads, sign)
        _close(mine, theirs, dtype)
        if step == 3:  # evaluate at x, then train on
            ours.eval(), package.eval()
            _close(mine, theirs, dtype)
            ours.train(), package.train()
        if step == 5:  # a checkpoint in train mode; the package loads optimlab's
            package, theirs = _reload(ours, mine, lambda p: _package(case, p))
            ours, mine = _reload(ours, mine, build)
        if step == 8:  # a checkpoint in eval mode, as the package advises
            ours.eval(), package.eval()
            ours, mine = _reload(ours, mine, build)
            package, theirs = _reload(package, theirs, lambda p: _package(case, p))
            ours.train(), package.train()
        if step == 10 and sign > 0:  # the package's checkpoint, in eval mode, into optimlab
            # (it holds no maximize: a maximizing run would lose its sign)
            package.eval()
            ours, mine = _reload(package, theirs, build)
            ours.train(), package.train()
    for key in KEPT:
        assert ours.param_groups[0][key] == pytest.approx(package.param_groups[0][key])
    ours.eval(), package.eval()
    _close(mine, theirs, dtype)


@pytest.mark.parametrize("case", SF_CASES, ids=lambda c: c.id)
def test_averaged_point_matches_fp64_reference(case: Case, gen: torch.Generator) -> None:
    """After eval(), the params hold x of the paper's equations (tests/references.py)."""
    start = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in SHAPES]
    history = _grads(gen, torch.float64, 20)
    params = [p.clone().requires_grad_() for p in start]
    optimizer = case.build(params)
    for grads in history:
        _step(optimizer, params, grads, 1.0)
    optimizer.eval()
    reference = REFERENCES[case.name]
    for index, (param, initial) in enumerate(zip(params, start, strict=True)):
        expected = reference(initial, [g[index] for g in history], **case.kwargs,
                             average=True)
        torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=1e-12)


def test_step_in_eval_mode_is_refused_and_changes_nothing(gen: torch.Generator) -> None:
    param = torch.randn(5, generator=gen, requires_grad=True)
    optimizer = optimlab.AdamWScheduleFree([param], lr=0.1)
    param.grad = torch.randn(5, generator=gen)
    optimizer.step()
    optimizer.eval()
    before = (param.detach().clone(), {k: v.clone() for k, v in optimizer.state[param].items()},
              {k: optimizer.param_groups[0][k] for k in KEPT})
    calls = []
    with pytest.raises(RuntimeError, match=r"eval mode.*call optimizer\.train\(\)"):
        optimizer.step(lambda: calls.append(1))
    assert not calls
    assert torch.equal(param.detach(), before[0])
    assert all(torch.equal(optimizer.state[param][k], v) for k, v in before[1].items())
    assert {k: optimizer.param_groups[0][k] for k in KEPT} == before[2]
    optimizer.train()
    optimizer.step()
    assert optimizer.param_groups[0]["k"] == 2


def test_train_and_eval_are_idempotent_and_exact_inverses_in_fp64(gen: torch.Generator) -> None:
    param = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    optimizer = optimlab.SGDScheduleFree([param], lr=0.1, momentum=0.7)
    optimizer.eval()  # before any step: no z, nothing moves
    optimizer.train()
    for _ in range(3):
        param.grad = torch.randn(4, 3, generator=gen, dtype=torch.float64)
        optimizer.step()
    y = param.detach().clone()
    optimizer.eval()
    x = param.detach().clone()
    optimizer.eval()
    assert torch.equal(param.detach(), x)
    z = optimizer.state[param]["z"]
    torch.testing.assert_close(y, 0.3 * z + 0.7 * x, rtol=1e-13, atol=1e-13)
    optimizer.train()
    optimizer.train()
    torch.testing.assert_close(param.detach(), y, rtol=1e-13, atol=1e-13)


def test_kept_values_advance_only_when_the_step_succeeds(gen: torch.Generator) -> None:
    """A step that fails inside the update (a state tensor replaced by one of the wrong
    shape) or is skipped for a NaN leaves k, the weight sum and lr_max as they were."""
    params = [torch.randn(3, generator=gen, requires_grad=True) for _ in range(2)]
    optimizer = optimlab.AdamWScheduleFree(params, lr=0.1, warmup_steps=4,
                                           nonfinite="skip", engine="reference")
    for param in params:
        param.grad = torch.randn(3, generator=gen)
    optimizer.step()
    kept = {k: optimizer.param_groups[0][k] for k in KEPT}
    assert kept["k"] == 1 and kept["scheduled_lr"] == pytest.approx(0.025)
    z = optimizer.state[params[1]]["z"]
    optimizer.state[params[1]]["z"] = torch.zeros(4)
    with pytest.raises(RuntimeError):
        optimizer.step()
    assert {k: optimizer.param_groups[0][k] for k in KEPT} == kept
    optimizer.state[params[1]]["z"] = z
    params[1].grad = torch.full((3,), float("nan"))
    optimizer.step()
    assert {k: optimizer.param_groups[0][k] for k in KEPT} == kept


def test_each_group_keeps_its_own_values(gen: torch.Generator) -> None:
    """A group added later starts its own count, weight sum and warmup (as the package)."""
    first = torch.randn(3, generator=gen, requires_grad=True)
    second = torch.randn(3, generator=gen, requires_grad=True)
    optimizer = optimlab.SGDScheduleFree([first], lr=0.1, warmup_steps=2)
    package = schedulefree.SGDScheduleFree([first.detach().clone().requires_grad_()], lr=0.1,
                                           warmup_steps=2)
    package.train()
    twin_first = package.param_groups[0]["params"][0]
    for step in range(3):
        if step == 1:
            optimizer.add_param_group({"params": [second], "lr": 0.2})
            twin_second = second.detach().clone().requires_grad_()
            package.add_param_group({"params": [twin_second], "lr": 0.2})
        grads = [torch.randn(3, generator=gen) for _ in range(2)]
        first.grad, twin_first.grad = grads[0].clone(), grads[0].clone()
        if step >= 1:
            second.grad, twin_second.grad = grads[1].clone(), grads[1].clone()
        optimizer.step()
        package.step()
    assert [g["k"] for g in optimizer.param_groups] == [3, 2]
    # (the package's added group says train_mode=False, its default, and steps anyway:
    # only group 0's mode is checked; ours starts in train mode)
    for mine, other in zip(optimizer.param_groups, package.param_groups, strict=True):
        for key in KEPT[:-1]:
            assert mine[key] == pytest.approx(other[key])
    torch.testing.assert_close(second.detach(), twin_second.detach())


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (optimlab.SGDScheduleFree, {"momentum": 0.0}, r"momentum=0 is invalid.*0 < momentum < 1"),
    (optimlab.SGDScheduleFree, {"momentum": 1.0}, r"momentum=1.0 is invalid"),
    (optimlab.AdamWScheduleFree, {"betas": (0.0, 0.999)}, r"betas\[0\]=0 is invalid"),
    (optimlab.AdamWScheduleFree, {"warmup_steps": -1}, r"warmup_steps=-1 is invalid"),
    (optimlab.AdamWScheduleFree, {"weight_lr_power": -2.0}, r"weight_lr_power=-2.0"),
    (optimlab.SGDScheduleFree, {"r": float("nan")}, r"r=nan is invalid"),
])
def test_bad_input_is_refused_by_name(cls, kwargs, message) -> None:
    with pytest.raises(optimlab.ArgumentError, match=message):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)


def test_the_signature_is_the_packages() -> None:
    import inspect

    for name in ("AdamWScheduleFree", "SGDScheduleFree"):
        theirs = list(inspect.signature(getattr(schedulefree, name).__init__).parameters)
        mine = list(inspect.signature(getattr(optimlab, name).__init__).parameters)
        assert mine[:len(theirs)] == theirs


def test_the_docs_pages_examples_run() -> None:
    """docs/optimizers/schedulefree.md's examples (after the signatures) run as written."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "optimizers" / "schedulefree.md"
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"),
                        re.DOTALL | re.MULTILINE)[1:]
    namespace: dict = {}
    for number, block in enumerate(blocks, start=2):
        exec(compile(block, f"schedulefree.md, python block {number}", "exec"), namespace)
    assert namespace["evaluated"].item() < 1.0  # trained: the targets' variance is ~1
    assert namespace["checkpoint"]["optimizer"]["param_groups"][0]["train_mode"] is False
    assert not namespace["net_optimizer"].param_groups[0]["train_mode"]


def test_torch_compile_of_step_keeps_the_group_values(gen: torch.Generator) -> None:
    """torch.compile(optimizer.step) past the third step, where Dynamo turns the changing
    step count into a symbolic int: traced by Inductor, the weight sum was then written
    back stale from the third step on (views.with_group_values runs eagerly since)."""
    torch._dynamo.reset()
    start = torch.randn(10, generator=gen)
    grads = [torch.randn(10, generator=gen) for _ in range(4)]
    runs = []
    for compiled in (False, True):
        param = start.clone().requires_grad_()
        optimizer = optimlab.AdamWScheduleFree([param], lr=0.1)
        step = torch.compile(optimizer.step) if compiled else optimizer.step
        for grad in grads:
            param.grad = grad.clone()
            step()
        runs.append((param.detach(), {k: optimizer.param_groups[0][k] for k in KEPT}))
    torch.testing.assert_close(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
