"""Low-precision state: the 8-bit blockwise and bf16 codecs, their state dicts, the fp32
view of a moment, and the compiled engine's codecs against the reference engine's."""

from __future__ import annotations

import io

import pytest
import torch
from cases import optimizer_class
from explore import EXPLORE

import optimlab
from optimlab import codecs

BIG = (64, 4 * codecs.BLOCK)  # 65536 elements: above SMALL_TENSOR, whole blocks


def test_8bit_codes_keep_moments_to_a_percent(gen) -> None:
    """Companding keeps small values beside a large one: errors measured on moments that
    span several decades within each block."""
    spread = torch.rand(BIG, generator=gen) ** 4
    signed = torch.randn(BIG, generator=gen) * spread
    square = spread * spread
    for storage, value, root in ((codecs.Blockwise8bit(True), signed, False),
                                 (codecs.Blockwise8bit(False), square, True)):
        parts = storage.encode(value)
        assert parts[0].dtype == storage.code_dtype and parts[0].shape == value.shape
        assert parts[1].shape == (value.numel() // codecs.BLOCK,)
        back = storage.decode(parts, torch.float32)
        if root:  # what enters the step is √v
            back, value = back.sqrt(), value.sqrt()
        assert ((back - value).norm() / value.norm()).item() < 0.01
        assert (back - value).abs().max() <= 0.02 * value.abs().max()


def test_8bit_codes_of_a_partial_block_and_of_zeros(gen) -> None:
    storage = codecs.Blockwise8bit(True)
    value = torch.randn(3 * codecs.BLOCK + 5, generator=gen)
    value[:codecs.BLOCK] = 0
    codes, scale = storage.encode(value)
    assert scale.shape == (4,) and scale[0] == 0
    back = storage.decode((codes, scale), torch.float32)
    assert torch.equal(back[:codecs.BLOCK], torch.zeros(codecs.BLOCK))
    assert (back - value).abs().max() < 0.02 * value.abs().max()


@pytest.mark.parametrize("state_dtype", [torch.int8, torch.bfloat16], ids=str)
def test_small_tensors_keep_the_params_dtype(state_dtype) -> None:
    small, big = (torch.randn(codecs.SMALL_TENSOR - 1, requires_grad=True),
                  torch.randn(BIG, requires_grad=True))
    optimizer = optimlab.AdamW([small, big], state_dtype=state_dtype, engine="reference")
    for p in (small, big):
        p.grad = torch.randn(p.shape)
    optimizer.step()
    assert optimizer.state[small]["exp_avg"].dtype == torch.float32
    suffix = "_codes" if state_dtype == torch.int8 else ""
    narrow = {torch.int8: (torch.int8, torch.uint8), torch.bfloat16: (state_dtype,) * 2}
    assert (optimizer.state[big]["exp_avg" + suffix].dtype,
            optimizer.state[big]["exp_avg_sq" + suffix].dtype) == narrow[state_dtype]


def _train(engine: str, state_dtype, gen, steps: int = 6, params=None, optimizer=None):
    if params is None:
        params = [torch.randn(BIG, generator=gen).requires_grad_(),
                  torch.randn(10, generator=gen).requires_grad_()]
    optimizer = optimizer or optimlab.AdamW(params, lr=1e-2, state_dtype=state_dtype,
                                            engine=engine)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("engine", ["reference", "compiled"])
def test_8bit_state_dict_is_compact_and_round_trips(engine: str, gen) -> None:
    seed = int(torch.randint(2**31, (), generator=gen))
    params, optimizer = _train(engine, torch.int8, torch.Generator().manual_seed(seed))
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    state = optimizer.state_dict()["state"][0]
    assert state["exp_avg_codes"].dtype == torch.int8
    assert state["exp_avg_sq_codes"].dtype == torch.uint8
    stored = sum(t.numel() * t.element_size() for k, t in state.items() if k != "step")
    assert stored / params[0].numel() <= 2.1
    twin = [p.detach().clone().requires_grad_() for p in params]
    restored = optimlab.AdamW(twin, lr=1e-2, state_dtype=torch.int8, engine=engine)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    generator = torch.Generator().manual_seed(seed + 1)
    _train(engine, None, generator, 3, params, optimizer)
    generator = torch.Generator().manual_seed(seed + 1)
    _train(engine, None, generator, 3, twin, restored)
    for p, q in zip(params, twin, strict=True):
        assert torch.equal(p, q)


def test_moment_gives_the_fp32_view_close_to_fp32_training(gen) -> None:
    seed = int(torch.randint(2**31, (), generator=gen))
    exact, fp32 = _train("reference", None, torch.Generator().manual_seed(seed))
    narrow, int8 = _train("reference", torch.int8, torch.Generator().manual_seed(seed))
    for key in ("exp_avg", "exp_avg_sq"):
        view = int8.moment(narrow[0], key)
        assert view.dtype == torch.float32 and view.shape == narrow[0].shape
        reference = fp32.state[exact[0]][key]
        assert ((view - reference).norm() / reference.norm()).item() < 0.05
    with pytest.raises(KeyError, match="no moment 'sum'"):
        int8.moment(narrow[0], "sum")


def test_checkpoints_convert_between_state_dtypes(gen) -> None:
    """A torch.optim.AdamW checkpoint (fp32 moments) loads into an 8-bit optimizer, and an
    8-bit checkpoint into an fp32 one: each is re-stored in the form its group asks for."""
    values = torch.randn(BIG, generator=gen)
    theirs = values.clone().requires_grad_()
    torch_optimizer = torch.optim.AdamW([theirs], lr=1e-2)
    theirs.grad = torch.randn(BIG, generator=gen)
    torch_optimizer.step()
    ours = theirs.detach().clone().requires_grad_()
    eight = optimlab.AdamW([ours], lr=1e-2, state_dtype=torch.int8, engine="reference")
    eight.load_state_dict(torch_optimizer.state_dict())
    ours.grad = theirs.grad.clone()
    eight.step()
    assert eight.state[ours]["exp_avg_codes"].dtype == torch.int8
    assert "exp_avg" not in eight.state[ours]
    back = optimlab.AdamW([ours], lr=1e-2, engine="reference")
    back.load_state_dict(eight.state_dict())
    assert back.param_groups[0]["state_dtype"] == torch.int8  # saved settings, as torch
    back.param_groups[0]["state_dtype"] = None
    back.step()
    assert back.state[ours]["exp_avg"].dtype == torch.float32
    assert "exp_avg_absmax" not in back.state[ours] and "exp_avg_codes" not in back.state[ours]


def test_scales_stay_fp32_for_bf16_params(gen) -> None:
    param = torch.randn(BIG, generator=gen).to(torch.bfloat16).requires_grad_()
    optimizer = optimlab.Adam([param], state_dtype=torch.int8, engine="reference")
    param.grad = torch.randn(BIG, generator=gen).to(torch.bfloat16)
    optimizer.step()
    saved = optimizer.state_dict()
    optimizer.load_state_dict(saved)
    assert optimizer.state[param]["exp_avg_absmax"].dtype == torch.float32


@pytest.mark.parametrize(("name", "state_dtype"), [
    pytest.param(name, dtype, id=f"{name}-{str(dtype)[6:]}")
    for name in ("SGD", "RMSprop", "Adam", "Adagrad") for dtype in (torch.int8, torch.bfloat16)
    if EXPLORE or dtype == torch.int8 or name == "Adam"])
def test_compiled_codecs_follow_the_reference_engine(name: str, state_dtype, gen) -> None:
    """Same decode -> rule -> encode functions, traced; the kernel's fp32 arithmetic may put
    a value on the other side of a rounding boundary, one code (or bf16 ulp) apart."""
    kwargs = {"SGD": {"momentum": 0.9, "lr": 0.01}, "RMSprop": {"centered": True, "lr": 1e-3},
              "Adam": {"amsgrad": True, "lr": 1e-3}, "Adagrad": {"lr": 0.01}}[name]
    seed = int(torch.randint(2**31, (), generator=gen))
    results = {}
    shapes = [BIG, (codecs.SMALL_TENSOR + 77,)]  # whole blocks; a partial last block
    for engine in ("reference", "compiled"):
        generator = torch.Generator().manual_seed(seed)
        params = [torch.randn(s, generator=generator).requires_grad_() for s in shapes]
        optimizer = optimizer_class(name)(params, state_dtype=state_dtype, engine=engine,
                                            **kwargs)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator)
            optimizer.step()
        results[engine] = torch.cat([p.detach().reshape(-1) for p in params])
        if engine == "compiled":
            assert optimizer.engines_used() == {"compiled": len(params)}
    difference = (results["compiled"] - results["reference"]).abs()
    assert difference.max() <= 0.05 * kwargs["lr"] * 5 + 1e-6, difference.max()
    assert difference.mean() <= 1e-3 * kwargs["lr"]


@pytest.mark.parametrize("state_dtype", [torch.int8, None], ids=str)
def test_an_optimlab_0_1_8bit_checkpoint_still_loads(state_dtype, gen) -> None:
    """optimlab 0.1 kept codes under the moment's own name and scales under "_scale"."""
    params, optimizer = _train("reference", torch.int8, gen)
    saved = optimizer.state_dict()
    old = {**saved, "state": {}}
    for index, entry in saved["state"].items():
        entry = dict(entry)
        for key in ("exp_avg", "exp_avg_sq"):
            if key + "_codes" in entry:
                entry[key] = entry.pop(key + "_codes")
                entry[key + "_scale"] = entry.pop(key + "_absmax")
        old["state"][index] = entry
    fresh = optimlab.AdamW(params, lr=1e-2, state_dtype=state_dtype, engine="reference")
    fresh.load_state_dict(old)
    fresh.param_groups[0]["state_dtype"] = state_dtype
    fresh.load_state_dict(fresh.state_dict())
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(fresh.moment(params[0], key), optimizer.moment(params[0], key))
    assert "exp_avg_scale" not in fresh.state[params[0]]
