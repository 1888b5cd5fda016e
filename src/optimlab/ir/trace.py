"""Trace a rule (rules/) into an expression graph, by running it on symbols.

The rule is called once with symbolic tensors for the param, the gradient and each state
key, symbolic scalars for its numbers (lr, betas, ...), and the concrete options (bools and
strings), so that every ``if`` of the rule is decided at trace time and what remains is
one elementwise expression per output. A symbol records each operation applied to it
(Python operators, Tensor methods, and torch functions through ``__torch_function__``:
those of the op table, ops.py, and the spellings below that reduce to its ops); anything
else raises :class:`UnsupportedRule`, and the engine then runs the rule another way.

Nodes are hash-consed, so a subexpression the rule computes twice (``g * g``) is one node.
A node is a *scalar* when no tensor enters it (``1 - beta1``, ``lr * weight_decay``):
the engines compute those once per step on the host, not per element (hoisting.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from optimlab.ir.ops import OPS


class UnsupportedRule(Exception):
    """The rule uses something the IR cannot express (an op, a branch on a number); the
    caller runs the rule with another engine."""


@dataclass(frozen=True)
class Node:
    """One value of the traced expression: an input, a constant or an operation."""

    index: int
    op: str  # "input", "const" or one of ops.OPS
    args: tuple[int, ...]
    tensor: bool  # False: a scalar, the same for every element
    boolean: bool  # a comparison's result, only fit for where()
    name: str = ""  # an input's name: "param", "grad", "state:<key>", "number:<name>"
    value: float = 0.0  # a constant's value


@dataclass
class Graph:
    """The nodes of one traced rule, in creation (hence topological) order."""

    nodes: list[Node] = field(default_factory=list)
    index_of: dict[tuple[Any, ...], int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)  # "param", "state:<key>"

    def add(self, op: str, args: tuple[int, ...] = (), name: str = "", value: float = 0.0,
            tensor: bool | None = None) -> int:
        key = (op, args, name, _exact(value))
        if key in self.index_of:
            return self.index_of[key]
        inputs = [self.nodes[a] for a in args]
        if op in ("input", "const"):
            is_tensor, boolean = bool(tensor), False
        else:
            is_tensor = any(n.tensor for n in inputs)
            boolean = OPS[op].boolean
            _check_types(op, inputs)
        node = Node(len(self.nodes), op, args, is_tensor, boolean, name, value)
        self.nodes.append(node)
        self.index_of[key] = node.index
        return node.index

    def const(self, value: float) -> int:
        return self.add("const", value=float(value), tensor=False)

    def live(self) -> list[Node]:
        """The nodes the outputs depend on, in topological order."""
        needed: set[int] = set()
        stack = list(self.outputs.values())
        while stack:
            index = stack.pop()
            if index not in needed:
                needed.add(index)
                stack.extend(self.nodes[index].args)
        return [n for n in self.nodes if n.index in needed]

    def inputs(self) -> Iterator[Node]:
        return (n for n in self.nodes if n.op == "input")

    def divides_by_scalar(self, node: Node) -> bool:
        """Whether ``node`` divides by a per-step scalar: both code generators (C and the
        compiled engine's body) multiply by its reciprocal, computed once on the host."""
        return node.op == "div" and not self.nodes[node.args[1]].tensor


def _exact(value: float) -> Any:
    """A key that tells 0.0 from -0.0 and NaN from itself."""
    return ("nan",) if value != value else (value, math.copysign(1.0, value))


def _check_types(op: str, inputs: list[Node]) -> None:
    if op == "where":
        if not inputs[0].boolean or inputs[1].boolean or inputs[2].boolean:
            raise UnsupportedRule("where(condition, a, b) needs a comparison as its "
                                  "condition and numbers as a and b")
    elif any(n.boolean for n in inputs):
        raise UnsupportedRule(f"{op} of a comparison's result (only where() takes one)")
    if op == "pow" and inputs[1].tensor:
        raise UnsupportedRule("a power with a tensor exponent (only a number may be one)")


class Symbol:
    """A traced value: arithmetic on it records nodes in its graph."""

    __slots__ = ("graph", "index")

    def __init__(self, graph: Graph, index: int) -> None:
        self.graph, self.index = graph, index

    # --- recording ---------------------------------------------------------------------
    def _node(self, op: str, *others: Any) -> Symbol:
        args = (self.index, *(_index(self.graph, o) for o in others))
        return Symbol(self.graph, self.graph.add(op, args))

    def _reflected(self, op: str, other: Any) -> Symbol:
        args = (_index(self.graph, other), self.index)
        return Symbol(self.graph, self.graph.add(op, args))

    __hash__ = object.__hash__

    def __pow__(self, exponent: Any) -> Symbol:
        node = self.graph.nodes[self.index]
        if node.tensor and not isinstance(exponent, Symbol):
            if exponent == 2:  # as torch.pow computes it
                return self * self
            if exponent == 0.5:
                return self.sqrt()
        return self._node("pow", exponent)

    def __rpow__(self, base: Any) -> Symbol:
        return self._reflected("pow", base)

    def __bool__(self) -> bool:
        raise UnsupportedRule("the rule branches on the value of a number or a tensor (an "
                              "`if` on something other than an option)")

    # --- spellings of the ops that are not ops of their own (the rest: ops.OPS) -------
    def square(self) -> Symbol: return self * self
    def maximum(self, other: Any) -> Symbol: return _elementwise("max")(self, other)
    def minimum(self, other: Any) -> Symbol: return _elementwise("min")(self, other)
    def clamp_min(self, low: Any) -> Symbol: return self._node("max", low)
    def clamp_max(self, high: Any) -> Symbol: return self._node("min", high)

    def clamp(self, min: Any = None, max: Any = None) -> Symbol:  # torch's names
        result = self if min is None else self._node("max", min)
        return result if max is None else result._node("min", max)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in OPS and OPS[name].method:
            return lambda *others: self._node(name, *others)
        raise UnsupportedRule(f"Tensor.{name} is not among the operations the IR "
                              f"supports ({', '.join(SUPPORTED)})")

    @classmethod
    def __torch_function__(cls, func: Callable, types: Any, args: Sequence[Any] = (),
                           kwargs: Mapping[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        handler = TORCH_FUNCTIONS.get(func) or next(
            (_recorder(op.name) for op in OPS.values() if func in op.torch), None)
        if handler is None:
            name = getattr(func, "__name__", repr(func))
            raise UnsupportedRule(f"torch.{name} is not among the operations the IR "
                                  f"supports ({', '.join(SUPPORTED)})")
        try:
            return handler(*args, **kwargs)
        except TypeError as error:
            raise UnsupportedRule(f"torch.{func.__name__} called as the generator does not "
                                  f"support: {error}") from None


def _index(graph: Graph, value: Any) -> int:
    if isinstance(value, Symbol):
        if value.graph is not graph:
            raise UnsupportedRule("a value from another trace")
        return value.index
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnsupportedRule(f"the rule combines a traced value with {value!r} "
                              f"({type(value).__name__}); only numbers are supported")
    return graph.const(value)


def _symbol(value: Any, like: Any) -> Symbol:
    if isinstance(value, Symbol):
        return value
    graph = next(a.graph for a in like if isinstance(a, Symbol))
    return Symbol(graph, _index(graph, value))


def _binary(op: str) -> Callable[[Any, Any], Symbol]:
    def apply(a: Any, b: Any) -> Symbol:
        return _symbol(a, (a, b))._node(op, b)
    return apply


def _elementwise(op: str) -> Callable[[Any, Any], Symbol]:
    """torch.maximum and the two-tensor forms of torch.max/min (a number there would be
    a dimension, the reduction these kernels do not do)."""
    def apply(a: Any, b: Any) -> Symbol:
        if not (isinstance(a, Symbol) and isinstance(b, Symbol)):
            raise UnsupportedRule(f"torch.{op}imum of {a!r} and {b!r}: both must be "
                                  "traced values (use clamp for a number)")
        return a._node(op, b)
    return apply


def _recorder(op: str) -> Callable[..., Symbol]:
    def apply(first: Any, *others: Any) -> Symbol:
        return _symbol(first, (first, *others))._node(op, *others)
    return apply


def _operators(op: str, stem: str, reflected: bool) -> None:
    setattr(Symbol, f"__{stem}__", lambda self, *others: self._node(op, *others))
    if reflected:
        setattr(Symbol, f"__r{stem}__", lambda self, other: self._reflected(op, other))


for _op in OPS.values():
    if _op.operator:
        _operators(_op.name, _op.operator, _op.reflected)

TORCH_FUNCTIONS: dict[Callable, Callable[..., Symbol]] = {
    function: _recorder(op.name) for op in OPS.values() for function in op.torch}
TORCH_FUNCTIONS.update({
    torch.square: Symbol.square,
    torch.maximum: _elementwise("max"), torch.minimum: _elementwise("min"),
    torch.Tensor.maximum: _elementwise("max"), torch.Tensor.minimum: _elementwise("min"),
    torch.max: _elementwise("max"), torch.min: _elementwise("min"),
    torch.clamp: Symbol.clamp, torch.clamp_min: Symbol.clamp_min,
    torch.clamp_max: Symbol.clamp_max, torch.clip: Symbol.clamp,
    torch.pow: lambda a, b: _symbol(a, (a, b)) ** b,
})
SUPPORTED = (*sorted(OPS), "operators + - * / ** and comparisons", "clamp", "clamp_min",
             "clamp_max", "maximum", "minimum", "square")


class TraceHyper(Mapping[str, Any]):
    """The rule's ``hp``: options as their values, numbers as symbolic scalars."""

    def __init__(self, graph: Graph, options: Mapping[str, Any], numbers: Sequence[str]):
        both = set(options) & set(numbers)
        if both:
            raise ValueError(f"{sorted(both)} are given both as options and as numbers")
        self.options = dict(options)
        self.numbers = {name: Symbol(graph, graph.add("input", name=f"number:{name}"))
                        for name in numbers}

    def __getitem__(self, key: str) -> Any:
        if key in self.options:
            return self.options[key]
        if key in self.numbers:
            return self.numbers[key]
        raise KeyError(f"the rule reads hp[{key!r}], which is neither among the options "
                       f"{sorted(self.options)} nor the numbers {sorted(self.numbers)}")

    def __iter__(self) -> Iterator[str]:
        yield from self.options
        yield from self.numbers

    def __len__(self) -> int:
        return len(self.options) + len(self.numbers)


def trace(update: Callable, options: Mapping[str, Any], numbers: Sequence[str],
          state_keys: Sequence[str]) -> Graph:
    """Run ``update(param, grad, state, hp)`` on symbols; the graph of its outputs
    ``"param"`` and ``"state:<key>"`` for each of ``state_keys``."""
    graph = Graph()
    param = Symbol(graph, graph.add("input", name="param", tensor=True))
    grad = Symbol(graph, graph.add("input", name="grad", tensor=True))
    state = {key: Symbol(graph, graph.add("input", name=f"state:{key}", tensor=True))
             for key in state_keys}
    hp = TraceHyper(graph, options, numbers)
    try:
        result = update(param, grad, dict(state), hp)
    except UnsupportedRule:
        raise
    except Exception as error:  # the rule did something symbols cannot follow
        raise UnsupportedRule(f"tracing the rule raised {type(error).__name__}: "
                              f"{error}") from error
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping)):
        raise UnsupportedRule("the rule must return (new param, dict of new state)")
    new_param, new_state = result
    if set(new_state) != set(state_keys):
        raise UnsupportedRule(f"the rule returns the state keys {sorted(new_state)}, not "
                              f"the state keys {sorted(state_keys)} it was given")
    graph.outputs["param"] = _index(graph, new_param)
    for key in state_keys:
        graph.outputs[f"state:{key}"] = _index(graph, new_state[key])
    for name, index in graph.outputs.items():
        if graph.nodes[index].boolean:
            raise UnsupportedRule(f"the rule's {name} is a comparison, not a number")
    return graph
