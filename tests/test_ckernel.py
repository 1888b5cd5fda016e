"""The generated C kernels (optimlab.ckernel) against the rule run eagerly.

Every configuration of the registry (cases.py), with every param dtype and every
storage, is traced, built and run on flat random tensors (no zeros; sizes with partial
8-bit blocks), three steps, against engines.eager.update_dense on copies: decode -> the same
rule, eagerly -> encode. The eager side computes in fp32 for bf16/fp16 params (the
numeric policy of DESIGN.md: fp32 math, one rounding at the store) and in fp64 for fp64.

Agreement: within a few units in the last place of the stored dtype (fp32 moments are
mostly bit-identical; a tensor divided by a scalar is a multiply by its reciprocal here,
and torch's fp32 sqrt on x86 is MKL's, not always correctly rounded), and 8-bit codes
within one code of the codec's own rounding. Kernels are cached on disk (the default
cache), so only a first run compiles them.
"""

from __future__ import annotations

import math

import pytest
import torch
from cases import ELEMENTWISE_CASES as CASES
from cases import FULL_MATRIX, Case, firsts, option_cover, state_structures

from optimlab import ckernel, codecs, views
from optimlab.engines.eager import update_dense
from optimlab.rules import Rule

pytestmark = pytest.mark.skipif(not ckernel.available(), reason="no C compiler")

#: partial 8-bit blocks, a block exactly, tensors bigger than the serial cutoff
SIZES = [1, 7, 255, 256, 300, 1031, 40000]
STEPS = (1, 2, 3)
PARAM_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
#: allowed error, in units of the output dtype's epsilon times (|before| + |after|)
ULPS = {torch.float64: 8, torch.float32: 8, torch.bfloat16: 2, torch.float16: 2}
#: ... which at most this fraction of elements may exceed, within LOOSE relative error
TIGHT_EXCEPTIONS = 1e-3
LOOSE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.bfloat16: 0.05,
         torch.float16: 0.01}
DTYPE_OF = {"f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16,
            "f16": torch.float16}


def configuration(case: Case) -> tuple[Rule, dict, dict, tuple[str, ...], tuple[str, ...]]:
    """(rule, group hp, options, numbers, state keys) of a registry case, as an engine
    reads them: options are the non-numbers, numbers include the per-step scalars (and
    those derived from the values a rule keeps per group, at the group's first step)."""
    optimizer = case.build([torch.ones(2, requires_grad=True)])
    group = optimizer.param_groups[0]
    view = views.with_group_values(optimizer.view(group), group)
    rule = view.rule
    numbers = (*rule.numbers, *rule.step_numbers)
    return (rule, view.hp(view.floats()), dict(view.config.options), numbers,
            view.config.state_keys)


def storage_of(name: str, key: str, param_dtype: torch.dtype) -> codecs.FloatStorage | \
        codecs.Blockwise8bit:
    if name == "8bit":
        return codecs.Blockwise8bit(signed=key not in codecs.NONNEGATIVE_MOMENTS)
    return codecs.FloatStorage(DTYPE_OF[name])


def initial_state(key: str, numel: int, gen: torch.Generator,
                  state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Random moments, never zero: signed ones about 0.1, non-negative ones positive (a
    centered RMSprop's E[g²] above E[g]², as it is in training)."""
    if key not in codecs.NONNEGATIVE_MOMENTS:
        return 0.1 * torch.randn(numel, generator=gen, dtype=torch.float64)
    value = 0.1 * torch.rand(numel, generator=gen, dtype=torch.float64) + 0.01
    return value + state["grad_avg"] ** 2 if "grad_avg" in state else value


def _math_dtype(param_dtype: torch.dtype, storages: dict) -> torch.dtype:
    wide = param_dtype == torch.float64 or any(
        getattr(s, "dtype", None) == torch.float64 for s in storages.values())
    return torch.float64 if wide else torch.float32


def run_steps(case: Case, param_dtype: torch.dtype, storage: str, gen: torch.Generator):
    """Step random tensors with the kernel and, from the same values, eagerly; yield
    (kernel's, eager, before) params and states after each step. Each step starts both
    from the kernel's values, so that an 8-bit code rounded the other way at a tie (the
    codec's own rounding) is not compounded over the steps."""
    rule, hp, options, numbers, keys = configuration(case)
    storages = {key: storage_of(storage, key, param_dtype) for key in keys}
    kernel = ckernel.kernel_for(rule.update, options, numbers, keys,
                                [storages[k] for k in keys], param_dtype)
    math_dtype = _math_dtype(param_dtype, storages)
    params = [torch.randn(n, generator=gen, dtype=torch.float64).to(param_dtype)
              for n in SIZES]
    states = []
    for param in params:
        values: dict[str, torch.Tensor] = {}
        for key in sorted(keys, key=lambda k: k != "grad_avg"):  # E[g] first
            values[key] = initial_state(key, param.numel(), gen, values)
        state = {}
        for key in keys:
            parts = storages[key].encode(values[key].to(math_dtype))
            state.update(zip(storages[key].parts(key), parts, strict=True))
        states.append(state)
    stored = [[t for key in keys for t in codecs.stored_parts(s, key)] for s in states]
    # the 0-d values a rule keeps beside the step (NAdam's mu_product, ASGD's eta and mu),
    # carried from step to step as the optimizer carries them
    kept = {k: torch.tensor(v) for k, v in rule.scalar_initial(hp).items()}
    for step in STEPS:
        read: dict = {}
        if rule.scalar_state:
            read, following = rule.scalar_step(hp, float(step), kept)
            read = {k: float(v) for k, v in read.items()}
            kept = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in following.items()}
        step_hp = {**hp, **read, **rule.step_scalars({**hp, **read}, float(step))}
        grads = [torch.randn(n, generator=gen, dtype=torch.float64).to(param_dtype)
                 for n in SIZES]
        before = ([p.clone() for p in params],
                  [{k: v.clone() for k, v in s.items()} for s in states])
        eager = ([p.clone() for p in params],
                 [{k: v.clone() for k, v in s.items()} for s in states])
        kernel(params, grads, stored, step_hp)
        for param, state, grad in zip(*eager, grads, strict=True):
            wide = param.to(math_dtype)
            update_dense(rule, step_hp, wide, grad.to(math_dtype), state, storages)
            param.copy_(wide)
        yield (params, states), eager, before


def assert_within(actual: torch.Tensor, expected: torch.Tensor, before: torch.Tensor,
                  what: str) -> tuple[int, int]:
    """8-bit codes within one code; floats within LOOSE relative error of (|before| +
    |expected|) (a wrong formula is off everywhere, or by far more). Returns how many
    elements are beyond ULPS·eps·(|before| + |expected|), and of how many."""
    if actual.dtype in (torch.int8, torch.uint8):
        worst = (actual.int() - expected.int()).abs().max().item() if actual.numel() else 0
        assert worst <= 1, f"{what}: codes differ by up to {worst}"
        return 0, 0
    info = torch.finfo(actual.dtype)
    a, e, b = actual.double(), expected.double(), before.double()
    assert torch.equal(a.isnan(), e.isnan()), f"{what}: NaN in one only"
    scale = b.abs() + e.abs()
    error = torch.where(e.isnan(), 0.0, (a - e).abs())
    far = error > LOOSE[actual.dtype] * scale + info.tiny
    if far.any():
        i = int(far.nonzero()[0])
        raise AssertionError(f"{what}: element {i} is {a[i].item()!r}, eagerly "
                             f"{e[i].item()!r} (before {b[i].item()!r}); {int(far.sum())} "
                             f"of {a.numel()} beyond {LOOSE[actual.dtype]:g} relative")
    beyond = error > ULPS[actual.dtype] * info.eps * scale + info.tiny
    return int(beyond.sum()), a.numel()


def _storages_for(dtype: torch.dtype) -> list[str]:
    """fp32, bf16 and 8-bit moments, and the param's own dtype."""
    own = {torch.float64: ["f64"], torch.float16: ["f16"]}.get(dtype, [])
    return ["f32", "bf16", "8bit", *own]


#: in the CI run: each convention (option value) with fp32 params and moments; each state
#: structure with every storage of fp32 params; each optimizer's first case with fp32
#: moments and the param's own dtype for the other param dtypes; every case with
#: everything under explore
#: (tests/cases.py)
STRUCTURES, COVER, FIRSTS = state_structures(CASES), option_cover(CASES), firsts(CASES)


def _in_ci(case: Case, dtype: torch.dtype, storage: str) -> bool:
    if FULL_MATRIX:
        return True
    if case in STRUCTURES and dtype == torch.float32:
        return True
    if case in FIRSTS:
        return storage in ("f32", "f64", "f16") or (dtype == torch.bfloat16 and storage == "bf16")
    return case in COVER and dtype == torch.float32 and storage == "f32"


# the C kernel runs one flat index: elementwise rules only (the others it declines:
# tests/test_factored.py)
PARAMS = [(case, dtype, storage) for case in CASES if case.cls.rule.elementwise
          for dtype in PARAM_DTYPES for storage in _storages_for(dtype)
          if _in_ci(case, dtype, storage)]


@pytest.mark.parametrize("case,dtype,storage", PARAMS,
                         ids=[f"{c.id}-{str(d)[6:]}-{s}" for c, d, s in PARAMS])
def test_kernel_follows_the_rule_run_eagerly(case: Case, dtype, storage, gen) -> None:
    """Every element within LOOSE; all but TIGHT_EXCEPTIONS of them (a rounding that
    differs, such as torch's fp32 sqrt, not always correctly rounded on x86, amplified by
    a cancellation in the rule) within ULPS."""
    beyond = total = 0
    for step, ((params, states), (eager_params, eager_states), (params0, states0)) in \
            enumerate(run_steps(case, dtype, storage, gen), 1):
        for i, (p, q, p0) in enumerate(zip(params, eager_params, params0, strict=True)):
            where = f"step {step}, params[{i}] ({p.numel()} elements)"
            counts = [assert_within(p, q, p0, where)]
            counts += [assert_within(value, eager_states[i][name], states0[i][name],
                                     f"state {name!r} at {where}")
                       for name, value in states[i].items()]
            beyond += sum(c[0] for c in counts)
            total += sum(c[1] for c in counts)
    assert beyond <= TIGHT_EXCEPTIONS * total, \
        f"{beyond} of {total} elements beyond {ULPS[dtype]} ulps of the eager rule"


def test_adam_has_one_divide_and_one_root_per_element() -> None:
    adamw = next(c for c in CASES if c.name == "AdamW" and c.kwargs == {"lr": 0.01})
    rule, _, options, numbers, keys = configuration(adamw)
    kernel = ckernel.kernel_for(rule.update, options, numbers, keys, ["f32"] * len(keys),
                                torch.float32)
    assert (kernel.divides, kernel.roots) == (1, 1)
    source = kernel.path.with_suffix(".c").read_text().split("*/", 1)[1]  # past the title
    assert "bias_correction" not in source and "pow(" not in source  # numbers, hoisted


def _tanh_rule(param, grad, state, hp):
    return param - hp["lr"] * torch.tanh(grad), state


def _branching_rule(param, grad, state, hp):
    if hp["lr"] > 0.1:
        return param - grad, state
    return param, state


def _tensor_exponent_rule(param, grad, state, hp):
    return param - 2.0 ** grad, state


@pytest.mark.parametrize("rule,message", [(_tanh_rule, "torch.tanh"),
                                          (_branching_rule, "branches"),
                                          (_tensor_exponent_rule, "tensor exponent")])
def test_an_unsupported_rule_raises(rule, message: str) -> None:
    with pytest.raises(ckernel.UnsupportedRule, match=message):
        ckernel.kernel_for(rule, {}, ("lr",), (), (), torch.float32)


def test_wrong_arguments_are_refused_by_name(gen) -> None:
    adam = next(c for c in CASES if c.name == "Adam" and c.kwargs == {"lr": 0.01})
    rule, hp, options, numbers, keys = configuration(adam)
    kernel = ckernel.kernel_for(rule.update, options, numbers, keys, ["bf16"] * len(keys),
                                torch.float32)
    param = torch.randn(10, generator=gen)
    moments = [torch.zeros(10, dtype=torch.bfloat16) for _ in keys]
    with pytest.raises(ValueError, match=r"stored\[0\]\[0\].*bfloat16.*float32"):
        kernel([param], [param.clone()], [[torch.zeros(10)] * len(keys)], hp)
    with pytest.raises(ValueError, match=r"grads\[0\].*10 elements.*got.*9 elements"):
        kernel([param], [torch.randn(9, generator=gen)], [moments], hp)
    with pytest.raises(KeyError, match="numbers lacks '"):
        kernel([param], [param.clone()], [moments], {})
    with pytest.raises(ValueError, match="storage 'int4' of state"):
        ckernel.kernel_for(rule.update, options, numbers, keys, ["int4"] * len(keys),
                           torch.float32)


def _copy_rule(param, grad, state, hp):
    return param, {"x": grad}


def test_16_bit_conversions_are_torchs(gen) -> None:
    """Every fp16 and bf16 pattern loads as torch loads it; fp32 values (ties, subnormals,
    overflow, NaN) round to fp16 and bf16 as torch rounds them."""
    patterns = torch.arange(-2**15, 2**15, dtype=torch.int32).to(torch.int16)
    special = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan, 65504.0, 65520.0,
                            65519.996, 6e-8, 3e-8, 2.9e-8, 1e-40, 3.3895e38, 3.4e38])
    values = torch.cat([special, torch.randn(100000, generator=gen) *
                        torch.exp(torch.randn(100000, generator=gen) * 8)])
    for dtype in (torch.float16, torch.bfloat16):
        loads = patterns.view(dtype)
        kernel = ckernel.kernel_for(_copy_rule, {}, (), ("x",), ["f32"], dtype)
        out = torch.empty(loads.numel())
        kernel([loads.clone()], [loads], [[out]], {})
        assert torch.equal(out.isnan(), loads.float().isnan())
        assert torch.equal(out.nan_to_num(), loads.float().nan_to_num())
        kernel = ckernel.kernel_for(_copy_rule, {}, (), ("x",), [dtype], torch.float32)
        out = torch.empty(values.numel(), dtype=dtype)
        kernel([values.clone()], [values], [[out]], {})
        expected = values.to(dtype)
        assert torch.equal(out.view(torch.int16)[~values.isnan()],
                           expected.view(torch.int16)[~values.isnan()])
        assert out.isnan().equal(values.isnan())
