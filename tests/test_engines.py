"""The native and compiled engines against the reference engine, on every configuration of
the registry; torch's fused kernels against torch.optim(fused=True); no recompiles under a
schedule; how ``auto`` chooses and falls back."""

from __future__ import annotations

import warnings

import pytest
import torch
from cases import CASES, TORCH_CASES, Case, optimizer_class, state_structures, torch_class
from explore import EXPLORE

import optimlab
from optimlab import engines
from optimlab.engines import generated_c, inductor, torch_fused
from optimlab.hyperparameters import ArgumentError

STEPS = 8
#: a bucket of small tensors, one tensor stepped alone (>= BUCKET_MAX), a scalar and an
#: empty one (both left to the reference engine)
SHAPES = [(3, 5), (7,), (2, 3, 4), (inductor.BUCKET_MAX + 3,), (), (0, 2)]
TOLERANCE = {torch.float64: {"rtol": 1e-10, "atol": 1e-12},
             torch.float32: {"rtol": 1e-5, "atol": 1e-5}}


def _maps_natively(case: Case) -> bool:
    optimizer = case.build([torch.ones(case.shape((2,)), requires_grad=True)])
    return torch_fused.mapping_for(optimizer.view(optimizer.param_groups[0])) is not None


NATIVE_CASES = [c for c in CASES if _maps_natively(c)]


def _train(case: Case, engine: str, dtype: torch.dtype, gen: torch.Generator,
           shapes=SHAPES, steps=STEPS, **extra):
    start = torch.Generator().manual_seed(int(torch.randint(2**31, (), generator=gen)))
    params = [torch.randn(case.shape(s), dtype=dtype, generator=start).requires_grad_()
              for s in shapes]
    optimizer = case.build(params, engine=engine, **extra)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, dtype=dtype, generator=start)
        optimizer.step()
    return params, optimizer


def _assert_agree(case: Case, engine: str, dtype: torch.dtype, gen: torch.Generator,
                  **extra) -> None:
    seed = int(torch.randint(2**31, (), generator=gen))
    theirs, reference = _train(case, "reference", dtype, torch.Generator().manual_seed(seed),
                               **extra)
    ours, optimizer = _train(case, engine, dtype, torch.Generator().manual_seed(seed), **extra)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), **TOLERANCE[dtype])
        assert sorted(optimizer.state[p]) == sorted(reference.state[q])
        for key, value in optimizer.state[p].items():
            torch.testing.assert_close(value, reference.state[q][key], **TOLERANCE[dtype])


@pytest.mark.parametrize("case", CASES if EXPLORE else state_structures(),
                         ids=lambda c: c.id)
def test_compiled_engine_follows_the_reference_engine(case: Case, gen) -> None:
    """Inductor's kernel of each state structure (each a few seconds of compiling when the
    cache is cold); every case under explore. Each convention is compiled to C by the
    generated engine in tests/test_ckernel.py."""
    _assert_agree(case, "compiled", torch.float32, gen)


@pytest.mark.parametrize("case", CASES[::7] if EXPLORE else CASES[::21], ids=lambda c: c.id)
def test_compiled_engine_in_fp64(case: Case, gen) -> None:
    _assert_agree(case, "compiled", torch.float64, gen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", NATIVE_CASES, ids=lambda c: c.id)
def test_native_engine_follows_the_reference_engine(case: Case, dtype, gen) -> None:
    _assert_agree(case, "native", dtype, gen)


def test_every_torch_configuration_is_mapped_to_a_fused_kernel() -> None:
    """All of torch's own conventions for SGD, Adagrad, Adam and AdamW reach a kernel (the
    classes torch has a fused kernel for; RMSprop's and the rest of the catalog's are
    foreach loops, which the generated and compiled engines replace)."""
    mapped = {c.id for c in NATIVE_CASES}
    for case in TORCH_CASES:
        # torch has no fused RMSprop, Adafactor, Muon, ...
        if case.cls.rule.name in torch_fused.MAPPINGS:
            assert case.id in mapped, case.id
    independent = Case("AdamW", {"lr": 0.01, "weight_decay": 0.05,
                                 "weight_decay_form": "independent"})
    assert independent.id in mapped  # as decoupled decay λ/η


@pytest.mark.parametrize("case", [c for c in NATIVE_CASES if c.torch_parity],
                         ids=lambda c: c.id)
def test_native_engine_is_torch_fused_bit_for_bit(case: Case, gen) -> None:
    """Calling torch's kernel is not a second version of the algorithm: same bits as
    torch.optim.<name>(fused=True)."""
    shapes = [(4, 3), (5,), (2, 2, 2)]
    values = [torch.randn(s, generator=gen) for s in shapes]
    ours = [v.clone().requires_grad_() for v in values]
    theirs = [v.clone().requires_grad_() for v in values]
    mine = case.build(ours, engine="native")
    other = torch_class(case.name)(theirs, fused=True, **case.kwargs)
    for _ in range(STEPS):
        for p, q in zip(ours, theirs, strict=True):
            p.grad = torch.randn(p.shape, generator=gen)
            q.grad = p.grad.clone()
        mine.step()
        other.step()
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_fused_sgd_is_not_used_for_low_precision_params(dtype, gen) -> None:
    """torch 2.13's CPU _fused_sgd_ gets a bf16/fp16 momentum buffer wrong; native leaves
    such params to the reference engine, which stays with torch's for-loop. Skips, saying
    so, on a torch whose fused kernel agrees with its loop (native could then use it)."""
    start = torch.randn(64, generator=gen).to(dtype)
    ours, loop, fused = (start.clone().requires_grad_() for _ in range(3))
    optimizers = [optimlab.SGD([ours], lr=1e-3, momentum=0.9, engine="native"),
                  torch.optim.SGD([loop], lr=1e-3, momentum=0.9, foreach=False),
                  torch.optim.SGD([fused], lr=1e-3, momentum=0.9, fused=True)]
    for _ in range(10):
        grad = torch.randn(64, generator=gen).to(dtype)
        for p, optimizer in zip((ours, loop, fused), optimizers, strict=True):
            p.grad = grad.clone()
            optimizer.step()
    torch.testing.assert_close(ours, loop, rtol=2e-2, atol=1e-2)
    buffers = [o.state[p]["momentum_buffer"].double() for o, p in
               zip(optimizers, (ours, loop, fused), strict=True)]
    torch.testing.assert_close(buffers[0], buffers[1], rtol=2e-2, atol=2e-2)
    if torch.allclose(buffers[2], buffers[1], rtol=0.1, atol=0.1):
        pytest.skip(f"torch {torch.__version__}'s CPU _fused_sgd_ gets a {dtype} momentum "
                    "buffer right: engines/torch_fused.py may map low-precision SGD onto it")


def _unique_graphs() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("name", ["RMSprop", "Adam", "SGD"])
def test_a_schedule_never_recompiles(name: str, gen) -> None:
    kwargs = {"RMSprop": {"centered": True, "momentum": 0.9},
              "Adam": {"eps_placement": "inside", "amsgrad": True},
              "SGD": {"momentum": 0.9, "momentum_form": "ema"}}[name]
    params = [torch.randn(s, generator=gen).requires_grad_() for s in SHAPES]
    optimizer = optimizer_class(name)(params, lr=0.01, engine="compiled", **kwargs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step))
    for step in range(6):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()
        scheduler.step()
        if step == 0:
            compiled_after_first = _unique_graphs()
    assert _unique_graphs() == compiled_after_first
    assert optimizer.param_groups[0]["lr"] < 0.01 / 5


@pytest.mark.skipif(not generated_c.available(), reason="no C compiler for the generated kernel")
def test_auto_runs_the_generated_kernel_on_the_cpu_for_any_group(gen) -> None:
    params = [torch.randn(10, 10, generator=gen).requires_grad_()]
    params[0].grad = torch.randn(10, 10, generator=gen)
    for cls in (optimlab.RMSprop, optimlab.AdamW):
        optimizer = cls(params, **({"bias_correction": False} if cls is optimlab.AdamW else {}))
        optimizer.step()
        assert optimizer.engines_used() == {"generated": 1}


def test_without_a_c_compiler_auto_uses_native_where_it_maps_and_compiles_big_groups_only(
        monkeypatch, gen):
    """The chain after the generated kernel (a machine without a C compiler, or CUDA)."""
    monkeypatch.setattr(generated_c, "available", lambda: False)
    calls = []
    monkeypatch.setattr(inductor, "take", lambda *a: calls.append(len(a[1])) or [])
    small = [torch.randn(10, 10, generator=gen).requires_grad_()]
    big = [torch.randn(engines.AUTO_COMPILE_ELEMENTS, generator=gen).requires_grad_()]
    many = [torch.randn(3, generator=gen).requires_grad_()
            for _ in range(engines.AUTO_COMPILE_TENSORS)]
    for params in (small, big, many):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        optimlab.RMSprop(params).step()  # no fused RMSprop
        optimlab.AdamW(params).step()  # torch's equation: the fused kernel
    assert calls == [1, engines.AUTO_COMPILE_TENSORS]  # RMSprop's big and many-tensor groups


def test_auto_warns_once_and_steps_eagerly_without_a_compiler(monkeypatch, gen) -> None:
    monkeypatch.setattr(generated_c, "available", lambda: False)
    monkeypatch.setattr(inductor, "available", lambda device: False)
    monkeypatch.setattr(engines, "_warned", set())
    params = [torch.randn(engines.AUTO_COMPILE_ELEMENTS, generator=gen).requires_grad_()]
    expected = [p.detach().clone().requires_grad_() for p in params]
    mine = optimlab.RMSprop(params, eps_placement="inside")
    theirs = optimlab.RMSprop(expected, eps_placement="inside", engine="reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            for p, q in zip(params, expected, strict=True):
                p.grad = torch.randn(p.shape, generator=gen)
                q.grad = p.grad.clone()
            mine.step()
            theirs.step()
    assert len([w for w in caught if "cannot build kernels" in str(w.message)]) == 1
    assert torch.equal(params[0], expected[0])
    with pytest.raises(ArgumentError, match="engine='compiled' cannot build kernels"):
        optimlab.Adam(params, engine="compiled")


def test_bucket_state_is_torch_layout_and_survives_replacement(gen) -> None:
    """Small tensors' moments live in one flat buffer, each state entry a view of it with
    the param's shape; a state entry replaced by hand is taken up, not overwritten."""
    params = [torch.randn(s, generator=gen).requires_grad_() for s in [(3, 4), (5,), (2, 2)]]
    optimizer = optimlab.RMSprop(params, lr=0.01, engine="compiled")
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    optimizer.step()
    squares = [optimizer.state[p]["square_avg"] for p in params]
    assert [s.shape for s in squares] == [p.shape for p in params]
    assert len({s.untyped_storage().data_ptr() for s in squares}) == 1
    optimizer.state[params[1]]["square_avg"] = torch.full((5,), 4.0)
    before = params[1].detach().clone()
    optimizer.step()
    # E[g²] = 0.99·4 + 0.01·g², so the step is about lr·g/2
    step = (before - params[1].detach()).abs()
    assert torch.all(step < 0.01 * params[1].grad.abs() / 1.9)
