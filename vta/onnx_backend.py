"""An ``onnx.backend`` backend over the graph compiler and the CPU backend, so the ONNX
node conformance tests (`onnx.backend.test`) run against it."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module

from vta.runtime.graph import run_graph

# inputs that are operands of the operator's definition (shapes, axes, bounds), not data:
# the backend binds them as constants, as a model would hold them as initializers
_OPERANDS = {"Reshape": {1}, "Slice": {1, 2, 3, 4}, "Unsqueeze": {1}, "Squeeze": {1}, "Expand": {1}, "Pad": {1, 2},
             "Resize": {1, 2, 3}, "ConstantOfShape": {0}, "Clip": {1, 2}, "ReduceSum": {1}, "ReduceMean": {1},
             "ReduceMax": {1}, "ReduceMin": {1}, "ReduceSumSquare": {1}, "ReduceL2": {1}, "Tile": {1},
             "Split": {1}, "TopK": {1}, "Range": {0, 1, 2}, "Dropout": {1, 2}}


def _bind_operands(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    from onnx import numpy_helper

    names = set()
    for n in model.graph.node:
        for i in _OPERANDS.get(n.op_type, ()):
            if i < len(n.input) and n.input[i] in feeds:
                names.add(n.input[i])
    if not names:
        return model
    m = onnx.ModelProto.FromString(model.SerializeToString())
    keep = [vi for vi in m.graph.input if vi.name not in names]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m.graph.initializer.extend(numpy_helper.from_array(np.asarray(feeds[k]), k) for k in sorted(names))
    for k in names:
        feeds.pop(k)
    return m


class VtaRep(BackendRep):
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.exe: Any = None

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        inits = {t.name for t in self.model.graph.initializer}
        names = [i.name for i in self.model.graph.input if i.name not in inits]
        feeds = dict(zip(names, inputs)) if isinstance(inputs, (list, tuple)) else dict(inputs)
        if self.exe is None:  # compile for these shapes
            self.model = _bind_operands(self.model, feeds)
            self.exe = compile_module(import_onnx(self.model, {k: np.shape(v) for k, v in feeds.items()}))
        else:
            for k in set(feeds) - {v.name for v in self.exe.inputs}:
                feeds.pop(k)
        outs, _ = run_graph(self.exe, {k: np.asarray(v) for k, v in feeds.items()})
        return tuple(outs[v.name] for v in self.exe.outputs)


class VtaBackend(Backend):
    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> VtaRep:
        super().prepare(model, device, **kwargs)
        return VtaRep(model)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"
