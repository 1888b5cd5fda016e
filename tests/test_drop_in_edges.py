"""Drop-in at the edges: what training code does beyond construct-and-step, on every
engine. Each test names the failure of issue 11 it covers."""

from __future__ import annotations

import inspect
import io
import math

import pytest
import torch
from cases import CASES, Case, is_moment, optimizer_class, taken_shape, torch_class
from explore import EXPLORE

import optimlab
from optimlab import codecs, engines, porting, registry, state
from optimlab.engines import torch_fused
from optimlab.hyperparameters import ArgumentError

CLASSES = registry.classes()
SHAPES = [(3, 5), (7,), (codecs.SMALL_TENSOR + 4,)]


def _params(seed: int, dtype=torch.float32, device="cpu", shapes=SHAPES, cls=None):
    """Random params of ``shapes`` (as ``cls``'s rule takes them: cases.taken_shape)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [taken_shape(cls, s) for s in shapes] if cls is not None else shapes
    return [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype).to(device)
            .requires_grad_() for s in shapes]


def _grads(params, generator):
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator, dtype=torch.float64).to(p.dtype)


def _first_case(cls) -> Case:
    """The class's first case under torch's conventions, or its first case where torch
    has no twin."""
    cases = [c for c in CASES if c.name == cls.__name__]
    return next((c for c in cases if c.torch_parity), cases[0])


# --- 1. torch.compile(optimizer.step) --------------------------------------------------------


def _compiled_step_follows_eager(case: Case, engine: str, backend: str, seed: int) -> None:
    torch._dynamo.reset()
    results = []
    for compile_step in (False, True):
        params = _params(seed, cls=case.cls)
        optimizer = case.build(params, engine=engine)
        step = torch.compile(optimizer.step, backend=backend) if compile_step \
            else optimizer.step
        generator = torch.Generator().manual_seed(seed + 1)
        for _ in range(3):
            _grads(params, generator)
            step()
        results.append(params)
    frames = torch._dynamo.utils.counters["frames"]
    assert frames["ok"] > 0, "nothing was compiled"
    for p, q in zip(*results, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def _every_engine_sampled(classes: list) -> list:
    """(class, engine) pairs: every pair under explore; in the CI run every class on auto
    (the default) and every other engine on one class each, in turn."""
    if EXPLORE:
        return [pytest.param(c, e, id=f"{c.__name__}-{e}") for e in engines.ENGINES
                for c in classes]
    others = [e for e in engines.ENGINES if e != "auto"]
    pairs = [(c, "auto") for c in classes]
    pairs += [(classes[i % len(classes)], e) for i, e in enumerate(others)]
    return [pytest.param(c, e, id=f"{c.__name__}-{e}") for c, e in pairs]


@pytest.mark.parametrize(("cls", "engine"), _every_engine_sampled(CLASSES))
def test_torch_compile_of_step_traces_and_gives_the_eager_numbers(cls, engine, seed) -> None:
    """Failure 1: torch.compile(optimizer.step) crashed on torch's fused kernels. The
    aot_eager backend runs Dynamo and AOT autograd's functionalization (where the crash
    was) without generating code. Traced, every engine runs the reference engine's rule
    (engines.run); each class is compiled on the default engine, each engine at least
    once (all pairs under explore)."""
    _compiled_step_follows_eager(_first_case(cls), engine, "aot_eager", seed)


def test_torch_compile_of_step_with_inductor(seed) -> None:
    _compiled_step_follows_eager(_first_case(optimlab.AdamW), "auto", "inductor", seed)


# --- 3. old checkpoints: a Python-number step ------------------------------------------------


@pytest.mark.parametrize("engine", engines.ENGINES)
@pytest.mark.parametrize("cls", [c for c in CLASSES if c.rule.counts_steps],
                         ids=lambda c: c.__name__)
def test_a_numeric_step_from_an_old_checkpoint_loads_as_a_tensor(cls, engine, seed) -> None:
    """Failure 3: torch before 1.12 saved ``step`` as a Python number."""
    case = _first_case(cls)
    straight, resumed = _params(seed, cls=cls), _params(seed, cls=cls)
    first, second = case.build(straight, engine=engine), case.build(resumed, engine=engine)
    generator = torch.Generator().manual_seed(seed)
    for step in range(5):
        _grads(straight, generator)
        for p, q in zip(straight, resumed, strict=True):
            q.grad = p.grad.clone()
        first.step()
        if step < 2:
            second.step()
        if step == 1:
            saved = second.state_dict()
            for entry in saved["state"].values():
                entry["step"] = int(entry["step"].item())
            second = case.build(resumed, engine=engine)
            second.load_state_dict(saved)
            for entry in second.state.values():
                assert torch.is_tensor(entry["step"]) and entry["step"].dtype == torch.float32
        elif step > 1:
            second.step()
    for p, q in zip(straight, resumed, strict=True):
        assert torch.equal(p, q)


# --- 4 and 8. the meta device; step counters where the fused kernels read them --------------


#: torch.optim classes whose step reads a 0-d state value (``.item()``: ASGD's eta, even on
#: its foreach path), which a meta tensor has not: optimlab steps them on meta
TORCH_READS_A_VALUE = ("ASGD",)


@pytest.mark.parametrize("engine", engines.ENGINES)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_params_on_the_meta_device_step(cls, engine) -> None:
    """Failure 4: deferred initialisation steps params on ``meta``, as torch.optim does."""
    shapes = [taken_shape(cls, s) for s in SHAPES]
    params = [torch.empty(s, device="meta", requires_grad=True) for s in shapes]
    optimizer = _first_case(cls).build(params, engine=engine)
    # torch's Adafactor reads RMS(θ) with .item(), which a meta tensor cannot give
    twin = torch_class(cls.__name__) if cls is not optimlab.Adafactor else None
    theirs = [twin([torch.empty(s, device="meta", requires_grad=True) for s in shapes])] \
        if twin else []
    for _ in range(2):
        for p in [*params, *(p for other in theirs for p in other.param_groups[0]["params"])]:
            p.grad = torch.empty(p.shape, device="meta")
        optimizer.step()
        for other in theirs:
            if cls.__name__ in TORCH_READS_A_VALUE:
                with pytest.raises(RuntimeError, match="meta"):
                    other.step()
            else:
                other.step()
    for p in params:
        assert p.device.type == "meta"
        for value in optimizer.state[p].values():
            assert value.device.type == "meta"


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_step_counters_live_where_fused_kernels_read_them(name) -> None:
    """Failure 8: counters were made on the CPU, so on an accelerator torch's fused kernels
    never ran. The meta device stands for one here (torch's fused Adam has a meta kernel);
    tests/test_cuda.py checks CUDA itself where one exists."""
    params = [torch.empty(s, device="meta", requires_grad=True) for s in SHAPES]
    optimizer = optimizer_class(name)(params)
    for p in params:
        p.grad = torch.empty(p.shape, device="meta")
    optimizer.step()
    assert optimizer.engines_used() == {"native": len(params)}
    assert all(optimizer.state[p]["step"].device.type == "meta" for p in params)


# --- 5. differentiable=True -----------------------------------------------------------------


# torch's Adafactor and Muon take no ``differentiable`` keyword: nothing to compare with
DIFFERENTIABLE_CASES = [c for c in CASES if c.torch_parity and not c.kwargs.get("maximize")
                        and "differentiable" in inspect.signature(
                            registry.torch_twin(c.cls)).parameters]


def _step_outputs(make, param, grad, state_values, keys):
    """θ and the state after one step from (θ, g, state), as functions of all of them."""
    p = param.clone()
    p.grad = grad
    optimizer = make([p])
    if state_values:
        optimizer.state[p].update({k: v.clone() for k, v in zip(keys, state_values,
                                                                 strict=True)})
    optimizer.step()
    return (p, *(optimizer.state[p][k] for k in keys if k != "step"))


@pytest.mark.parametrize("case", DIFFERENTIABLE_CASES[::2], ids=lambda c: c.id)
def test_differentiable_step_has_torchs_gradients(case: Case, seed) -> None:
    """Failure 5: ``differentiable=True`` was refused. The step's Jacobian, checked by
    finite differences (gradcheck) and against torch.optim's in fp64."""
    generator = torch.Generator().manual_seed(seed)
    param = torch.randn(4, dtype=torch.float64, generator=generator).requires_grad_()
    # |g| in [0.5, 2]: a tiny g² makes θ curve too sharply in v for finite differences
    grad = ((torch.rand(4, dtype=torch.float64, generator=generator) * 1.5 + 0.5) *
            torch.randn(4, dtype=torch.float64, generator=generator).sign()).requires_grad_()
    probe = param.detach().clone().requires_grad_()
    probe.grad = grad.detach().clone()
    warm = case.build([probe])
    warm.step()  # a step taken, so that the state exists and is not at its initial zeros
    keys = sorted(warm.state[probe])
    # an fp64 step: torch's differentiable step computes 1 − βᵗ in the step's dtype (fp32
    # would be 3e-5 off at t = 2), optimlab in fp64 whatever it is stored in
    # counters are not differentiated: step, and the 0-d values torch reads as numbers
    state_values = [warm.state[probe][k].detach().double().requires_grad_(is_moment(warm, k))
                    for k in keys]
    inputs = (param, grad, *[v for v in state_values if v.requires_grad])

    def make_ours(params):
        return case.build(params, differentiable=True)

    def make_theirs(params):
        return torch_class(case.name)(params, differentiable=True, **case.kwargs)

    def function(make):
        def f(p, g, *moments):
            values = iter(moments)
            full = [next(values) if v.requires_grad else v for v in state_values]
            return _step_outputs(make, p, g, full, keys)
        return f

    # Adadelta's E[Δx²] after one step is ~1e-7, beside ε = 1e-6: a finite difference of
    # gradcheck's default 1e-6 would straddle the curve of √(E[Δx²] + ε)
    step = 1e-9 if case.name == "Adadelta" else 1e-6
    assert torch.autograd.gradcheck(function(make_ours), inputs, eps=step)
    weights = [torch.randn(o.shape, dtype=torch.float64, generator=generator)
               for o in function(make_ours)(*inputs)]
    gradients = []
    for make in (make_ours, make_theirs):
        outputs = function(make)(*inputs)
        total = sum((w * o).sum() for w, o in zip(weights, outputs, strict=True))
        gradients.append(torch.autograd.grad(total, inputs))
    for mine, theirs in zip(*gradients, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12)


def test_hypergradient_of_the_loss_after_k_steps_wrt_the_lr(seed) -> None:
    """d loss(θ_k) / d lr through k differentiable steps, against finite differences."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(5, dtype=torch.float64, generator=generator)
    start = torch.randn(5, dtype=torch.float64, generator=generator)

    def loss_after(lr: torch.Tensor) -> torch.Tensor:
        theta = start.clone().requires_grad_()
        weights = theta.clone()
        optimizer = optimlab.Adam([weights], lr=lr, differentiable=True)
        for _ in range(4):
            loss = ((weights - target) ** 2).sum()
            (weights.grad,) = torch.autograd.grad(loss, weights, create_graph=True)
            optimizer.step()
        return ((weights - target) ** 2).sum()

    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    (analytic,) = torch.autograd.grad(loss_after(lr), lr)
    h = 1e-6
    numeric = (loss_after(lr.detach() + h) - loss_after(lr.detach() - h)) / (2 * h)
    assert math.isclose(analytic.item(), numeric.item(), rel_tol=1e-5)


# --- 6 and 7. the stored form survives load_state_dict; 8-bit checkpoints and torch ---------


def _through_disk(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _stored_bytes(optimizer) -> int:
    return sum(t.numel() * t.element_size() for entry in optimizer.state.values()
               for k, t in entry.items() if k != "step")


def _narrow_state_cases() -> list:
    """Every class with bf16 and 8-bit moments on every engine; the compiled engine (a
    kernel compiled per case) for AdamW only, except under explore."""
    return [pytest.param(c, e, d, id=f"{c.__name__}-{e}-{str(d)[6:]}")
            for d in (torch.bfloat16, torch.int8) for e in engines.ENGINES for c in CLASSES
            if EXPLORE or e != "compiled" or c is optimlab.AdamW]


@pytest.mark.parametrize(("cls", "engine", "state_dtype"), _narrow_state_cases())
def test_low_precision_state_stays_low_precision_after_loading(cls, engine, state_dtype,
                                                               seed) -> None:
    """Failure 6: bf16 state came back fp32 from load_state_dict until the next step."""
    case = next(c for c in CASES if c.name == cls.__name__ and
                (c.kwargs.get("momentum") or cls is not optimlab.SGD))
    params = _params(seed, cls=cls)
    if state_dtype == torch.int8 and cls.rule.state_shapes is not None:
        with pytest.raises(ArgumentError, match=r"state_dtype=torch\.int8"):  # factored state
            case.build(params, engine=engine, state_dtype=state_dtype)
        return
    optimizer = case.build(params, engine=engine, state_dtype=state_dtype)
    _grads(params, torch.Generator().manual_seed(seed))
    optimizer.step()
    before = _stored_bytes(optimizer)
    fresh = case.build(params, engine=engine, state_dtype=state_dtype)
    fresh.load_state_dict(_through_disk(optimizer.state_dict()))
    assert _stored_bytes(fresh) == before
    big = params[-1]
    for key in state.shapes(fresh.view(fresh.param_groups[0]), big):
        stored = codecs.stored_form(fresh.state[big], key)
        assert stored == codecs.storage_for(big, key, state_dtype), key
        torch.testing.assert_close(fresh.moment(big, key), optimizer.moment(big, key))
    assert _stored_bytes(_through_disk_optimizer(fresh, case, params, engine)) == before


def _through_disk_optimizer(optimizer, case, params, engine):
    """The state dict re-saved before any step, loaded once more."""
    again = case.build(params, engine=engine)
    again.load_state_dict(_through_disk(optimizer.state_dict()))
    return again


def test_an_8bit_checkpoint_is_refused_by_torch_and_converted_by_porting(seed) -> None:
    """Failure 7: an 8-bit checkpoint loaded into torch.optim.AdamW silently, its codes
    read as moments. Now the moment names are absent (torch refuses it at its first step),
    and porting.to_torch_state_dict decodes it into one torch continues from."""
    params = _params(seed)
    ours = optimlab.AdamW(params, lr=1e-2, state_dtype=torch.int8)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(3):
        _grads(params, generator)
        ours.step()
    saved = _through_disk(ours.state_dict())
    twin = [p.detach().clone().requires_grad_() for p in params]
    theirs = torch.optim.AdamW(twin, lr=1e-2)
    theirs.load_state_dict(saved)
    for p, q in zip(params, twin, strict=True):
        q.grad = p.grad.clone()
    with pytest.raises(KeyError, match="exp_avg"):
        theirs.step()
    theirs = torch.optim.AdamW(twin, lr=1e-2)
    theirs.load_state_dict(porting.to_torch_state_dict(saved))
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(theirs.state[twin[-1]][key], ours.moment(params[-1], key))
    back = optimlab.AdamW(params, lr=1e-2, state_dtype=torch.int8)
    back.load_state_dict(theirs.state_dict())
    back.param_groups[0]["state_dtype"] = torch.int8  # the torch checkpoint says None
    back.load_state_dict({**back.state_dict()})
    assert "exp_avg_codes" in back.state[params[-1]]


# --- 9. low-precision params: one numeric policy ---------------------------------------------


@pytest.mark.parametrize(("cls", "engine", "dtype"), [
    pytest.param(c, e, d, id=f"{c.__name__}-{e}-{str(d)[6:]}")
    for d in (torch.bfloat16, torch.float16) for e in engines.ENGINES if e != "reference"
    for c in CLASSES if EXPLORE or e != "compiled" or c is optimlab.AdamW])
def test_low_precision_params_agree_across_engines(cls, engine, dtype, seed) -> None:
    """Failure 9: the reference engine computed in the param's dtype and the kernels in
    fp32, so a group crossing auto's threshold changed course. Now every engine computes
    in fp32 and rounds once at the store: they part by an ulp where a value lies at a
    rounding boundary, a difference that later steps carry but do not grow."""
    case = _first_case(cls)
    results = []
    for name in ("reference", engine):
        params = _params(seed, dtype, cls=cls)
        optimizer = case.build(params, engine=name)
        generator = torch.Generator().manual_seed(seed + 1)
        for _ in range(4):
            _grads(params, generator)
            optimizer.step()
        results.append(params)
    for p, q in zip(*results, strict=True):
        ulp = torch.finfo(dtype).eps * q.abs().max().item()  # of the largest value
        assert (p - q).abs().max().item() <= 4 * ulp


def test_native_mapping_is_an_allow_list(monkeypatch) -> None:
    """An option the mapping does not know makes the native engine decline."""
    params = _params(0)
    optimizer = optimlab.Adam(params)
    view = optimizer.view(optimizer.param_groups[0])
    assert torch_fused.mapping_for(view) is not None
    rule = optimizer.rule
    extended = type(rule)(**{**rule.__dict__, "options": (*rule.options, "new_option")})
    monkeypatch.setattr(optimlab.Adam, "rule", extended)
    group = {**optimizer.param_groups[0], "new_option": True}
    assert torch_fused.mapping_for(optimizer.view(group)) is None
