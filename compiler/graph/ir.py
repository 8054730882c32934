"""The graph IR: a module of functions over tensors.

A `Graph` is a function: typed inputs, constants (weights), nodes in topological order
and outputs. A `Value` is a tensor with a dtype and a shape whose dimensions are integers
or names (symbolic, e.g. a batch size ``"N"``); a `Node` applies an operator (`ops`) with
attributes to values. After partitioning each node names the device it runs on.

Printed form, one node a line::

    def main(%input: float32[N, 3, 32, 32]) -> (%logits: float32[N, 10]):
        %conv0 = Conv(%input, @w0, @b0, kernel_shape=[3, 3], pads=[1, 1, 1, 1]) : float32[N, 16, 32, 32]
        ...
        return %logits
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vta.isa.errors import VTAError

Dim = int | str
_ids = itertools.count()


class GraphError(VTAError):
    """A malformed graph or model; the message names the node, value or field."""


@dataclass(eq=False)
class Value:
    """A tensor in the graph: ``const`` holds a constant's data (weights, folded results)."""

    name: str
    dtype: str | None = None
    shape: tuple[Dim, ...] | None = None
    const: np.ndarray | None = None
    producer: Node | None = field(default=None, repr=False)
    quant: tuple[float, int] | None = None  # (scale, zero point) of a quantized tensor
    uid: int = field(default_factory=lambda: next(_ids))

    def __hash__(self) -> int:
        return self.uid

    @property
    def is_const(self) -> bool:
        return self.const is not None

    def type_str(self) -> str:
        dims = "?" if self.shape is None else ", ".join(str(d) for d in self.shape)
        return f"{self.dtype or '?'}[{dims}]"

    def static_shape(self) -> tuple[int, ...]:
        if self.shape is None or not all(isinstance(d, int) for d in self.shape):
            raise GraphError(f"value {self.name} has no static shape ({self.type_str()})")
        return self.shape  # type: ignore[return-value]


@dataclass(eq=False)
class Node:
    op: str
    inputs: list[Value | None]  # None for an omitted optional input
    outputs: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    device: str | None = None

    def __hash__(self) -> int:
        return id(self)

    def input(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None


@dataclass(eq=False)
class Graph:
    name: str
    inputs: list[Value]
    outputs: list[Value]
    nodes: list[Node] = field(default_factory=list)
    # memory plan: value name -> (byte offset, bytes) in one arena, and the arena's size
    plan: dict[str, tuple[int, int]] = field(default_factory=dict)
    arena_bytes: int = 0

    def constants(self) -> list[Value]:
        seen: dict[int, Value] = {}
        for n in self.nodes:
            for v in n.inputs:
                if v is not None and v.is_const:
                    seen.setdefault(v.uid, v)
        return list(seen.values())

    def consumers(self) -> dict[Value, list[Node]]:
        out: dict[Value, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                if v is not None:
                    out.setdefault(v, []).append(n)
        return out

    def check(self) -> None:
        """Every input of a node is a graph input, a constant or an earlier node's output."""
        known = {v.uid for v in self.inputs}
        for n in self.nodes:
            for v in n.inputs:
                if v is not None and not v.is_const and v.uid not in known:
                    raise GraphError(f"node {n.name} ({n.op}) reads {v.name}, which nothing before it produces")
            for v in n.outputs:
                known.add(v.uid)
        for v in self.outputs:
            if v.uid not in known and not v.is_const:
                raise GraphError(f"graph output {v.name} is never produced")

    def __str__(self) -> str:
        return graph_str(self)


@dataclass(eq=False)
class Module:
    """Functions by name; ``main`` is the entry point."""

    functions: dict[str, Graph]

    @property
    def main(self) -> Graph:
        return self.functions["main"]

    def __str__(self) -> str:
        return "\n\n".join(graph_str(g, name) for name, g in self.functions.items())


def _attr_str(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"tensor<{v.dtype}{list(v.shape)}>"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_attr_str(x) for x in v) + "]"
    if isinstance(v, Graph):
        return f"graph<{v.name}>"
    return repr(v) if isinstance(v, str) else str(v)


def _ref(v: Value | None) -> str:
    if v is None:
        return "_"
    return f"@{v.name}" if v.is_const else f"%{v.name}"


def graph_str(g: Graph, name: str | None = None) -> str:
    ins = ", ".join(f"%{v.name}: {v.type_str()}" for v in g.inputs)
    outs = ", ".join(f"%{v.name}: {v.type_str()}" for v in g.outputs)
    lines = [f"def {name or g.name}({ins}) -> ({outs}):"]
    for c in g.constants():
        lines.append(f"    @{c.name} = const {c.type_str()}" + (f"  # quant {c.quant}" if c.quant else ""))
    for n in g.nodes:
        args = [_ref(v) for v in n.inputs] + [f"{k}={_attr_str(v)}" for k, v in sorted(n.attrs.items())]
        res = ", ".join(f"%{v.name}" for v in n.outputs)
        types = ", ".join(v.type_str() for v in n.outputs)
        dev = f"  # on {n.device}" if n.device else ""
        lines.append(f"    {res} = {n.op}({', '.join(args)}) : {types}{dev}")
    lines.append(f"    return {', '.join(_ref(v) for v in g.outputs)}")
    return "\n".join(lines)


def walk_values(g: Graph) -> Iterator[Value]:
    seen: set[int] = set()
    for v in g.inputs:
        seen.add(v.uid)
        yield v
    for n in g.nodes:
        for v in (*n.inputs, *n.outputs):
            if v is not None and v.uid not in seen:
                seen.add(v.uid)
                yield v
