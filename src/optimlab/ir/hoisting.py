"""A rule split in two by its trace (trace.py): what is the same for every element,
computed once per step on the host, and the per-element body, run with torch ops.

This is what the compiled engine compiles: Inductor then sees the per-step scalars
(``1 − β₁``, ``lr·λ``, ``ε/√(1 − β₂ᵗ)``, the reciprocals of the bias corrections) as
inputs already rounded to the element type, computed in double as Python computes the
eager rule's (no per-element ``pow`` or fp64 reconversion, and no fp64 inputs that make
Dynamo restart its analysis), and a tensor divided by a scalar as a multiply by its
reciprocal. The C generator (ckernel/emit.py) splits the same trace the same way; both
print each op from the one table (ops.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from optimlab.ir import ops
from optimlab.ir.trace import Graph, UnsupportedRule, trace

__all__ = ["Split", "UnsupportedRule", "split"]


@dataclass(frozen=True)
class Split:
    """A traced rule: ``hoisted`` lists the per-step values the body reads, as
    (``"value"`` or ``"recip"``, node index)."""

    graph: Graph
    numbers: tuple[str, ...]
    state_keys: tuple[str, ...]
    hoisted: tuple[tuple[str, int], ...]
    body: Callable[..., tuple[Tensor, ...]] = field(default=None, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", self.compiled_body())

    def host_values(self, numbers: Mapping[str, float]) -> list[float]:
        """The hoisted values for this step's numbers, computed in double."""
        values: dict[int, float] = {}
        for node in self.graph.live():
            if node.tensor:
                continue
            if node.op == "const":
                values[node.index] = node.value
            elif node.op == "input":
                values[node.index] = float(numbers[node.name.removeprefix("number:")])
            else:
                values[node.index] = ops.host(node.op, *(values[a] for a in node.args))
        return [ops.host("div", 1.0, values[i]) if kind == "recip" else values[i]
                for kind, i in self.hoisted]

    def element(self, param: Tensor, grad: Tensor, state: Mapping[str, Tensor],
                hoisted: Sequence[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The rule's per-element body over tensors, the per-step values given."""
        new_param, *new_states = self.body(param, grad, *(state[k] for k in self.state_keys),
                                           *hoisted)
        return new_param, dict(zip(self.state_keys, new_states, strict=True))

    def compiled_body(self) -> Callable[..., tuple[Tensor, ...]]:
        """The body as straight-line Python (generated once: a trace of it is a few
        statements, not an interpreter's loop)."""
        namespace = {"torch": torch, "extreme": ops.extreme, "inf": math.inf,
                     "nan": math.nan}
        exec(compile(self.source(), "<optimlab rule body>", "exec"), namespace)
        return namespace["body"]

    def source(self) -> str:
        """The Python source of :attr:`body`."""
        slot = {entry: k for k, entry in enumerate(self.hoisted)}
        inputs = {"param": "param", "grad": "grad",
                  **{f"state:{key}": f"state_{i}" for i, key in enumerate(self.state_keys)}}
        lines = [f"def body({', '.join([*inputs.values(), '*hoisted'])}):"]

        def operand(index: int, kind: str = "value") -> str:
            node = self.graph.nodes[index]
            if node.tensor:
                return inputs[node.name] if node.op == "input" else f"t{index}"
            if node.op == "const":
                return repr(1 / node.value if kind == "recip" else node.value)
            return f"hoisted[{slot[(kind, index)]}]"

        for node in self.graph.live():
            if not node.tensor or node.op == "input":
                continue
            if self.graph.divides_by_scalar(node):
                text = f"{operand(node.args[0])} * {operand(node.args[1], 'recip')}"
            else:
                text = ops.python(node.op, [operand(a) for a in node.args])
            lines.append(f"    t{node.index} = {text}")
        outputs = [operand(self.graph.outputs["param"])]
        outputs += [operand(self.graph.outputs[f"state:{k}"]) for k in self.state_keys]
        lines.append(f"    return ({', '.join(outputs)},)")
        return "\n".join(lines) + "\n"


def split(update: Callable, options: Mapping[str, Any], numbers: Sequence[str],
          state_keys: Sequence[str]) -> Split:
    """Trace ``update`` under ``options`` and find the per-step values its body reads.
    Raises UnsupportedRule for a rule the trace cannot follow."""
    graph = trace(update, options, numbers, state_keys)
    hoisted: list[tuple[str, int]] = []
    for node in graph.live():
        if not node.tensor or node.op == "input":
            continue
        for position, index in enumerate(node.args):
            argument = graph.nodes[index]
            if argument.tensor or argument.op == "const":
                continue
            kind = "recip" if graph.divides_by_scalar(node) and position == 1 else "value"
            if (kind, index) not in hoisted:
                hoisted.append((kind, index))
    for name in ("param", *(f"state:{k}" for k in state_keys)):
        output = graph.nodes[graph.outputs[name]]
        if not output.tensor and output.op != "const" and ("value", output.index) not in hoisted:
            hoisted.append(("value", output.index))
    return Split(graph, tuple(numbers), tuple(state_keys), tuple(hoisted))
