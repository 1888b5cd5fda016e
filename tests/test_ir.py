"""The expression IR's one op table (optimlab.ir.ops), through every engine that prints it.

For each op of the table, a tiny rule spells it (tensor with tensor, tensor with a number
that becomes a per-step scalar, and numbers alone, computed on the host) and writes the
result into a state key of its own. The same rule runs eagerly in fp32 (the oracle), as
generated C (optimlab.ckernel) and as the compiled engine's body (hoisting.Split) under
torch.compile, on random inputs with NaN, ±inf and ±0 planted among them. Arithmetic and
selection match bit for bit (NaN payloads aside); sqrt, exp, log and pow of a tensor
within two ulps; a tensor divided by a number within one (both engines multiply by its reciprocal).
A table with an op the spellings below do not exercise fails here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from optimlab import ckernel
from optimlab.engines.inductor_kernels import _inductor_options
from optimlab.ir import hoisting, ops
from optimlab.ir.ops import OPS, Op

Spelling = Callable[[Tensor, Tensor, float, float], Tensor]
#: each op, spelled as a rule spells it: g and s are tensors, n and m numbers
TENSOR: dict[str, Spelling] = {
    "add": lambda g, s, n, m: g + s, "sub": lambda g, s, n, m: g - s,
    "mul": lambda g, s, n, m: g * s, "div": lambda g, s, n, m: g / s,
    "neg": lambda g, s, n, m: -g, "sqrt": lambda g, s, n, m: torch.sqrt(g),
    "abs": lambda g, s, n, m: g.abs(), "sign": lambda g, s, n, m: torch.sign(g),
    "exp": lambda g, s, n, m: torch.exp(g), "log": lambda g, s, n, m: s.log(),
    "pow": lambda g, s, n, m: torch.pow(g, 3.0),
    "max": lambda g, s, n, m: torch.maximum(g, s), "min": lambda g, s, n, m: torch.minimum(g, s),
    "where": lambda g, s, n, m: torch.where(g > s, g - s, s),
    "eq": lambda g, s, n, m: torch.where(g == s, g, -s),
    "ne": lambda g, s, n, m: torch.where(g != s, g, -s),
    "lt": lambda g, s, n, m: torch.where(g < s, g, -s),
    "le": lambda g, s, n, m: torch.where(g <= s, g, -s),
    "gt": lambda g, s, n, m: torch.where(g > s, g, -s),
    "ge": lambda g, s, n, m: torch.where(g >= s, g, -s),
}
#: with a number, which the engines compute once per step (hoisted)
NUMBER: dict[str, Spelling] = {
    "add": lambda g, s, n, m: g + n, "sub": lambda g, s, n, m: n - g,
    "mul": lambda g, s, n, m: g * n, "div": lambda g, s, n, m: g / n,
    "pow": lambda g, s, n, m: g.abs() ** n, "max": lambda g, s, n, m: g.clamp_min(n),
    "min": lambda g, s, n, m: g.clamp(max=n),
    "where": lambda g, s, n, m: torch.where(g > n, g, m * s),
    "lt": lambda g, s, n, m: torch.where(g < n, g, s),
    "ge": lambda g, s, n, m: torch.where(n >= g, g, s),
}
#: numbers alone: computed on the host in double, then applied to a tensor
HOST: dict[str, Spelling] = {
    "add": lambda g, s, n, m: g * (n + m), "sub": lambda g, s, n, m: g * (n - m),
    "mul": lambda g, s, n, m: g * (n * m), "div": lambda g, s, n, m: g * (n / m),
    "neg": lambda g, s, n, m: g * -n, "abs": lambda g, s, n, m: g * abs(n - m),
    "pow": lambda g, s, n, m: g * n ** m,
}
#: ops whose tensor form rounds as the C library or vector math does, not bit for bit
#: (torch's own CPU sqrt in fp32 is Sleef's, within an ulp: 17% of random inputs differ
#: from the correctly rounded root that C's sqrtf and AVX give)
ROUNDED = {"exp", "log", "pow", "sqrt"}


def _outputs() -> dict[str, tuple[str, str, Spelling]]:
    forms = {"tensor": TENSOR, "number": NUMBER, "host": HOST}
    return {f"{op}_{form}": (op, form, spelling[op])
            for form, spelling in forms.items() for op in sorted(spelling)}


OUTPUTS = _outputs()
KEYS = ("s", *OUTPUTS)


def rule(param, grad, state, hp):
    """Every spelling at once, each into its own state key (s is read, kept)."""
    s, n, m = state["s"], hp["n"], hp["m"]
    new = {key: spelling(grad, s, n, m) for key, (_, _, spelling) in OUTPUTS.items()}
    return param, {"s": s, **new}


def test_every_op_of_the_table_is_exercised() -> None:
    assert set(TENSOR) == set(OPS), "give each op of optimlab.ir.ops a spelling here"


def _inputs(gen: torch.Generator) -> tuple[Tensor, Tensor, float, float]:
    size = 96
    grad = torch.randn(size, generator=gen)
    s = torch.randn(size, generator=gen).abs() + 0.1
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.5])
    grad[:6], s[6:12] = specials, specials
    s[12:18] = grad[12:18]  # equal pairs, for eq and le
    s[18:24] = -grad[18:24].abs()  # negative s: log's NaN
    n, m = (0.25 + torch.rand(2, generator=gen, dtype=torch.float64)).tolist()
    return grad, s, n, m


def _eager(grad: Tensor, s: Tensor, n: float, m: float) -> dict[str, Tensor]:
    return rule(grad.clone(), grad, {"s": s}, {"n": n, "m": m})[1]


def _assert_same(key: str, got: Tensor, want: Tensor) -> None:
    op, form, _ = OUTPUTS.get(key, ("input", "", None))
    if (op in ROUNDED and form != "host") or (op == "div" and form == "number"):
        torch.testing.assert_close(got, want, rtol=2.5e-7, atol=0, equal_nan=True,
                                   msg=lambda m: f"{key}: {m}")
        return
    nan = want.isnan()
    assert torch.equal(got.isnan(), nan), f"{key}: NaN at other places"
    bits, wanted = got[~nan].view(torch.int32), want[~nan].view(torch.int32)
    wrong = (bits != wanted).nonzero().flatten()
    assert not len(wrong), (f"{key}: {got[~nan][wrong][:4].tolist()} where torch gives "
                            f"{want[~nan][wrong][:4].tolist()}")


def test_the_generated_c_kernel_prints_every_op_as_torch_computes_it(gen) -> None:
    if not ckernel.available():
        pytest.skip("no C compiler")
    grad, s, n, m = _inputs(gen)
    want = _eager(grad, s, n, m)
    kernel = ckernel.kernel_for(rule, {}, ("n", "m"), KEYS, ["f32"] * len(KEYS),
                                torch.float32)
    param = torch.randn(grad.shape, generator=gen)
    stored = [s.clone(), *(torch.randn(grad.shape, generator=gen) for _ in OUTPUTS)]
    kernel([param], [grad], [stored], {"n": n, "m": m})
    for key, got in zip(KEYS, stored, strict=True):
        _assert_same(key, got, want[key])


@pytest.mark.parametrize("compiled", [False, True], ids=["body", "inductor"])
def test_the_compiled_engines_body_prints_every_op_as_torch_computes_it(gen,
                                                                        compiled) -> None:
    grad, s, n, m = _inputs(gen)
    want = _eager(grad, s, n, m)
    split = hoisting.split(rule, {}, ("n", "m"), KEYS)
    hoisted = [torch.tensor(v, dtype=torch.float32)
               for v in split.host_values({"n": n, "m": m})]
    body = split.body
    if compiled:
        torch._dynamo.reset()
        body = torch.compile(body, fullgraph=True, options=_inductor_options())
    stored = [s.clone(), *(torch.randn(grad.shape, generator=gen) for _ in OUTPUTS)]
    _, *new = body(grad.clone(), grad, *stored, *hoisted)
    for key, got in zip(KEYS, new, strict=True):
        _assert_same(key, got, want[key])


def test_the_host_computes_each_op_as_python_does() -> None:
    """The per-step scalars, on floats: IEEE's answers where Python would raise."""
    assert ops.host("div", 1.0, 0.0) == float("inf")
    assert ops.host("div", -1.0, 0.0) == -float("inf")
    assert ops.host("pow", -8.0, 1 / 3) != ops.host("pow", -8.0, 1 / 3)  # NaN, not complex
    assert ops.host("log", 0.0) == -float("inf") and ops.host("exp", 1e4) == float("inf")
    assert ops.host("sign", float("nan")) == 0.0 and ops.host("sign", -0.0) == 0.0
    assert ops.host("max", float("nan"), 1.0) != ops.host("max", float("nan"), 1.0)


def test_an_op_is_one_row_of_the_table(monkeypatch, gen) -> None:
    """A new row (tanh) is traced, printed as C and as the compiled engine's body, with
    nothing else changed."""
    monkeypatch.setitem(OPS, "tanh", Op("tanh", 1, "(({mt})tanh((double){0}))",
                                        "torch.tanh({0})", lambda a: a, torch=(torch.tanh,),
                                        method=True))

    def tanh_rule(param, grad, state, hp):
        return param - hp["lr"] * torch.tanh(grad), {"m": state["m"].tanh()}

    grad, m = torch.randn(40, generator=gen), torch.randn(40, generator=gen)
    param = torch.randn(40, generator=gen)
    want_param, want_m = param - 0.5 * torch.tanh(grad), m.tanh()
    split = hoisting.split(tanh_rule, {}, ("lr",), ("m",))
    new_param, new = split.element(param, grad, {"m": m},
                                   [torch.tensor(v) for v in split.host_values({"lr": 0.5})])
    torch.testing.assert_close(new_param, want_param, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(new["m"], want_m, rtol=1e-6, atol=1e-7)
    if ckernel.available():
        kernel = ckernel.kernel_for(tanh_rule, {}, ("lr",), ("m",), ["f32"], torch.float32)
        stored = m.clone()
        kernel([param], [grad], [[stored]], {"lr": 0.5})
        torch.testing.assert_close(param, want_param, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(stored, want_m, rtol=1e-6, atol=1e-7)
