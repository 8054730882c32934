"""Workloads a sweep measures: named layers (``resnet18.C2`` ... ``resnet18.C11``, from the
table in `vta.compiler.accel.schedules`), inline conv2d/dense shapes, and ONNX models.

A workload is described by a `WorkloadSpec`, a plain JSON-able value: it is what a point's
key hashes and what travels to a worker process or a Dask worker, where `operator` turns
it into the compiler's `Conv2d`/`Dense` for the point's config.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vta.compiler.accel.schedules import RESNET18, Conv2d, Dense, resnet18_layer
from vta.compiler.tir.ops import Epilogue
from vta.isa.errors import VTAError


class SpaceError(VTAError):
    """A sweep space file (or a ``--workloads`` value) is malformed; names what and where."""


# Networks whose layers can be named as ``NETWORK.LAYER``: name -> (layer names, builder(name, batch)).
NETWORKS: dict[str, tuple[tuple[str, ...], Any]] = {"resnet18": (tuple(RESNET18), resnet18_layer)}

# Named epilogues, as `vta op --epilogue` and benchmarks/resnet18_layers.py use them.
EPILOGUES: dict[str, dict[str, Any] | None] = {
    "requant": {"bias": True, "multiplier": 19, "shift": 11, "relu": True},  # a quantized network's conv
    "shift": {"shift": 8, "relu": True},  # rounding shift and clip, as VTA's conv2d benchmarks do
    "none": None,  # int32 accumulators stored at full width
}
DEFAULT_EPILOGUE = "requant"

_OPS = {"conv2d": Conv2d, "dense": Dense}
_KINDS = ("layer", "conv2d", "dense", "onnx")


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload of a sweep.

    ``kind`` is ``conv2d``, ``dense`` or ``onnx``. For an operator, ``params`` holds the
    `Conv2d`/`Dense` fields (a conv2d without ``batch`` takes the config's batch, as the
    ResNet-18 layers do) and ``epilogue`` the `Epilogue` fields (None: int32 results).
    For a model, ``params`` holds ``path`` (absolute), ``sha256`` of the file (so a changed
    model is measured again) and optional input ``shapes``.
    """

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    epilogue: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form that point keys hash and workers receive."""
        return {"name": self.name, "kind": self.kind, "params": self.params, "epilogue": self.epilogue}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkloadSpec:
        return cls(d["name"], d["kind"], dict(d.get("params") or {}), d.get("epilogue"))


def operator(spec: WorkloadSpec, config_batch: int) -> Conv2d | Dense:
    """The compiler's workload for an operator spec, for a config of batch ``config_batch``."""
    if spec.kind == "conv2d":
        return Conv2d(**{"batch": config_batch, **spec.params})
    if spec.kind == "dense":
        return Dense(**spec.params)
    raise SpaceError(f"workload {spec.name!r}: {spec.kind} is not an operator")


def epilogue_of(spec: WorkloadSpec) -> Epilogue | None:
    return None if spec.epilogue is None else Epilogue(**spec.epilogue)


# ---- parsing -------------------------------------------------------------------------------------

def parse_epilogue(value: Any, where: str) -> dict[str, Any] | None:
    """A named epilogue (requant, shift, none) or a table of `Epilogue` fields, as a field dict."""
    if isinstance(value, str):
        if value not in EPILOGUES:
            raise SpaceError(f"{where}: epilogue {value!r} is not one of {', '.join(EPILOGUES)} or a table")
        ep = EPILOGUES[value]
        return None if ep is None else dict(ep)
    if isinstance(value, dict):
        known = {f.name for f in fields(Epilogue)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise SpaceError(f"{where}: epilogue field {unknown[0]!r} is unknown; fields: {', '.join(sorted(known))}")
        try:
            Epilogue(**value)
        except (TypeError, ValueError) as e:
            raise SpaceError(f"{where}: {e}") from None
        return dict(value)
    raise SpaceError(f"{where}: epilogue must be a name or a table, got {type(value).__name__}")


def named_layers(pattern: str) -> list[tuple[str, Conv2d]]:
    """``NETWORK.LAYER`` names matching ``pattern`` (globs allowed: ``resnet18.*``; a bare
    network name means all its layers), with each layer at batch 1."""
    net, _, layer = pattern.partition(".")
    if net not in NETWORKS:
        raise SpaceError(f"workload {pattern!r}: no network {net!r}; networks: {', '.join(NETWORKS)}")
    names, make = NETWORKS[net]
    chosen = [n for n in names if fnmatch.fnmatchcase(n, layer or "*")]
    if not chosen:
        raise SpaceError(f"workload {pattern!r}: no such layer; {net} has {', '.join(names)}")
    return [(f"{net}.{n}", make(n, 1)) for n in chosen]


def _shape_ints(text: str, what: str, counts: tuple[int, ...]) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",")]
    except ValueError:
        raise SpaceError(f"workload {what!r}: the shape takes comma-separated integers") from None
    if len(vals) not in counts:
        raise SpaceError(f"workload {what!r}: takes {' or '.join(map(str, counts))} integers, got {len(vals)}")
    return vals


def _op_params(kind: str, values: dict[str, Any], where: str) -> dict[str, Any]:
    cls = _OPS[kind]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SpaceError(f"{where}: {kind} field {unknown[0]!r} is unknown; fields: {', '.join(known)}")
    if any(not isinstance(v, int) or isinstance(v, bool) for v in values.values()):
        raise SpaceError(f"{where}: {kind} sizes must be integers")
    try:
        probe = cls(**{"batch": 1, **values}) if kind == "conv2d" else cls(**values)
    except TypeError as e:
        raise SpaceError(f"{where}: {kind} {e}") from None
    if kind == "conv2d" and min(probe.out_hw) < 1:
        raise SpaceError(f"{where}: conv2d output would be empty ({probe.out_hw})")
    return dict(values)


def _model(path_text: str, base_dir: Path, shapes: Any, where: str) -> dict[str, Any]:
    path = (base_dir / path_text).resolve()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise SpaceError(f"{where}: cannot read model {path}: {e.strerror}") from None
    params: dict[str, Any] = {"path": str(path), "sha256": digest}
    if shapes is not None:
        if not isinstance(shapes, dict) or not all(isinstance(v, list) for v in shapes.values()):
            raise SpaceError(f"{where}: shapes must be a table of input name = [dims]")
        params["shapes"] = {k: [int(d) for d in v] for k, v in sorted(shapes.items())}
    return params


def parse_workload_string(text: str, base_dir: Path, epilogue: dict[str, Any] | None) -> list[WorkloadSpec]:
    """``resnet18.C5`` / ``resnet18.*`` / ``conv2d:N,C,H,W,O,K[,stride,pad,groups]`` /
    ``dense:M,N,K[,batches]`` / ``PATH.onnx`` as specs (a layer glob may give several)."""
    text = text.strip()
    if text.endswith(".onnx"):
        return [WorkloadSpec(Path(text).stem, "onnx", _model(text, base_dir, None, f"workload {text!r}"))]
    kind, sep, shape = text.partition(":")
    if sep and kind in _OPS:
        counts = (6, 7, 8, 9) if kind == "conv2d" else (3, 4)
        vals = _shape_ints(shape, text, counts)
        names = [f.name for f in fields(_OPS[kind])]
        return [WorkloadSpec(text, kind, _op_params(kind, dict(zip(names, vals)), f"workload {text!r}"), epilogue)]
    return [WorkloadSpec(name, "conv2d", _conv_params(wl), epilogue) for name, wl in named_layers(text)]


def _conv_params(wl: Conv2d) -> dict[str, Any]:
    """A named layer's fields, without ``batch`` (the config's batch is used)."""
    return {f.name: getattr(wl, f.name) for f in fields(wl) if f.name != "batch"}


def parse_workload_table(item: dict[str, Any], index: int, base_dir: Path,
                         default_epilogue: dict[str, Any] | None) -> list[WorkloadSpec]:
    """One ``[[workloads]]`` table: exactly one of ``layer``, ``conv2d``, ``dense``, ``onnx``,
    with optional ``name``, ``epilogue`` and (onnx) ``shapes``."""
    where = f"workloads[{index}]"
    kinds = [k for k in _KINDS if k in item]
    if len(kinds) != 1:
        raise SpaceError(f"{where}: give exactly one of {', '.join(_KINDS)}")
    allowed = {kinds[0], "name", "epilogue"} | ({"shapes"} if kinds[0] == "onnx" else set())
    extra = sorted(set(item) - allowed)
    if extra:
        raise SpaceError(f"{where}: unknown key {extra[0]!r}")
    kind, value = kinds[0], item[kinds[0]]
    ep = parse_epilogue(item["epilogue"], where) if "epilogue" in item else default_epilogue
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise SpaceError(f"{where}: name must be a string")
    if kind == "layer":
        specs = parse_workload_string(str(value), base_dir, ep)
        if name and len(specs) == 1:
            specs = [WorkloadSpec(name, specs[0].kind, specs[0].params, ep)]
        return specs
    if kind == "onnx":
        return [WorkloadSpec(name or Path(str(value)).stem, "onnx", _model(str(value), base_dir, item.get("shapes"),
                                                                          where))]
    if not isinstance(value, dict):
        raise SpaceError(f"{where}: {kind} must be a table of sizes")
    params = _op_params(kind, value, where)
    label = name or f"{kind}:" + ",".join(f"{k}={v}" for k, v in params.items())
    return [WorkloadSpec(label, kind, params, ep)]


def parse_workloads(items: list[Any], base_dir: Path, default_epilogue: dict[str, Any] | None) -> list[WorkloadSpec]:
    """A space's ``workloads`` list (strings and tables) as specs; names must be unique."""
    out: list[WorkloadSpec] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out += parse_workload_string(item, base_dir, default_epilogue)
        elif isinstance(item, dict):
            out += parse_workload_table(item, i, base_dir, default_epilogue)
        else:
            raise SpaceError(f"workloads[{i}]: expected a string or a table, got {type(item).__name__}")
    seen: set[str] = set()
    for w in out:
        if w.name in seen:
            raise SpaceError(f"workload {w.name!r} appears twice (give each a distinct name)")
        seen.add(w.name)
    if not out:
        raise SpaceError("the space has no workloads")
    return out
