"""The sweep space: a base config, axes of config fields (their cartesian product), the
workloads, and the target, read from a TOML file.

    base = "tiny"                # preset, canonical name, or a JSON/TOML config file
    target = "fsim"              # or "rtl" (exact cycles); `vta sweep --target` overrides
    epilogue = "requant"         # default for conv2d/dense workloads: requant, shift, none, or a table
    verify = false               # true: random inputs, outputs checked against numpy (and fsim races)
    workloads = ["resnet18.C11", "dense:16,64,64"]   # or [[workloads]] tables (see `workloads`)

    [axes]                       # Config field names, each a list of values
    block_in = [4, 8]
    block_out = [4, 8]
    acc_buffer_bytes = [4096, 16384]

Each point (config x workload) has a stable key: a hash of every field of its config, its
workload (for a model, the file's SHA-256) and the target, so a rerun recognises finished
points whatever order the axes are written in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vta.isa import Config, resolve
from vta.isa.errors import ConfigError

from .workloads import DEFAULT_EPILOGUE, SpaceError, WorkloadSpec, parse_epilogue, parse_workloads

TARGETS = ("fsim", "rtl")
CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Config))
_TOP_KEYS = {"base", "target", "epilogue", "verify", "workloads", "axes"}
KEY_VERSION = 1  # bump when what a point measures changes, so old rows are not taken as finished


def stable_hash(obj: Any) -> str:
    """16 hex digits of the SHA-256 of ``obj`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def normalize_value(name: str, value: Any) -> Any:
    """A config value as `Config` holds it (clock 100 and 100.0 hash alike); others unchanged,
    so a wrong type reaches the config's own validation."""
    if name == "clock_mhz" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_key(config: dict[str, Any]) -> str:
    """Key of a config (all fields), valid or not."""
    return stable_hash({"v": KEY_VERSION, "config": config})


@dataclass(frozen=True)
class Point:
    """One measurement: a config (every field, possibly invalid) and a workload on a target."""

    key: str
    config_key: str
    config: dict[str, Any]
    workload: WorkloadSpec
    target: str

    def payload(self) -> dict[str, Any]:
        """What a worker receives: plain JSON-able data."""
        return {"key": self.key, "config_key": self.config_key, "config": self.config,
                "workload": self.workload.to_dict(), "target": self.target}


def make_point(config: dict[str, Any], workload: WorkloadSpec, target: str) -> Point:
    """The point of a config (field dict, normalized here) and a workload on a target."""
    config = {k: normalize_value(k, v) for k, v in config.items()}
    ck = config_key(config)
    key = stable_hash({"v": KEY_VERSION, "config": config, "workload": workload.to_dict(), "target": target})
    return Point(key, ck, config, workload, target)


@dataclass
class Space:
    """A parsed space file: ``base`` fields, ``axes`` (field -> values, in file order),
    ``workloads``, the ``target``, and whether points ``verify`` their outputs."""

    base: dict[str, Any]
    axes: dict[str, list[Any]]
    workloads: list[WorkloadSpec]
    target: str = "fsim"
    verify: bool = False
    source: Path | None = None

    def configs(self) -> list[dict[str, Any]]:
        """Every config of the cartesian product, as complete field dicts (not yet validated)."""
        names = list(self.axes)
        out = []
        for values in itertools.product(*(self.axes[n] for n in names)):
            cfg = dict(self.base)
            cfg.update(zip(names, values))
            out.append(cfg)
        return out

    def points(self) -> list[Point]:
        """Configs x workloads, configs outermost, in file order."""
        return [make_point(c, w, self.target) for c in self.configs() for w in self.workloads]


def _base(value: Any, base_dir: Path) -> dict[str, Any]:
    if not isinstance(value, str):
        raise SpaceError("base must be a preset name, config name or config file path")
    spec: str | Path = value
    if value.endswith((".json", ".toml")):
        spec = base_dir / value
    try:
        return resolve(spec).to_dict()
    except ConfigError as e:
        raise SpaceError(f"base {value!r}: {e}") from None


def _axes(table: Any) -> dict[str, list[Any]]:
    if not isinstance(table, dict):
        raise SpaceError("[axes] must be a table of config field = [values]")
    out = {}
    for name, values in table.items():
        if name not in CONFIG_FIELDS:
            raise SpaceError(f"axis {name!r} is not a config field; fields: {', '.join(CONFIG_FIELDS)}")
        vals = values if isinstance(values, list) else [values]
        if not vals:
            raise SpaceError(f"axis {name!r} has no values")
        out[name] = vals
    return out


def parse_space(data: dict[str, Any], base_dir: Path, workloads: list[str] | None = None,
                target: str | None = None, source: Path | None = None) -> Space:
    """A space from a parsed TOML document. ``workloads`` (strings, as ``--workloads`` takes)
    replaces the file's list; ``target`` replaces its target."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SpaceError(f"unknown key {unknown[0]!r}; a space has {', '.join(sorted(_TOP_KEYS))}")
    base = _base(data.get("base", "default"), base_dir)
    axes = _axes(data.get("axes", {}))
    epilogue = parse_epilogue(data.get("epilogue", DEFAULT_EPILOGUE), "epilogue")
    items: Any = workloads if workloads else data.get("workloads", [])
    if not isinstance(items, list):
        raise SpaceError("workloads must be a list of names, shapes, model files or tables")
    specs = parse_workloads(items, Path.cwd() if workloads else base_dir, epilogue)
    tgt = target or data.get("target", "fsim")
    if tgt not in TARGETS:
        raise SpaceError(f"target {tgt!r} is not one of {', '.join(TARGETS)}")
    verify = data.get("verify", False)
    if not isinstance(verify, bool):
        raise SpaceError("verify must be true or false")
    return Space(base, axes, specs, tgt, verify, source)


def load_space(path: str | Path, workloads: list[str] | None = None, target: str | None = None) -> Space:
    """Read a space file; errors name the file and what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise SpaceError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{path}: {e}") from None
    try:
        return parse_space(data, path.parent, workloads, target, path)
    except SpaceError as e:
        raise SpaceError(f"{path}: {e}") from None
