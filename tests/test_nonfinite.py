"""Non-finite gradients: ``nonfinite="skip"`` drops the whole step, ``"raise"`` names the
parameter, and neither changes a single bit; ``"ignore"`` (the default) does what torch does.

Every optimizer under every option set of the registry on every engine, and each optimizer
with bf16 and 8-bit moments (tests/cases.py's with_state_dtypes); NaN, +Inf and -Inf in
the first, a middle and the last parameter.
"""

from __future__ import annotations

import io
import re

import pytest
import torch
from cases import (
    BIG_SHAPE,
    TWINNED_NAMES,
    Case,
    optimizer_class,
    taken_shape,
    with_state_dtypes,
)
from cases import NAMES as CLASS_NAMES
from snapshots import bitwise_equal, snapshot

import optimlab
from optimlab.engines import ENGINES

SHAPES = [(3,), (4, 2), (), (2, 3)]  # two groups: [p0, p1], [p2, p3]
PLACES = {"first": 0, "middle": 2, "last": 3}
BAD = [float("nan"), float("inf"), -float("inf")]
NAMES = ["encoder.weight", "encoder.bias", "head.scale", "head.weight"]


def _params(gen: torch.Generator, shapes=SHAPES, cls=None) -> list[torch.Tensor]:
    """Random params of ``shapes``, as ``cls``'s rule takes them (cases.taken_shape)."""
    shapes = [taken_shape(cls, s) for s in shapes] if cls is not None else shapes
    return [torch.randn(shape, generator=gen).requires_grad_() for shape in shapes]


def _grouped(params: list[torch.Tensor], named: bool) -> list[dict]:
    items = list(zip(NAMES, params, strict=True)) if named else params
    return [{"params": items[:2]}, {"params": items[2:], "lr": 0.003}]


def _label(where: int, named: bool) -> str:
    return repr(NAMES[where]) if named else f"group {where // 2}, index {where % 2}"


def _set_grads(params, gen, bad=None, where=None) -> None:
    for index, param in enumerate(params):
        param.grad = torch.randn(param.shape, generator=gen)
        if index == where:
            param.grad.view(-1)[-1] = bad


def _events() -> list[tuple[float, int] | None]:
    """Good steps (None) and every (bad value, place) between them."""
    events: list[tuple[float, int] | None] = [None, None]
    for bad in BAD:
        for where in PLACES.values():
            events += [(bad, where), None]
    return events


@pytest.mark.parametrize(("case", "state_dtype", "engine"),
                         with_state_dtypes(sorted(ENGINES), every_case=False))
@pytest.mark.parametrize("policy", ["skip", "raise"])
def test_a_bad_step_changes_nothing(policy: str, case: Case, state_dtype, engine: str,
                                    seed: int) -> None:
    """Each bad step leaves every param and state tensor (step counter included) bit for
    bit as it was; the run equals a run that never saw the bad batches. With bf16 or 8-bit
    moments the middle param is big enough to store them so (codecs.SMALL_TENSOR)."""
    named = policy == "raise" or seed % 2 == 0  # "skip" needs no names; try both
    gen, bad_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    params = _params(gen, SHAPES if state_dtype is None else [*SHAPES[:2], BIG_SHAPE, SHAPES[3]],
                     case.cls)
    twin_gen = torch.Generator()
    twin_gen.set_state(gen.get_state())  # the twin draws the good batches, bad_gen the bad
    twin_params = [p.detach().clone().requires_grad_() for p in params]
    optimizer = case.build(_grouped(params, named), engine=engine, nonfinite=policy,
                           state_dtype=state_dtype)
    twin = case.build(_grouped(twin_params, named), engine=engine, state_dtype=state_dtype)
    skipped = 0
    for event in _events():
        if event is None:
            _set_grads(params, gen)
            _set_grads(twin_params, twin_gen)
            optimizer.step()
            twin.step()
            continue
        bad, where = event
        _set_grads(params, bad_gen, bad, where)
        before = snapshot(params, optimizer)
        if policy == "raise":
            message = f"gradient of parameter {re.escape(_label(where, named))} holds NaN or Inf"
            with pytest.raises(FloatingPointError, match=message):
                optimizer.step()
        else:
            optimizer.step()
            skipped += 1
        assert bitwise_equal(snapshot(params, optimizer), before), (bad, where)
        assert optimizer.skipped_steps == skipped
    assert bitwise_equal(snapshot(params, optimizer), snapshot(twin_params, twin))
    assert [g["skipped_steps"] for g in optimizer.state_dict()["param_groups"]] == [skipped] * 2


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("name", CLASS_NAMES)
def test_a_bad_first_step_creates_no_state(name: str, engine: str, gen) -> None:
    for policy in ("skip", "raise"):
        params = _params(gen, cls=getattr(optimlab, name))
        kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
        optimizer = optimizer_class(name)(params, nonfinite=policy, engine=engine, **kwargs)
        before = snapshot(params, optimizer)
        _set_grads(params, gen, float("nan"), 1)
        if policy == "raise":
            with pytest.raises(FloatingPointError, match="group 0, index 1"):
                optimizer.step()
        else:
            optimizer.step()
        assert bitwise_equal(snapshot(params, optimizer), before)
        assert len(optimizer.state) == (len(params) if name == "Adagrad" else 0)


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("name", TWINNED_NAMES)
def test_ignore_lets_it_through_as_torch_does(name: str, engine: str, gen) -> None:
    cls = getattr(optimlab, name)
    start = torch.randn(taken_shape(cls, (5,)), generator=gen)
    grad = torch.randn(start.shape, generator=gen)
    grad.view(-1)[2] = float("nan")
    ours = start.clone().requires_grad_()
    theirs = start.clone().requires_grad_()
    mine = cls([ours], lr=0.1, engine=engine)
    other = optimlab.registry.torch_twin(cls)([theirs], lr=0.1)
    for param, optimizer in ((ours, mine), (theirs, other)):
        param.grad = grad.clone()
        optimizer.step()
    assert mine.nonfinite == "ignore" and mine.skipped_steps == 0
    assert torch.equal(ours.isnan(), theirs.isnan())
    # Rprop steps by sign(g), and torch's sign(NaN) is 0: the NaN waits in state["prev"]
    assert ours.view(-1)[2].isnan() or (
        name == "Rprop" and mine.state[ours]["prev"].view(-1)[2].isnan())


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_kind_of_gradient_is_checked(engine: str, gen) -> None:
    """Low precision, complex and sparse gradients, params without a gradient, 0-element
    params; a closure's loss is returned even when the step is skipped."""
    low = torch.randn(4, generator=gen).to(torch.bfloat16).requires_grad_()
    half = torch.randn(3, generator=gen).to(torch.float16).requires_grad_()
    complex_param = torch.randn(3, dtype=torch.complex64, generator=gen).requires_grad_()
    table = torch.randn(6, 2, dtype=torch.float64, generator=gen).requires_grad_()
    empty = torch.randn(0, 3, generator=gen).requires_grad_()
    unused = torch.randn(2, generator=gen).requires_grad_()
    params = [low, half, complex_param, table, empty, unused]
    optimizer = optimlab.SGD(params, lr=0.1, nonfinite="skip", engine=engine)

    def grads(bad_index: int | None, bad: float) -> None:
        low.grad = torch.randn(4, generator=gen).to(torch.bfloat16)
        half.grad = torch.randn(3, generator=gen).to(torch.float16)
        complex_param.grad = torch.randn(3, dtype=torch.complex64, generator=gen)
        values = torch.randn(2, 2, dtype=torch.float64, generator=gen)
        empty.grad = torch.randn(0, 3, generator=gen)
        if bad_index == 0:
            low.grad[1] = bad
        elif bad_index == 1:
            half.grad[0] = bad  # fp16 overflow shows up as Inf
        elif bad_index == 2:
            complex_param.grad[2] = complex(0.0, bad)  # only the imaginary part
        elif bad_index == 3:
            values[1, 0] = bad
        table.grad = torch.sparse_coo_tensor(torch.tensor([[1, 4]]), values, (6, 2),
                                             check_invariants=True)

    skipped = 0
    for bad_index in (0, 1, 2, 3):
        for bad in BAD:
            grads(bad_index, bad)
            before = snapshot(params, optimizer)
            loss = optimizer.step(lambda: torch.tensor(1.5))
            skipped += 1
            assert loss == 1.5 and optimizer.skipped_steps == skipped
            assert bitwise_equal(snapshot(params, optimizer), before), (bad_index, bad)
    grads(None, 0.0)
    before = snapshot(params, optimizer)
    optimizer.step()
    assert not bitwise_equal(snapshot(params, optimizer)[0][:4], before[0][:4])


def test_the_count_survives_checkpoints_and_torch_optim(gen) -> None:
    """The count lives in the param groups, which torch.optim, ZeRO's consolidation and
    torch.distributed.checkpoint all carry."""
    params = _params(gen)
    optimizer = optimlab.AdamW(_grouped(params, True), nonfinite="skip")
    for where in (0, 3):
        _set_grads(params, gen, float("inf"), where)
        optimizer.step()
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    fresh = optimlab.AdamW(_grouped(params, True), nonfinite="skip")
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.skipped_steps == 2
    through_torch = torch.optim.AdamW(_grouped(params, True))
    through_torch.load_state_dict(fresh.state_dict())
    back = optimlab.AdamW(_grouped(params, True))
    back.load_state_dict(through_torch.state_dict())
    assert back.skipped_steps == 2
    back.add_param_group({"params": [("extra", torch.randn(2, requires_grad=True))]})
    assert [g["skipped_steps"] for g in back.param_groups] == [2, 2, 2]
    plain = optimlab.AdamW(_grouped(params, True))
    plain.load_state_dict(torch.optim.AdamW(_grouped(params, True)).state_dict())
    assert plain.skipped_steps == 0


def test_skipped_steps_is_not_a_hyperparameter(gen) -> None:
    """The rule never sees the count, so a compiled engine has nothing to recompile for."""
    seen = []
    optimizer = optimlab.Adam([torch.randn(2, requires_grad=True)], nonfinite="skip")
    original = optimizer.view
    optimizer.view = lambda group: seen.append(original(group)) or seen[-1]
    optimizer.param_groups[0]["params"][0].grad = torch.randn(2, generator=gen)
    optimizer.step()
    assert "skipped_steps" not in seen[-1].hp() and "skipped_steps" in optimizer.param_groups[0]
