"""Compiled-model artifacts (.vtapkg): a round trip gives the same results; a config or
version mismatch and a damaged file are refused clearly; nothing is unpickled."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import onnx
import pytest
from onnx_models import resnet_style
from vta.compiler import artifact
from vta.compiler.graph import GraphError, import_onnx
from vta.compiler.graph.build import compile_module
from vta.isa import PRESETS
from vta.runtime import calibrate, run_graph

from vta.cli import main


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):  # type: ignore[no-untyped-def]
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    exe = compile_module(import_onnx(resnet_style(), {"input": x.shape}), PRESETS["default"],
                         calibrate([{"input": x}]))
    path = tmp_path_factory.mktemp("art") / "rs.vtapkg"
    artifact.save(exe, path)
    return exe, path, x


def test_round_trip_gives_the_same_results(compiled) -> None:  # type: ignore[no-untyped-def]
    exe, path, x = compiled
    again = artifact.load(path)
    a, _ = run_graph(exe, {"input": x})
    b, rep = run_graph(again, {"input": x})
    assert np.array_equal(a["prob"], b["prob"]) and again.accelerated == exe.accelerated == 7
    assert sum(1 for r in rep.ops if r.cycles) == 7
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "model.json" in names and "tensors.npz" in names and any(n.endswith(".ll") for n in names)
    assert any(n.endswith(".bin") for n in names)


def test_mismatches_and_damage_are_refused(compiled, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = compiled
    with pytest.raises(GraphError, match=r"compiled for config 1x16_.*, not 1x4_"):
        artifact.load(path, PRESETS["tiny"])
    old = tmp_path / "old.vtapkg"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(old, "w") as out:
        for item in z.namelist():
            data = z.read(item)
            if item == "model.json":
                meta = json.loads(data)
                meta["vta_version"] = "0.0.1"
                data = json.dumps(meta).encode()
            out.writestr(item, data)
    with pytest.raises(GraphError, match="compiled by vta 0.0.1.*compile the model again"):
        artifact.load(old)
    cut = tmp_path / "cut.vtapkg"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(GraphError, match="cut.vtapkg: not a compiled model"):
        artifact.load(cut)
    evil = tmp_path / "evil.vtapkg"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(evil, "w") as out:
        for item in z.namelist():
            out.writestr(item, z.read(item) if item != "tensors.npz" else _pickled_npz())
    with pytest.raises(GraphError, match="malformed compiled model"):
        artifact.load(evil)


def _pickled_npz() -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, t0=np.array([object()], dtype=object))
    return buf.getvalue()


def test_cli_compile_then_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    onnx.save(resnet_style(), str(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32))
    pkg = tmp_path / "m.vtapkg"
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "m.onnx"), "-o", str(pkg), "--input",
                                  f"input={tmp_path / 'x.npy'}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accelerated_ops"] == 7
    r = CliRunner().invoke(main, ["run", str(pkg), "--input", f"input={tmp_path / 'x.npy'}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accel_cycles"] > 0
    r = CliRunner().invoke(main, ["run", str(pkg), "--json"])  # no --input: stand-in data of the compiled shapes
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["run", str(pkg), "--float"])
    assert r.exit_code == 2 and "compiled already" in r.output


def test_cli_compile_shape_option(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    onnx.save(resnet_style(), str(tmp_path / "m.onnx"))
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.vtapkg"),
                                  "--shape", "input=2,3,16,16", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["inputs"]["input"] == "float32[2, 3, 16, 16]"
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    r = CliRunner().invoke(main, ["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "n.vtapkg"),
                                  "--input", f"input={tmp_path / 'x.npy'}", "--shape", "input=2,3,16,16"])
    assert r.exit_code == 2 and "given by --input already" in r.output
