"""A traced rule (optimlab.ir.trace) as C: a once-per-call prologue and a per-element body.

* Scalar nodes (no tensor enters them: ``1 - beta1``, ``lr * weight_decay``,
  ``eps / bias_correction2 ** 0.5``) are computed once per call in double, as Python
  computes them for the eager rule, then rounded once to the element math type and
  handed to the loop as ``hoisted[k]``.
* A tensor divided by a scalar becomes a multiply by the hoisted reciprocal, so that
  Adam's element loop has one divide and one square root.
* The element body computes in the math type (``mt``: float, or double for fp64),
  one C statement per node, in the rule's order: no reassociation, and the build turns
  off FMA contraction (``-ffp-contract=off``), so each operation rounds as torch's
  eager fp32 operation does.

Each op is printed from the IR's one table (optimlab.ir.ops), as the compiled engine's
body is: max/min propagate NaN as torch.maximum and clamp do, sign is torch.sign's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optimlab.ir import ops
from optimlab.ir.trace import Graph, Node


@dataclass(frozen=True)
class Body:
    """The C pieces of one rule.

    ``prologue``: statements computing ``hoisted[k]`` (in ``mt``) from ``numbers[j]`` (the
    doubles passed per call, in ``numbers`` order); ``element``: statements reading
    ``in_param``, ``in_grad`` and ``in_<i>`` (state key i) and the hoisted ``h<k>``;
    ``param``, ``states``: the C expressions of the new param and of each new state, in
    the order of the state keys.
    """

    prologue: tuple[str, ...]
    hoisted: int
    element: tuple[str, ...]
    param: str
    states: tuple[str, ...]
    divides: int  # per element, for the record
    roots: int


def literal(value: float, double: bool) -> str:
    """``value`` as an exact C literal (a hex float), cast to ``mt`` unless ``double``."""
    if value != value:
        text = "NAN"
    elif value in (float("inf"), float("-inf")):
        text = "INFINITY" if value > 0 else "(-INFINITY)"
    else:
        text = float(value).hex()
    return text if double else f"((mt){text})"


class _Emitter:
    def __init__(self, graph: Graph, numbers: Sequence[str], state_keys: Sequence[str]):
        self.graph = graph
        self.number_slot = {f"number:{name}": j for j, name in enumerate(numbers)}
        self.state_slot = {f"state:{key}": i for i, key in enumerate(state_keys)}
        self.prologue: list[str] = []
        self.element: list[str] = []
        self.hoisted: dict[tuple[str, int], int] = {}  # ("value" | "recip", node) -> k
        self.divides = self.roots = 0

    def scalar(self, node: Node) -> str:
        """The prologue's double expression of a scalar node."""
        if node.op == "const":
            return literal(node.value, double=True)
        if node.op == "input":
            return f"numbers[{self.number_slot[node.name]}]"
        return f"s{node.index}"

    def hoist(self, kind: str, node: Node) -> str:
        """The element loop's name for a scalar node (or its reciprocal), rounded once."""
        if node.op == "const":
            return literal(1 / node.value if kind == "recip" else node.value, double=False)
        key = (kind, node.index)
        if key not in self.hoisted:
            k = self.hoisted[key] = len(self.hoisted)
            value = self.scalar(node)
            value = f"(1.0 / {value})" if kind == "recip" else value
            self.prologue.append(f"hoisted[{k}] = (mt){value};")
        return f"h{self.hoisted[key]}"

    def operand(self, index: int) -> str:
        node = self.graph.nodes[index]
        if not node.tensor:
            return self.hoist("value", node)
        if node.op == "input":
            return "in_param" if node.name == "param" else "in_grad" if node.name == "grad" \
                else f"in_{self.state_slot[node.name]}"
        return f"t{index}"

    def visit(self, node: Node) -> None:
        if node.op in ("input", "const"):
            return
        if not node.tensor:
            args = [self.scalar(self.graph.nodes[a]) for a in node.args]
            ctype = "int" if node.boolean else "double"
            self.prologue.append(f"const {ctype} s{node.index} = {ops.c(node.op, args, True)};")
            return
        op = node.op
        if self.graph.divides_by_scalar(node):
            divisor = self.graph.nodes[node.args[1]]
            op, args = "mul", [self.operand(node.args[0]), self.hoist("recip", divisor)]
        else:
            args = [self.operand(a) for a in node.args]
        self.divides += op == "div"
        self.roots += op == "sqrt"
        ctype = "int" if node.boolean else "mt"
        self.element.append(f"const {ctype} t{node.index} = {ops.c(op, args, False)};")


def emit(graph: Graph, numbers: Sequence[str], state_keys: Sequence[str]) -> Body:
    """The C body of a traced rule."""
    emitter = _Emitter(graph, numbers, state_keys)
    for node in graph.live():
        emitter.visit(node)
    param = emitter.operand(graph.outputs["param"])
    states = tuple(emitter.operand(graph.outputs[f"state:{key}"]) for key in state_keys)
    # prologue lines are appended as values are first needed: scalars before their uses
    scalar_lines = [line for line in emitter.prologue if not line.startswith("hoisted")]
    hoist_lines = [line for line in emitter.prologue if line.startswith("hoisted")]
    return Body(tuple(scalar_lines + hoist_lines), len(emitter.hoisted),
                tuple(emitter.element), param, states, emitter.divides, emitter.roots)
