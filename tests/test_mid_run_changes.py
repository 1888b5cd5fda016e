"""Every group key changed mid-run, on every engine: schedulers and users write into
``param_groups`` between steps (lr, momentum, betas, weight decay...), and some changes
alter the state's structure (momentum 0 -> 0.9 adds a buffer, amsgrad a maximum,
state_dtype the storage). Each engine must follow the reference engine, and torch.optim
wherever torch takes the same change (issue 11, failure 2)."""

from __future__ import annotations

import pytest
import torch
from cases import CASES, Case, config_of
from explore import EXPLORE

import optimlab
from optimlab import codecs, engines
from optimlab.hyperparameters import (
    ArgumentError,
    Choice,
    Numbers,
    Optional_,
    OptionalFirstPair,
    Pair,
    Range,
    Whole,
)
from optimlab.registry import torch_twin

SHAPES = [(3, 5), (7,), (codecs.SMALL_TENSOR + 4,)]  # the last: narrow storage, 8-bit tail
BEFORE, AFTER = 3, 3
NARROW = (torch.bfloat16, torch.float16, torch.int8)


def _alternatives(spec, value) -> list:
    """Other valid values of a group key (validity between keys is checked after)."""
    if isinstance(spec, Choice):
        return [v for v in spec.values if v is not value and v != value]
    if isinstance(spec, OptionalFirstPair) and value[0] is None:  # ε₁ None: the dtype's
        return [(1e-6, _alternatives(spec.each, value[1])[-1])]
    if isinstance(spec, Numbers):
        return [tuple(_alternatives(spec.each, item)[-1] for item in value)]
    if isinstance(spec, Whole):
        return [max(int(spec.low), value // 2)]
    if isinstance(spec, Pair):
        return [tuple(_alternatives(spec.each, item)[-1] for item in value)]
    if isinstance(spec, Optional_):
        return [None] if value is not None else _alternatives(spec.spec, 1.0)
    if isinstance(spec, Range):
        if value == 0:
            return [0.5 * min(spec.high, 1.0)]
        return [0.0, value * 0.5] if spec.low == 0 else [value * 0.5]
    raise TypeError(spec)


def _bases() -> list[Case]:
    """Per class: torch's defaults, and a case with momentum (SGD, RMSprop) or amsgrad."""
    bases = []
    for cls in optimlab.registry.classes():
        mine = [c for c in CASES if c.name == cls.__name__ and "preset" not in c.kwargs]
        bases.append(mine[0])
        rich = [c for c in mine if c.kwargs.get("momentum") or c.kwargs.get("amsgrad")]
        bases.extend(rich[:1])
    return bases


def _changes() -> list[tuple[Case, str, object]]:
    changes = []
    for case in _bases():
        probe = case.build([torch.ones(case.shape((2,)), requires_grad=True)],
                           engine="reference")
        group = probe.param_groups[0]
        for key, spec in probe.specs.items():
            if key == "rule":  # fixed when the group is added: the group's keys are its rule's
                continue
            for value in _alternatives(spec, group[key]):
                try:
                    probe.check_group({**group, key: value})
                except ArgumentError:
                    continue  # not a valid change here (nesterov without momentum, ...)
                changes.append((case, key, value))
    return changes


CHANGES = _changes()


def _changes_structure(case: Case, key: str, value) -> bool:
    """Whether the change alters the state kept (a moment added or dropped, its storage)."""
    probe = case.build([torch.ones(case.shape((2,)), requires_grad=True)], engine="reference")
    before = config_of(case)
    after = probe.view({**probe.param_groups[0], key: value}).config
    return (before.state_keys, before.state_dtype) != (after.state_keys, after.state_dtype)


def _for_engine(engine: str) -> list:
    """Every change for auto (the default engine); for the others, the changes of the
    state's structure (where caches went stale) unless exploring: the moments kept, and
    the storage only to 8 bits, not on compiled (each storage a kernel compiled, seconds
    cold: tests/test_codecs.py compiles them all)."""
    def taken(change) -> bool:
        _, key, value = change
        if EXPLORE or engine == "auto":
            return True
        if engine == "compiled":  # a kernel compiled per change: the moments kept
            return _changes_structure(*change) and key != "state_dtype"
        return _changes_structure(*change) and (key != "state_dtype" or value == torch.int8)
    return [pytest.param(c, engine, id=f"{_id(c)}-{engine}") for c in CHANGES if taken(c)]


def _id(change) -> str:
    case, key, value = change
    return f"{case.id}-{key}->{value}"


def _train(make, key, value, seed: int, shapes=SHAPES
           ) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    generator = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=generator).requires_grad_() for s in shapes]
    optimizer = make(params)
    for step in range(BEFORE + AFTER):
        if step == BEFORE:
            for group in optimizer.param_groups:
                group[key] = value
        for p in params:
            p.grad = torch.randn(p.shape, generator=generator)
        optimizer.step()
    return params, optimizer


def _assert_follows(case: Case, key: str, value, ours: torch.Tensor,
                    theirs: torch.Tensor) -> None:
    lr = case.kwargs.get("lr", 1e-2)
    if key == "state_dtype" and value in NARROW:
        # engines may round a moment to its other neighbour (one bf16 ulp, one 8-bit code):
        # a share of a step for nearly every element; where a second moment is tiny beside
        # its block's largest, one 8-bit code is a large relative change, and that element
        # may move by up to a step per step (found by scripts/explore.sh: FOUND_BY_EXPLORE)
        distance = (ours - theirs).abs()
        assert distance.max() <= lr * AFTER, distance.max()
        assert (distance > 0.05 * lr * AFTER).float().mean() <= 1e-3, \
            f"{int((distance > 0.05 * lr * AFTER).sum())} of {distance.numel()} elements"
        return
    # fp32 engines round differently (the generated kernel multiplies by reciprocals of
    # hoisted scalars); over a few steps that differs by a small share of one step's size
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6 + 1e-3 * lr)


def _follows_the_reference_engine(change, engine: str, seed: int) -> None:
    case, key, value = change
    shapes = [case.shape(s) for s in SHAPES]
    theirs, reference = _train(lambda p: case.build(p, engine="reference"), key, value, seed,
                               shapes)
    ours, optimizer = _train(lambda p: case.build(p, engine=engine), key, value, seed, shapes)
    for p, q in zip(ours, theirs, strict=True):
        _assert_follows(case, key, value, p.detach(), q.detach())
        assert sorted(optimizer.state[p]) == sorted(reference.state[q])


@pytest.mark.parametrize(("change", "engine"), [
    p for e in engines.ENGINES if e != "reference" for p in _for_engine(e)])
def test_a_mid_run_change_follows_the_reference_engine(change, engine, seed) -> None:
    _follows_the_reference_engine(change, engine, seed)


#: (case id, key, value, engine, seed) that scripts/explore.sh found failing, kept as fixed
#: cases: RMSprop's square_avg of one element, tiny beside its block's largest, rounded to
#: the other 8-bit code on the generated engine moved that element by 0.2 of a step per step
FOUND_BY_EXPLORE = [("RMSprop(momentum=0.9)", "state_dtype", torch.int8, "generated", 1492017306)]


@pytest.mark.parametrize(("case_id", "key", "value", "engine", "seed_found"), FOUND_BY_EXPLORE)
def test_what_explore_found(case_id, key, value, engine, seed_found) -> None:
    case = next(c for c in CASES if c.id == case_id)
    _follows_the_reference_engine((case, key, value), engine, seed_found)


def _torch_takes(case: Case, key: str, value) -> bool:
    """Whether torch.optim follows this change: its own key, on a configuration that
    follows its equations, and a change it does not refuse (torch's RMSprop has no
    buffer to give momentum 0 -> 0.9: a KeyError)."""
    torch_cls = torch_twin(case.cls)
    if not case.torch_parity or key not in torch_cls([torch.ones(case.shape((1,)))],
                                                     **case.kwargs).defaults:
        return False
    try:
        _train(lambda p: torch_cls(p, **case.kwargs), key, value, 0, [case.shape((2,))])
    except (AssertionError, KeyError, RuntimeError, ValueError):
        return False
    return True


def _torch_changes() -> list[tuple[Case, str, object]]:
    return [change for change in CHANGES if _torch_takes(*change)]


@pytest.mark.parametrize("engine", engines.ENGINES if EXPLORE else ("auto",))
@pytest.mark.parametrize("change", _torch_changes(), ids=_id)
def test_a_mid_run_change_follows_torch_where_torch_takes_it(change, engine, seed) -> None:
    case, key, value = change
    torch_cls = torch_twin(case.cls)
    shapes = [case.shape(s) for s in SHAPES]
    theirs, _ = _train(lambda p: torch_cls(p, **case.kwargs), key, value, seed, shapes)
    ours, _ = _train(lambda p: case.build(p, engine=engine), key, value, seed, shapes)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)
