"""The one table of the IR's operations: what each is, how the tracer recognises it, and
how every engine that prints it prints it.

One row per op: its arity; the Python operator (``__add__``, and ``__radd__`` where
``reflected``) and the torch functions and Tensor methods the tracer (trace.py) records as
it; its C form (ckernel/emit.py: ``{0}``… the operands, ``{sqrt}``/``{fabs}``/``{exp}``/
``{log}``/``{pow}`` the math functions of the type at hand, ``{mt}`` that type); its
Python form over tensors (the body the compiled engine hands to Inductor: hoisting.py);
and its value on Python floats (a per-step scalar, computed once on the host in double as
the eager rule computes it: hoisting.py and emit.py's prologue agree with it).

Adding an op is one row here. Spellings that are not ops of their own (``clamp``,
``square``, ``x ** 2``, ``torch.maximum``'s two-tensor rule) are in trace.py, in terms of
these. Each op matches torch exactly, NaN and signed zeros included: ``max``/``min``
propagate NaN as ``torch.maximum`` and ``clamp`` do; ``sign`` is 0 for NaN and +0 for ±0,
as ``torch.sign``; ``sqrt``, ``exp``, ``log`` and ``pow`` of a tensor round as the C
library or Inductor's vector math does (within an ulp or two of torch's eager CPU result,
itself Sleef's, not bit for bit: tests/test_ir.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


def _divide(a: float, b: float) -> float:
    """a / b with IEEE's answers where Python raises."""
    if b != 0:
        return a / b
    if a == 0 or a != a:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _root(a: float) -> float:
    return math.sqrt(a) if a >= 0 else math.nan


def _power(a: float, b: float) -> float:
    """a ** b as C's pow: NaN for a negative base and a fractional exponent (Python
    would answer a complex number), inf on overflow."""
    try:
        return math.pow(a, b)
    except ValueError:
        return math.inf if a == 0 else math.nan
    except OverflowError:
        return math.copysign(math.inf, a) if b == int(b) and int(b) % 2 else math.inf


def _exp(a: float) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


def _log(a: float) -> float:
    if a != a or a < 0:
        return math.nan
    return math.log(a) if a > 0 else -math.inf


def extreme(both: Callable, bound: Callable, a: object, b: object) -> Tensor:
    """max/min of two tensors, or of a tensor and a number (NaN propagates either way)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return both(a, b)
    return bound(a, b) if isinstance(a, Tensor) else bound(b, a)


def _max(a: float, b: float) -> float:
    return a if a > b or a != a else b


def _min(a: float, b: float) -> float:
    return a if a < b or a != a else b


@dataclass(frozen=True)
class Op:
    """One operation of the IR (see the module docstring for each field)."""

    name: str
    arity: int
    c: str
    python: str
    host: Callable[..., float]
    operator: str = ""  # the Python operator's dunder stem: "add" -> __add__
    reflected: bool = False  # __radd__ too
    torch: tuple[Callable, ...] = ()
    method: bool = False  # Tensor.<name>(...) records it
    boolean: bool = False  # a comparison: its result is fit for where() only


_T = torch.Tensor
OPS: dict[str, Op] = {op.name: op for op in (
    Op("add", 2, "({0} + {1})", "({0} + {1})", lambda a, b: a + b, "add", True,
       (torch.add,), method=True),
    Op("sub", 2, "({0} - {1})", "({0} - {1})", lambda a, b: a - b, "sub", True,
       (torch.sub,), method=True),
    Op("mul", 2, "({0} * {1})", "({0} * {1})", lambda a, b: a * b, "mul", True,
       (torch.mul,), method=True),
    Op("div", 2, "({0} / {1})", "({0} / {1})", _divide, "truediv", True, (torch.div,),
       method=True),
    Op("neg", 1, "(-{0})", "(-{0})", lambda a: -a, "neg", False, (torch.neg,), method=True),
    Op("sqrt", 1, "{sqrt}({0})", "torch.sqrt({0})", _root, "", False,
       (torch.sqrt, _T.sqrt), method=True),
    Op("abs", 1, "{fabs}({0})", "torch.abs({0})", abs, "abs", False, (torch.abs, _T.abs),
       method=True),
    Op("sign", 1, "(({mt})(({0} > 0) - ({0} < 0)))", "torch.sign({0})",
       lambda a: float((a > 0) - (a < 0)), "", False, (torch.sign, _T.sign), method=True),
    Op("exp", 1, "{exp}({0})", "torch.exp({0})", _exp, "", False, (torch.exp, _T.exp),
       method=True),
    Op("log", 1, "{log}({0})", "torch.log({0})", _log, "", False, (torch.log, _T.log),
       method=True),
    Op("pow", 2, "{pow}({0}, {1})", "({0} ** {1})", _power),  # spellings: trace.py
    Op("max", 2, "(({0} > {1} || {0} != {0}) ? {0} : {1})",
       "extreme(torch.maximum, torch.clamp_min, {0}, {1})", _max),
    Op("min", 2, "(({0} < {1} || {0} != {0}) ? {0} : {1})",
       "extreme(torch.minimum, torch.clamp_max, {0}, {1})", _min),
    Op("where", 3, "({0} ? {1} : {2})", "torch.where({0}, {1}, {2})",
       lambda c, a, b: a if c else b, torch=(torch.where,)),
    Op("eq", 2, "({0} == {1})", "({0} == {1})", lambda a, b: a == b, "eq", boolean=True),
    Op("ne", 2, "({0} != {1})", "({0} != {1})", lambda a, b: a != b, "ne", boolean=True),
    Op("lt", 2, "({0} < {1})", "({0} < {1})", lambda a, b: a < b, "lt", boolean=True),
    Op("le", 2, "({0} <= {1})", "({0} <= {1})", lambda a, b: a <= b, "le", boolean=True),
    Op("gt", 2, "({0} > {1})", "({0} > {1})", lambda a, b: a > b, "gt", boolean=True),
    Op("ge", 2, "({0} >= {1})", "({0} >= {1})", lambda a, b: a >= b, "ge", boolean=True),
)}

#: the C math function of each kind, for the prologue's double and the loop's ``mt``
#: (macros the loop template defines: sqrtf or sqrt, ...)
C_FUNCTIONS = {
    True: {"sqrt": "sqrt", "fabs": "fabs", "exp": "exp", "log": "log", "pow": "pow",
           "mt": "double"},
    False: {"sqrt": "SQRT", "fabs": "FABS", "exp": "EXP", "log": "LOG", "pow": "POW",
            "mt": "mt"},
}


def c(op: str, args: list[str], double: bool) -> str:
    """``op`` in C on ``args``; ``double``: the prologue's double math, else ``mt``."""
    return OPS[op].c.format(*args, **C_FUNCTIONS[double])


def python(op: str, args: list[str]) -> str:
    """``op`` as Python over tensors (the compiled engine's body)."""
    return OPS[op].python.format(*args)


def host(op: str, *values: float) -> float:
    """``op`` on Python floats (a per-step scalar, computed once on the host)."""
    return OPS[op].host(*values)
