"""The `vta` command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from vta.isa import Program

from vta.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples"


def vta(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


@pytest.mark.parametrize("cmd", [[], ["config", "show"], ["config", "list"], ["asm"], ["disasm"], ["run"],
                                 ["fuzz"], ["hw", "verilog"], ["op"]])
def test_help_has_example(cmd: list[str]) -> None:
    code, text = vta(*cmd, "--help")
    assert code == 0 and "Example" in text


def test_config_show_json() -> None:
    code, text = vta("config", "show", "--config", "tiny", "--json")
    d = json.loads(text)
    assert code == 0 and d["fields"]["block_in"] == 4 and d["derived"]["inp_depth"] == 256
    assert ["opcode", 0, 3] in d["layouts"]["gemm"]


def test_config_show_table_and_errors(tmp_path) -> None:
    code, text = vta("config", "show")
    assert code == 0 and "1x16_i8w8a32_15_15_18_17" in text
    bad = tmp_path / "c.json"
    bad.write_text('{"batch": 3}')
    code, text = vta("config", "show", "--config", str(bad))
    assert code == 1 and text.strip() == "error: config field 'batch': 3 is not one of 1, 2, 4, 8, 16, 32, 64, 128, 256"


def test_asm_disasm_round_trip(tmp_path) -> None:
    p1, s1, p2 = tmp_path / "a.vtaprog", tmp_path / "a.s", tmp_path / "b.vtaprog"
    assert vta("asm", str(EXAMPLES / "gemm_relu.s"), "-o", str(p1))[0] == 0
    assert vta("disasm", str(p1), "-o", str(s1))[0] == 0
    assert vta("asm", str(s1), "-o", str(p2))[0] == 0
    a, b = Program.load(p1), Program.load(p2)
    assert a.insns == b.insns and np.array_equal(a.dram_image(), b.dram_image())
    code, text = vta("disasm", str(p2))
    assert text == s1.read_text()


def test_run_default() -> None:
    code, text = vta("run")
    assert code == 0 and "digits CNN" in text and "int8 on the accelerator" in text and "DRAM bytes" in text
    code, text = vta("run", "--json")
    d = json.loads(text)
    assert code == 0 and d["int8_accuracy"] >= 0.9 and abs(d["int8_accuracy"] - d["float_accuracy"]) <= 0.05
    assert d["accelerated_ops"] == 3 and d["cycles"] > 0 and d["dram_bytes"] > 0 and d["bit_exact"]


def test_run_gemm_demo() -> None:
    code, text = vta("run", "--demo", "gemm")
    assert code == 0 and "bit-exact" in text and "GEMM-core utilization" in text
    code, text = vta("run", "--demo", "gemm", "--config", "batch4", "--json")
    d = json.loads(text)
    assert code == 0 and d["bit_exact"] and d["stats"]["gemm_uops"] > 0 and d["stats"]["cycles"] > 0


def test_run_onnx_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    from onnx_models import resnet_style

    model = tmp_path / "rs.onnx"
    onnx.save(resnet_style(), str(model))
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    trace = tmp_path / "trace.json"
    code, text = vta("run", str(model), "--input", f"input={tmp_path / 'x.npy'}", "--json", "--trace", str(trace),
                     "--output", str(tmp_path / "out"))
    assert code == 0, text
    d = json.loads(text)
    assert d["accelerated_ops"] == 7 and d["accel_cycles"] > 0 and len(d["top_k"]["prob"][0]) == 5
    accel = [o for o in d["ops"] if o["device"].startswith("accel")]
    assert all(o["cycles"] and o["dram_bytes"] for o in accel)
    events = json.loads(trace.read_text())["traceEvents"]
    tracks = {e["tid"] for e in events if e["ph"] == "X"}
    assert {1, 2, 3, 4, 5} <= tracks  # host, accelerator, and its load/compute/store modules
    assert np.load(tmp_path / "out" / "prob.npy").shape == (1, 10)
    code, text = vta("run", str(model), "--float", "--input", f"input={tmp_path / 'x.npy'}", "--dump-after",
                     "fold_constants")
    assert code == 0 and "# after fold_constants" in text and "on the host CPU" in text


def test_run_onnx_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    code, text = vta("run", str(bad))
    assert code == 1 and "not a valid ONNX model" in text
    code, text = vta("run", str(tmp_path / "none.onnx"))
    assert code == 2 and "no such file" in text
    code, text = vta("run", str(EXAMPLES / "gemm_relu.s"), "--float")
    assert code == 2 and "apply to models" in text


def test_run_program_outputs(tmp_path) -> None:
    code, text = vta("run", str(EXAMPLES / "gemm_relu.s"), "--json", "--output", str(tmp_path))
    d = json.loads(text)
    assert code == 0 and d["config"] == "1x4_i8w8a32_11_10_11_12"
    c = np.array(d["outputs"]["C"])
    assert np.array_equal(np.load(tmp_path / "C.npy"), c)
    assert c.min() >= 0 and c.max() <= 127 and c.any()


def test_run_errors(tmp_path) -> None:
    bad = tmp_path / "bad.s"
    bad.write_text(".config tiny\nload inp sram=0 dram=0 y=1 x=1\ngemm uops=0:1 bogus=1\nfinish\n")
    code, text = vta("run", str(bad))
    assert code == 1 and text.strip() == f"error: {bad}:3: unknown operand 'bogus' for gemm " \
        "(allowed: uops, iter, dst, src, wgt, pop, push)"
    dead = tmp_path / "dead.s"
    dead.write_text(".config tiny\ngemm uops=0:0 pop=prev\nfinish\n")
    code, text = vta("run", str(dead))
    assert code == 1 and "deadlock" in text and "L2C is empty" in text
    code, text = vta("run", str(tmp_path / "missing.vtaprog"))
    assert code != 0
    junk = tmp_path / "junk.vtaprog"
    junk.write_bytes(b"not a zip")
    code, text = vta("run", str(junk))
    assert code == 1 and "not a program file" in text
    code, text = vta("run", str(EXAMPLES / "gemm_relu.s"), "--config", "tiny")
    assert code == 2 and "--config applies to the bundled default" in text


def test_console_script_installed() -> None:
    exe = shutil.which("vta", path=str(Path(sys.executable).parent))
    assert exe, "the vta console script is not installed next to this Python"
    r = subprocess.run([exe, "run", "--json", "--config", "tiny"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["int8_accuracy"] >= 0.9  # the bundled model and its samples are installed


def test_op_conv2d_json_and_trace(tmp_path) -> None:
    log = tmp_path / "tune.jsonl"
    code, text = vta("op", "conv2d", "--shape", "1,8,6,6,8,3,1,1", "--config", "tiny", "--tune", "3",
                     "--log", str(log), "--json", "--save", str(tmp_path / "conv.vtaprog"))
    assert code == 0, text
    report = json.loads(text[text.index("{"):])
    assert report["bit_exact"] and report["cycles"] > 0 and report["kernel"]["gemm"] >= 2
    assert len(log.read_text().splitlines()) == 3  # every measurement is logged
    code, text = vta("run", str(tmp_path / "conv.vtaprog"), "--json")
    assert code == 0 and json.loads(text)["outputs"]["Q"]
    code, text = vta("op", "dense", "--shape", "4,8,8", "--config", "tiny", "--print", "trace", "--print", "ir")
    assert code == 0 and "sch.tensorize(i1, gemm_1x4x4)" in text and "gemm_1x4x4(" in text and "bit-exact" in text


def test_op_errors() -> None:
    code, text = vta("op", "conv2d", "--shape", "1,7,6,6,8,3", "--config", "tiny")
    assert code == 2 and "input channels 7 is not a multiple of the block 4" in text
    code, text = vta("op", "conv2d", "--layer", "C99")
    assert code == 1 and "no ResNet-18 layer 'C99'" in text
    code, text = vta("op", "dense", "--shape", "4,8")
    assert code == 2 and "--shape takes 3 or 4 integers, got 2" in text
