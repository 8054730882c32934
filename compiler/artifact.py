"""The compiled-model artifact (``.vtapkg``): one zip archive that loads without running
any code from the file (no pickle) and refuses a version or config mismatch.

Contents:

- ``model.json``: format and version, the accelerator config (or null), the graph (values
  with dtype, shape and quantization; nodes with op, device and attributes), and the steps
  (each with the values of its kernel's inputs and of the node outputs it writes);
- ``tensors.npz``: every constant and array attribute, read with ``allow_pickle=False``;
- ``host/<k>.ll`` and the signatures in ``model.json``: the host kernels as LLVM IR, compiled
  for the loading machine when the artifact is opened;
- ``gpu/<k>.json``: a model compiled with ``host="gpu"``: each GPU program (PTX, launches,
  parameters; `vta.compiler.gpu.GpuProgram`), loaded by the GPU when the model first runs;
  a step that fell back to the CPU keeps its host kernel and says why;
- ``accel/<k>.bin``, ``accel/<k>.uops.npy``: each accelerator kernel's instruction stream
  and micro-op image, with its DRAM layout in ``model.json``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from vta.compiler.accel.lower import AccelKernel, SegmentSpec
from vta.compiler.accel.schedules import Conv2d, Dense
from vta.compiler.cpu.jit import Signature, load_cpu
from vta.compiler.graph.build import Executable, Step
from vta.compiler.graph.ir import Graph, GraphError, Node, Value
from vta.compiler.tir.ops import Epilogue
from vta.isa import Config, decode_insns, encode_insns

FORMAT = "vta-model"
# 2: host kernels are entered through an argument vector; 3: steps list the outputs they write; 4: GPU programs
FORMAT_VERSION = 4
_READABLE = (2, 3, 4)  # a format-2 step writes its node's first output only
_RECORDS = {"Conv2d": Conv2d, "Dense": Dense, "Epilogue": Epilogue}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vta")
    except PackageNotFoundError:
        return "0"


class _Tensors:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, a: np.ndarray) -> str:
        key = f"t{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(a)
        return key


def _attr_out(v: Any, t: _Tensors) -> Any:
    if isinstance(v, np.ndarray):
        return {"tensor": t.put(v)}
    if type(v).__name__ in _RECORDS and dataclasses.is_dataclass(v):
        return {"record": type(v).__name__, "fields": dataclasses.asdict(v)}
    if isinstance(v, (list, tuple)):
        return [_attr_out(x, t) for x in v]
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    raise GraphError(f"attribute value {v!r} ({type(v).__name__}) cannot be saved in an artifact")


def _attr_in(v: Any, arrays: Any) -> Any:
    if isinstance(v, dict) and "tensor" in v:
        return arrays[v["tensor"]]
    if isinstance(v, dict) and "record" in v:
        cls = _RECORDS.get(v["record"])
        if cls is None:
            raise GraphError(f"artifact: unknown record type {v['record']!r}")
        return cls(**v["fields"])
    if isinstance(v, list):
        return [_attr_in(x, arrays) for x in v]
    return v


def save(exe: Executable, path: str | Path) -> None:
    """Write ``exe`` as a ``.vtapkg`` file."""
    t = _Tensors()
    g = exe.graph
    ids: dict[int, int] = {}
    values = []

    def vid(v: Value | None) -> int | None:
        if v is None:
            return None
        if v.uid not in ids:
            ids[v.uid] = len(values)
            values.append({"name": v.name, "dtype": v.dtype, "shape": list(v.shape) if v.shape is not None else None,
                           "const": t.put(v.const) if v.const is not None else None,
                           "quant": list(v.quant) if v.quant else None})
        return ids[v.uid]

    inputs = [vid(v) for v in g.inputs]
    nodes = []
    for n in g.nodes:
        nodes.append({"op": n.op, "name": n.name, "device": n.device, "inputs": [vid(v) for v in n.inputs],
                      "outputs": [vid(v) for v in n.outputs], "attrs": {k: _attr_out(a, t) for k, a in n.attrs.items()}})
    outputs = [vid(v) for v in g.outputs]
    host: dict[int, int] = {}
    gpu: dict[int, int] = {}
    files: dict[str, bytes] = {}
    steps, accel_meta = [], []
    for i, st in enumerate(exe.steps):
        s: dict[str, Any] = {"node": i, "kind": st.kind, "outputs": [vid(v) for v in st.outs]}
        if st.gpu is not None:
            if id(st.gpu) not in gpu:
                gpu[id(st.gpu)] = len(gpu)
                files[f"gpu/{gpu[id(st.gpu)]}.json"] = json.dumps(st.gpu.to_dict()).encode()  # type: ignore[attr-defined]
            s.update(kind="gpu", gpu=gpu[id(st.gpu)], args=[vid(v) for v in st.args])
        elif st.kind == "kernel":
            k = st.kernel
            if id(k) not in host:
                host[id(k)] = len(host)
                files[f"host/{host[id(k)]}.ll"] = k.llvm_ir.encode()  # type: ignore[union-attr]
                s["signature"] = k.sig.to_dict()  # type: ignore[union-attr]
            s["kernel"] = host[id(k)]
            s["args"] = [vid(v) for v in st.args]
            if st.fallback:
                s["fallback"] = st.fallback
        elif st.kind == "accel":
            ak: AccelKernel = st.accel  # type: ignore[assignment]
            j = len(accel_meta)
            files[f"accel/{j}.bin"] = encode_insns(ak.insns, ak.config).tobytes()
            buf = io.BytesIO()
            np.save(buf, ak.uops, allow_pickle=False)
            files[f"accel/{j}.uops.npy"] = buf.getvalue()
            accel_meta.append({"name": ak.name, "n_insns": len(ak.insns), "uop_addr": ak.uop_addr,
                               "params": list(ak.params), "stats": ak.stats,
                               "segments": [dataclasses.asdict(sg) for sg in ak.segments]})
            s["accel"] = j
            s["args"] = [vid(v) for v in st.args]
        steps.append(s)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "vta_version": _version(),
            "config": exe.config.to_dict() if exe.config is not None else None, "accelerated": exe.accelerated,
            "host": exe.host,
            "graph": {"name": g.name, "values": values, "inputs": inputs, "outputs": outputs, "nodes": nodes,
                      "plan": {k: list(v) for k, v in g.plan.items()}, "arena_bytes": g.arena_bytes},
            "steps": steps, "accel_kernels": accel_meta}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.json", json.dumps(meta, indent=1))
        buf = io.BytesIO()
        np.savez(buf, **t.arrays)
        z.writestr("tensors.npz", buf.getvalue())
        for name, data in files.items():
            z.writestr(name, data)


def load(path: str | Path, config: Config | None = None) -> Executable:
    """Read a ``.vtapkg`` file and compile its host kernels for this machine. With ``config``,
    refuse an artifact compiled for another accelerator config."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise GraphError(f"{path}: not a compiled model ({e})") from None
    with z:
        try:
            meta = json.loads(z.read("model.json"))
            if meta.get("format") != FORMAT:
                raise GraphError(f"{path}: not a {FORMAT} file")
            if meta.get("format_version") not in _READABLE or meta.get("vta_version") != _version():
                raise GraphError(f"{path}: compiled by vta {meta.get('vta_version')} (format "
                                 f"{meta.get('format_version')}); this is vta {_version()} (format {FORMAT_VERSION}): "
                                 "compile the model again")
            cfg = Config.from_dict(meta["config"], source=f"{path}") if meta["config"] is not None else None
            if config is not None and cfg is not None and config != cfg:
                raise GraphError(f"{path}: compiled for config {cfg.name}, not {config.name}; compile it for "
                                 f"{config.name} or run it without --config")
            arrays = np.load(io.BytesIO(z.read("tensors.npz")), allow_pickle=False)
            return _rebuild(meta, arrays, cfg, z)
        except KeyError as e:
            raise GraphError(f"{path}: malformed compiled model (missing {e})") from None
        except (ValueError, TypeError, zipfile.BadZipFile) as e:
            raise GraphError(f"{path}: malformed compiled model ({type(e).__name__}: {e})") from None


def _rebuild(meta: dict[str, Any], arrays: Any, cfg: Config | None, z: zipfile.ZipFile) -> Executable:
    gm = meta["graph"]
    values = [Value(v["name"], v["dtype"], tuple(v["shape"]) if v["shape"] is not None else None,
                    const=arrays[v["const"]] if v["const"] is not None else None,
                    quant=tuple(v["quant"]) if v["quant"] else None) for v in gm["values"]]  # type: ignore[arg-type]
    at = lambda i: values[i] if i is not None else None
    nodes = []
    for nd in gm["nodes"]:
        n = Node(nd["op"], [at(i) for i in nd["inputs"]], [values[i] for i in nd["outputs"]],
                 {k: _attr_in(a, arrays) for k, a in nd["attrs"].items()}, nd["name"], nd["device"])
        for v in n.outputs:
            v.producer = n
        nodes.append(n)
    g = Graph(gm["name"], [values[i] for i in gm["inputs"]], [values[i] for i in gm["outputs"]], nodes,
              {k: (int(v[0]), int(v[1])) for k, v in gm.get("plan", {}).items()}, int(gm.get("arena_bytes", 0)))
    g.check()
    kernels: dict[int, Any] = {}
    programs: dict[int, Any] = {}
    steps = []
    for s in meta["steps"]:
        n = nodes[s["node"]]
        outs = _step_outputs(s, n, values)
        if s["kind"] == "kernel":
            k = s["kernel"]
            if k not in kernels:
                kernels[k] = load_cpu(z.read(f"host/{k}.ll").decode(), Signature.from_dict(s["signature"]))
            args = [values[i] for i in s["args"]]
            if len(kernels[k].sig.params) != len(args) + len(outs):
                raise GraphError(f"step of node {n.name}: host kernel {k} takes {len(kernels[k].sig.params)} arrays, "
                                 f"the step gives {len(args)} input(s) and {len(outs)} output(s)")
            steps.append(Step(n, "kernel", kernels[k], args, outs=outs, fallback=s.get("fallback")))
        elif s["kind"] == "gpu":
            steps.append(_gpu_step(s, n, outs, values, programs, z))
        elif s["kind"] == "accel":
            if cfg is None:
                raise GraphError("an accelerator step without an accelerator config")
            j = s["accel"]
            am = meta["accel_kernels"][j]
            insns = decode_insns(z.read(f"accel/{j}.bin"), cfg)
            if len(insns) != am["n_insns"]:
                raise GraphError(f"accelerator kernel {j}: {len(insns)} instructions, expected {am['n_insns']}")
            uops = np.load(io.BytesIO(z.read(f"accel/{j}.uops.npy")), allow_pickle=False)
            segs = [SegmentSpec(sg["name"], sg["addr"], sg["dtype"], tuple(sg["shape"]), sg["output"])
                    for sg in am["segments"]]
            ak = AccelKernel(am["name"], cfg, insns, segs, uops, am["uop_addr"], tuple(am["params"]), am["stats"])
            steps.append(Step(n, "accel", accel=ak, args=[values[i] for i in s["args"]], outs=outs))
        else:
            steps.append(Step(n, "view", outs=outs))
    host = str(meta.get("host", "cpu"))
    return Executable(g, steps, 0.0, len(kernels) + len(programs), cfg, int(meta.get("accelerated", 0)), host)


def _gpu_step(s: dict[str, Any], n: Node, outs: list[Value], values: list[Value], programs: dict[int, Any],
              z: zipfile.ZipFile) -> Step:
    """A GPU step, its program read once per file, its parameters checked against the step's values."""
    from vta.compiler.gpu import GpuProgram

    k = int(s["gpu"])
    if k not in programs:
        programs[k] = GpuProgram.from_dict(json.loads(z.read(f"gpu/{k}.json")))
    prog = programs[k]
    args = [values[i] for i in s["args"]]
    vals = args + outs
    if len(prog.params) != len(vals):
        raise GraphError(f"step of node {n.name}: GPU program {k} takes {len(prog.params)} arrays, the step gives "
                         f"{len(args)} input(s) and {len(outs)} output(s)")
    for (name, shape, dtype), v in zip(prog.params, vals):
        if v.dtype != dtype or int(np.prod(shape)) != int(np.prod(v.static_shape() or (1,))):
            raise GraphError(f"step of node {n.name}: GPU program {k}'s parameter {name} is {dtype}{list(shape)}, "
                             f"but the step gives {v.name}: {v.type_str()}")
    return Step(n, "kernel", None, args, outs=outs, gpu=prog)


def _step_outputs(s: dict[str, Any], n: Node, values: list[Value]) -> list[Value]:
    """The node outputs a saved step writes (format 2: the first alone), each one of the node's."""
    outs = [values[i] for i in s["outputs"]] if "outputs" in s else n.outputs[:1]
    if not outs or outs[0] is not n.outputs[0] or any(v not in n.outputs for v in outs):
        raise GraphError(f"step of node {n.name}: its outputs {[v.name for v in outs]} are not the node's first "
                         f"output and others of {[v.name for v in n.outputs]}")
    return outs
