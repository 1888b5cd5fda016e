"""optimlab.schedules: values at the boundaries, closed forms and transformers' formulas
(tests/schedule_references.py), monotonicity, torch's LambdaLR conventions (call order,
state save/load) and refused input."""

from __future__ import annotations

import io
import itertools
import math
import random
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from schedule_references import (
    closed_form,
    hf_constant_with_warmup,
    hf_cosine_with_warmup,
    hf_linear_with_warmup,
    hf_wsd,
)

import optimlab
from optimlab import schedules
from optimlab.schedules import Schedule


def random_lengths(count: int, seed: int) -> list[tuple[int, int]]:
    """(warmup, total) pairs: random, plus the edge warmups 0 and 1."""
    rng = random.Random(seed)
    pairs = [(0, rng.randint(2, 300)), (1, rng.randint(2, 300))]
    for _ in range(count):
        total = rng.randint(2, 500)
        pairs.append((rng.randint(0, total - 1), total))
    return pairs


close = pytest.approx

# --- equality with transformers ---------------------------------------------------------------


@pytest.mark.parametrize(("warmup", "total"), random_lengths(12, seed=1))
def test_linear_equals_transformers_get_linear_schedule_with_warmup(warmup, total):
    schedule = schedules.linear(total, warmup)
    for step in range(total + 20):  # past the end too: both stay at 0
        assert schedule(step) == close(hf_linear_with_warmup(step, warmup, total), abs=1e-12)


@pytest.mark.parametrize(("warmup", "total"), random_lengths(12, seed=2))
def test_cosine_equals_transformers_get_cosine_schedule_with_warmup(warmup, total):
    schedule = schedules.cosine(total, warmup)
    for step in range(total + 1):
        assert schedule(step) == close(hf_cosine_with_warmup(step, warmup, total), abs=1e-12)


@pytest.mark.parametrize(("warmup", "total"), random_lengths(6, seed=3))
def test_cosine_with_floor_equals_transformers_cosine_with_min_lr(warmup, total):
    ratio = random.Random(total).uniform(0.01, 0.5)
    schedule = schedules.cosine(total, warmup, min_lr_ratio=ratio)
    for step in range(total + 1):
        expected = hf_cosine_with_warmup(step, warmup, total, min_lr_rate=ratio)
        assert schedule(step) == close(expected, abs=1e-12)


def test_cosine_stays_at_its_floor_past_the_end_where_transformers_climbs_back():
    schedule = schedules.cosine(100, 10, min_lr_ratio=0.1)
    assert [schedule(step) for step in (100, 101, 150, 10_000)] == [close(0.1)] * 4
    assert hf_cosine_with_warmup(150, 10, 100) > 0.1  # transformers' cosine rises after T


@pytest.mark.parametrize(("warmup", "total"), random_lengths(6, seed=4))
def test_constant_equals_transformers_get_constant_schedule_with_warmup(warmup, total):
    schedule = schedules.constant(total, warmup)
    for step in range(total + 20):
        assert schedule(step) == close(hf_constant_with_warmup(step, warmup))


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_equals_transformers_get_wsd_schedule(shape):
    rng = random.Random(shape)
    for _ in range(6):
        total = rng.randint(10, 400)
        decay = rng.randint(1, total // 2)
        warmup = rng.randint(0, total - decay)
        schedule = schedules.wsd(total, warmup, decay, decay_shape=shape)
        stable = total - warmup - decay
        for step in range(total + 10):
            expected = hf_wsd(step, warmup, stable, decay, shape)
            assert schedule(step) == close(expected, abs=1e-12)


# --- boundaries -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [schedules.linear, schedules.cosine])
def test_decaying_schedules_at_step_0_end_of_warmup_last_step_and_past_the_end(make):
    total, warmup, floor = 1000, 0.1, 0.05
    schedule = make(total, warmup, min_lr_ratio=floor)
    assert schedule.warmup_steps == 100
    assert schedule(0) == 0.0                       # the first update runs at lr 0
    assert schedule(1) == close(1 / 100)
    assert schedule(99) == close(99 / 100)          # last warmup step
    assert schedule(100) == 1.0                     # end of warmup: the peak lr
    assert floor < schedule(999) < schedule(101) < 1.0
    assert schedule(1000) == close(floor)           # last step
    assert schedule(1001) == close(floor)           # past the end
    assert schedule(10**9) == close(floor)


def test_midpoints_of_the_decays():
    assert schedules.linear(110, 10, min_lr_ratio=0.2)(60) == close(0.2 + 0.8 * 0.5)
    assert schedules.cosine(110, 10, min_lr_ratio=0.2)(60) == close(0.2 + 0.8 * 0.5)
    assert schedules.cosine(110, 10)(35) == close(0.5 * (1 + math.cos(math.pi / 4)))


def test_without_warmup_the_schedule_starts_at_the_peak():
    for make in (schedules.linear, schedules.cosine, schedules.constant, schedules.wsd):
        assert make(50, 0)(0) == 1.0


def test_constant_is_one_after_warmup_forever():
    schedule = schedules.constant(200, 0.25)
    assert [schedule(s) for s in (0, 25, 49, 50, 200, 5000)] == [0.0, 0.5, 0.98, 1, 1, 1]


def test_wsd_phases():
    schedule = schedules.wsd(1000, warmup=100, decay=0.2, min_lr_ratio=0.1)
    assert (schedule.warmup_steps, schedule.decay_steps) == (100, 200)
    assert schedule(50) == 0.5
    assert all(schedule(step) == 1.0 for step in range(100, 801))  # stable through 800
    assert schedule(900) == close(0.1 + 0.9 * 0.5)
    assert schedule(1000) == close(0.1)
    assert schedule(2000) == close(0.1)
    one_minus_sqrt = schedules.wsd(1000, 100, 200, decay_shape="1-sqrt")
    assert one_minus_sqrt(850) == close(1 - math.sqrt(0.25))


def test_warmup_as_long_as_the_run_ends_at_the_floor():
    schedule = schedules.linear(10, 10, min_lr_ratio=0.3)
    assert [schedule(s) for s in (0, 5, 9)] == [0.0, 0.5, 0.9]
    assert schedule(10) == close(0.3)
    assert schedules.linear(10, 10)(10) == hf_linear_with_warmup(10, 10, 10) == 0.0


def test_a_one_step_run():
    assert [schedules.cosine(1)(s) for s in (0, 1, 2)] == [1.0, 0.0, 0.0]
    assert [schedules.linear(1, 1)(s) for s in (0, 1)] == [0.0, 0.0]


def test_warmup_fraction_is_floor_of_fraction_times_total_as_seed_002_writes_it():
    for total in random.Random(5).sample(range(1, 10_000), 30):
        assert schedules.linear(total, 0.1).warmup_steps == int(0.1 * total)
    assert schedules.linear(100, 0.29).warmup_steps == 29  # 0.29 * 100 = 28.999999999999996
    assert schedules.linear(7, 1.0).warmup_steps == 7
    assert schedules.linear(7, 0.0).warmup_steps == 0
    assert schedules.linear(7, 1).warmup_steps == 1  # an int is steps, a float a fraction


def test_fractional_steps_interpolate_for_plotting():
    schedule = schedules.linear(110, 10)
    assert schedule(2.5) == 0.25
    assert schedule(60.5) == close(0.495)


# --- shape properties, on random schedules ----------------------------------------------------

kinds = st.sampled_from(["linear", "cosine", "constant", "wsd"])


@st.composite
def random_schedules(draw) -> Schedule:
    kind = draw(kinds)
    total = draw(st.integers(1, 500))
    warmup = draw(st.integers(0, total) | st.floats(0.0, 1.0))
    if kind == "constant":
        return schedules.constant(total, warmup)
    floor = draw(st.floats(0.0, 1.0))
    if kind == "wsd":
        warmup_steps = schedules.steps_of("test", "warmup", warmup, total)
        decay = draw(st.integers(0, total - warmup_steps))
        shape = draw(st.sampled_from(list(schedules.DECAY_SHAPES)))
        return schedules.wsd(total, warmup, decay, min_lr_ratio=floor, decay_shape=shape)
    return schedules.get(kind, total, warmup, min_lr_ratio=floor)


@given(random_schedules())
def test_rises_through_warmup_then_never_rises_and_stays_in_floor_to_one(schedule):
    warmup, total = schedule.warmup_steps, schedule.total_steps
    values = [schedule(step) for step in range(total + 3)]
    assert values[:warmup] == sorted(values[:warmup])
    if warmup < total:
        assert values[warmup] == 1.0  # the peak, right after the warmup
    after = values[warmup:]
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(after))
    assert all(0.0 <= value <= 1.0 for value in values)
    assert all(value >= schedule.min_lr_ratio - 1e-12 for value in after)
    assert values[total] == close(schedule.min_lr_ratio)  # the last step sits at the floor


@given(kinds, st.integers(1, 500), st.data())
def test_every_schedule_is_its_closed_form_at_every_step(kind, total, data):
    warmup = data.draw(st.integers(0, total), label="warmup")
    floor = 1.0 if kind == "constant" else data.draw(st.floats(0.0, 1.0), label="floor")
    decay = {"linear": total - warmup, "cosine": total - warmup, "constant": 0}.get(kind)
    shape = {"linear": "linear", "cosine": "cosine", "constant": "linear"}.get(kind)
    if kind == "wsd":
        decay = data.draw(st.integers(0, total - warmup), label="decay")
        shape = data.draw(st.sampled_from(["linear", "cosine", "1-sqrt"]), label="shape")
        schedule = schedules.wsd(total, warmup, decay, min_lr_ratio=floor, decay_shape=shape)
    elif kind == "constant":
        schedule = schedules.constant(total, warmup)
    else:
        schedule = schedules.get(kind, total, warmup, min_lr_ratio=floor)
    steps = [*range(total + 3), data.draw(st.floats(0.0, total + 10.0), label="a float step"),
             data.draw(st.integers(0, 10**9), label="far past the end")]
    for step in steps:
        value = schedule(step)
        assert isinstance(value, float)
        expected = closed_form(kind, total, warmup, decay, floor, shape, step)
        assert value == close(expected, rel=1e-12, abs=1e-12), (step, value, expected)


# --- as a torch LRScheduler -------------------------------------------------------------------


def make_optimizer(lrs=(1e-2, 3e-3), cls=optimlab.AdamW) -> torch.optim.Optimizer:
    generator = torch.Generator().manual_seed(0)
    groups = [{"params": [torch.randn(4, 3, generator=generator, requires_grad=True)],
               "lr": lr} for lr in lrs]
    return cls(groups)


def train(optimizer, scheduler, steps: int) -> list[list[float]]:
    """The lrs each optimizer.step() ran at, stepping in torch's order."""
    used = []
    for _ in range(steps):
        for group in optimizer.param_groups:
            group["params"][0].grad = torch.randn_like(group["params"][0])
        used.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return used


@pytest.mark.parametrize("cls", [optimlab.AdamW, optimlab.SGD, torch.optim.AdamW,
                                 torch.optim.SGD])
def test_scheduler_follows_lambdalr_call_order_with_any_optimizer(cls):
    schedule = schedules.cosine(30, warmup=0.2, min_lr_ratio=0.1)
    optimizer = make_optimizer(cls=cls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when the order is wrong
        scheduler = schedule.scheduler(optimizer)
        assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
        used = train(optimizer, scheduler, 40)
    for step, lrs in enumerate(used):  # optimizer step k runs at initial_lr * m(k)
        assert lrs == close([1e-2 * schedule(step), 3e-3 * schedule(step)])
    assert scheduler.last_epoch == 40
    assert scheduler.get_last_lr() == close([1e-2 * 0.1, 3e-3 * 0.1])


def test_scheduler_state_saves_and_loads_and_resumes_exactly():
    schedule = schedules.wsd(50, warmup=5, decay=0.3, min_lr_ratio=0.05, decay_shape="cosine")
    reference = make_optimizer()
    reference_lrs = train(reference, schedule.scheduler(reference), 50)

    optimizer = make_optimizer()
    scheduler = schedule.scheduler(optimizer)
    first = train(optimizer, scheduler, 17)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer)  # weights_only: the schedule is plain data

    resumed = make_optimizer()
    # A scheduler built with another schedule takes the saved one (LambdaLR restores the
    # fields of a callable object), as torch documents: scheduler first, then the loads.
    resumed_scheduler = schedules.linear(999).scheduler(resumed)
    resumed.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    assert resumed_scheduler.lr_lambdas[0] == schedule
    for got, expected in zip(first + train(resumed, resumed_scheduler, 33), reference_lrs,
                             strict=True):
        assert got == close(expected)


def test_state_dict_holds_the_schedule_fields():
    schedule = schedules.cosine(100, 10, min_lr_ratio=0.1)
    state = schedule.scheduler(make_optimizer()).state_dict()
    assert state["lr_lambdas"][0] == {"kind": "cosine", "total_steps": 100, "warmup_steps": 10,
                                      "decay_steps": 90, "min_lr_ratio": 0.1,
                                      "decay_shape": "cosine"}


# --- refused input ----------------------------------------------------------------------------

BAD = [
    (lambda: schedules.cosine(100, 101), "schedules.cosine: warmup=101 is invalid; valid: "
     "an int 0 <= warmup <= total_steps=100"),
    (lambda: schedules.linear(100, -3), "schedules.linear: warmup=-3 is invalid"),
    (lambda: schedules.linear(100, 1.5), "warmup=1.5 is invalid; valid: .* or a float "
     r"0.0 <= warmup <= 1.0 \(fraction of total_steps\)"),
    (lambda: schedules.linear(100, -0.1), "warmup=-0.1 is invalid"),
    (lambda: schedules.linear(100, float("nan")), "warmup=nan is invalid"),
    (lambda: schedules.linear(100, True), "warmup=True is invalid"),
    (lambda: schedules.linear(-5), "schedules.linear: total_steps=-5 is invalid; valid: an "
     "int >= 1"),
    (lambda: schedules.cosine(0), "total_steps=0 is invalid"),
    (lambda: schedules.cosine(10.0), "total_steps=10.0 is invalid"),
    (lambda: schedules.constant(-1), "schedules.constant: total_steps=-1 is invalid"),
    (lambda: schedules.cosine(100, min_lr_ratio=1.5), "schedules.cosine: min_lr_ratio=1.5 is "
     "invalid; valid: 0 <= min_lr_ratio <= 1"),
    (lambda: schedules.linear(100, min_lr_ratio=-0.01), "min_lr_ratio=-0.01 is invalid"),
    (lambda: schedules.wsd(100, min_lr_ratio=float("nan")), "min_lr_ratio=nan is invalid"),
    (lambda: schedules.wsd(100, 50, 0.6), r"schedules.wsd: warmup \+ decay = 50 \+ 60 steps "
     "is invalid; valid: warmup \\+ decay <= total_steps=100"),
    (lambda: schedules.wsd(100, decay=-1), "schedules.wsd: decay=-1 is invalid"),
    (lambda: schedules.wsd(100, decay_shape="exp"), "decay_shape='exp' is invalid; valid: "
     "one of"),
    (lambda: schedules.cosine(100)(-1), "schedules.cosine: step=-1 is invalid; valid: a "
     "finite number >= 0"),
    (lambda: schedules.cosine(100)(float("nan")), "step=nan is invalid"),
    (lambda: schedules.get("cosine_with_restarts", 100), "schedule='cosine_with_restarts' is "
     "invalid; valid: one of"),
    (lambda: schedules.get("constant", 100, min_lr_ratio=0.1), "min_lr_ratio=0.1 is invalid "
     "with schedule='constant'"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input_is_a_value_error_naming_argument_value_and_range(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert isinstance(error.value, optimlab.ArgumentError)
    assert "valid:" in str(error.value)
