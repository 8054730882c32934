"""Compile and run ONNX models: the pieces behind ``vta run MODEL.onnx`` and
``vta compile`` (inputs from .npy files, calibration, the report, the Perfetto trace)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vta.compiler.graph import GraphError, import_onnx
from vta.compiler.graph.build import Executable, compile_module
from vta.compiler.tir.interp import numpy_dtype
from vta.isa import Config
from vta.runtime import Report, calibrate, run_graph


def parse_inputs(specs: Sequence[str]) -> dict[str, np.ndarray]:
    """``NAME=FILE.npy`` pairs as arrays (loaded without pickle)."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise GraphError(f"--input {spec!r}: write NAME=FILE.npy")
        try:
            out[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise GraphError(f"--input {name}: cannot read {path} ({e})") from None
    return out


def model_inputs(model: object) -> list[tuple[str, str, list[int | str]]]:
    """(name, dtype, dims) of the model's runtime inputs."""
    from vta.compiler.graph.onnx_import import _DTYPES, _load

    m = _load(model)
    inits = {t.name for t in m.graph.initializer}
    out = []
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims: list[int | str] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        out.append((vi.name, _DTYPES.get(t.elem_type, "float32"), dims))
    return out


def random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Stand-in data: normal floats, small non-negative integers, true booleans."""
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(numpy_dtype(dtype))
    if dtype == "bool":
        return np.ones(shape, bool)
    return rng.integers(0, 8, shape).astype(numpy_dtype(dtype))


def random_inputs(model: object, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for a model given none (symbolic dimensions are 1)."""
    rng = np.random.default_rng(seed)
    return {name: random_array(rng, dtype, tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims))
            for name, dtype, dims in model_inputs(model)}


def random_feeds(exe: Executable, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs matching a compiled model's input types."""
    rng = np.random.default_rng(seed)
    return {v.name: random_array(rng, v.dtype, v.static_shape()) for v in exe.inputs}  # type: ignore[arg-type]


def calibration_set(path: str | None, feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Calibration inputs: an .npz whose arrays stack samples along axis 0 per input name
    (each sample shaped like the run's input), or the run's inputs themselves."""
    if path is None:
        return [feeds]
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GraphError(f"--calibration: cannot read {path} ({e})") from None
    missing = set(feeds) - set(data.files)
    if missing:
        raise GraphError(f"--calibration {path}: no arrays for input(s) {', '.join(sorted(missing))}")
    n = min(len(data[k]) for k in feeds)
    return [{k: data[k][i:i + 1].astype(feeds[k].dtype) if data[k].ndim == feeds[k].ndim else
             data[k][i].astype(feeds[k].dtype) for k in feeds} for i in range(n)]


@dataclass
class ModelRun:
    exe: Executable
    outputs: dict[str, np.ndarray]
    report: Report


def compile_model(model: object, feeds: dict[str, np.ndarray], config: Config | None,
                  calibration: list[dict[str, np.ndarray]], dump_after: set[str] | None = None,
                  out=print, host: str = "cpu") -> Executable:  # type: ignore[no-untyped-def]
    mod = import_onnx(model, {k: v.shape for k, v in feeds.items()})
    return compile_module(mod, config, calibrate(calibration) if config is not None else None, dump_after, out,
                          host=host)


def run_model(exe: Executable, feeds: dict[str, np.ndarray], target: str = "fsim") -> ModelRun:
    outputs, report = run_graph(exe, feeds, target=target)
    return ModelRun(exe, outputs, report)


def report_dict(run: ModelRun, topk: int = 5) -> dict[str, object]:
    ops = [{"name": r.name, "op": r.op, "device": r.device, "ms": round(r.seconds * 1e3, 4),
            **({"cycles": r.cycles, "gemm_utilization": r.gemm_utilization, "dram_bytes": r.dram_bytes}
               if r.cycles is not None else {})} for r in run.report.ops]
    out: dict[str, object] = {"ops": ops, "total_ms": round(run.report.seconds * 1e3, 3),
                              "accel_cycles": run.report.accel_cycles,
                              "ms_by_device": {k: round(v * 1e3, 3) for k, v in run.report.by_device().items()}}
    tops = {}
    for name, v in run.outputs.items():
        if v.ndim == 2 and v.shape[1] > 1 and v.dtype.kind == "f":
            order = np.argsort(-v, axis=1)[:, :topk]
            tops[name] = [[(int(i), float(v[b, i])) for i in row] for b, row in enumerate(order)]
    out["top_k"] = tops
    return out


def write_trace(run: ModelRun, path: str | Path, clock_mhz: float) -> None:
    """A Chrome trace-event file (Perfetto and chrome://tracing open it): one track per host
    device and, inside each accelerator operator, the load, compute and store modules'
    instructions over time (cycles at the config's clock)."""
    events: list[dict[str, object]] = []
    tracks = {"cpu": 1, "view": 1, "accel": 2, "load": 3, "compute": 4, "store": 5}
    names = {1: "host (cpu)", 2: "accelerator", 3: "accel: load", 4: "accel: compute", 5: "accel: store"}
    for tid, label in names.items():
        events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name", "args": {"name": label}})
    t = 0.0
    step_of = {st.node.name: st for st in run.exe.steps}
    for r in run.report.ops:
        dev = "accel" if r.device.startswith("accel") else r.device
        dur = r.cycles / clock_mhz if r.cycles else r.seconds * 1e6  # an accelerator op lasts its modelled time
        events.append({"ph": "X", "pid": 1, "tid": tracks.get(dev, 1), "name": f"{r.op} {r.name}", "ts": t,
                       "dur": dur, "args": {"device": r.device, "cycles": r.cycles}})
        st = step_of.get(r.name)
        timeline = getattr(st, "last_timeline", None) if st is not None else None
        if timeline:
            from vta.isa.asm import format_insn

            insns = st.accel.insns  # type: ignore[union-attr]
            for mod, k, a, b in timeline:
                events.append({"ph": "X", "pid": 1, "tid": tracks[mod], "name": format_insn(insns[k]).split()[0],
                               "ts": t + a / clock_mhz, "dur": max((b - a) / clock_mhz, 0.001),
                               "args": {"insn": k, "text": format_insn(insns[k])}})
        t += dur
    Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))


DATA = Path(__file__).with_name("data")


@dataclass
class DefaultRun:
    """The bundled default: the digits CNN on its held-out samples, int8 on the accelerator and float on the host."""

    images: int
    float_accuracy: float
    int8_accuracy: float
    agreement: float
    run: ModelRun
    config: Config
    bit_exact: bool  # the accelerator's int8 results equal the numpy fixed-point reference's


def run_bundled(config: Config, target: str = "fsim") -> DefaultRun:
    model = str(DATA / "digits_cnn.onnx")
    data = np.load(DATA / "digits_samples.npz", allow_pickle=False)
    feeds = {"image": data["image"].astype(np.float32)}
    labels = data["label"]
    calib = [{"image": data["calibration"].astype(np.float32)}]
    flt = run_model(compile_model(model, feeds, None, []), feeds)
    q = run_model(compile_model(model, feeds, config, calib), feeds, target)
    ref, _ = run_graph(q.exe, feeds, reference=True)
    pf, pq = flt.outputs["prob"].argmax(1), q.outputs["prob"].argmax(1)
    return DefaultRun(len(labels), float((pf == labels).mean()), float((pq == labels).mean()), float((pf == pq).mean()),
                      q, config, bool(np.array_equal(ref["prob"], q.outputs["prob"])))
