"""`vta sweep`: spaces, points and keys, local processes and Dask giving the same rows,
resuming, invalid and failing points, worker crashes, synthesis joins, plots, the CLI."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import vta.hw.fmax
from click.testing import CliRunner
from conftest import needs_rtl
from vta.compiler.accel.build import build
from vta.compiler.accel.schedules import RESNET18, Conv2d, Dense
from vta.compiler.tir.ops import Epilogue
from vta.hw.fmax import FmaxReport
from vta.isa import PRESETS, Config
from vta.isa.errors import VTAError
from vta.sweep import (
    InlineExecutor,
    LocalExecutor,
    SpaceError,
    Table,
    config_summary,
    load_space,
    pareto_front,
    parse_space,
    resource_columns,
    run_sweep,
)
from vta.sweep.space import make_point
from vta.sweep.workloads import parse_workload_string

from vta.cli import main
from vta.measure import cycles_on

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "sweep_small.toml"
CONV = "conv2d:1,16,8,8,16,3,1,1"
DENSE = "dense:16,32,64"
MEASURED = ("cycles", "gemm_utilization", "dram_bytes")


def small_space(tmp_path: Path, **extra: Any) -> Any:
    """4 small configs (tiny, block_in and block_out 4 or 8) x 2 small layers: 8 points."""
    data = {"base": "tiny", "axes": {"block_in": [4, 8], "block_out": [4, 8]}, "workloads": [CONV, DENSE], **extra}
    return parse_space(data, tmp_path)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def by_key(result: Any) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in result.rows}


# ---- spaces, workloads, keys ------------------------------------------------------------------

def test_space_is_the_cartesian_product_with_stable_keys(tmp_path: Path) -> None:
    space = small_space(tmp_path)
    points = space.points()
    assert len(points) == 8 and len({p.key for p in points}) == 8
    assert {(p.config["block_in"], p.config["block_out"]) for p in points} == {(4, 4), (4, 8), (8, 4), (8, 8)}
    assert all(p.config["inp_buffer_bytes"] == PRESETS["tiny"].inp_buffer_bytes for p in points)
    # the order axes and workloads are written in does not change keys; the target does
    swapped = parse_space({"base": "tiny", "axes": {"block_out": [8, 4], "block_in": [8, 4]},
                           "workloads": [DENSE, CONV]}, tmp_path)
    assert {p.key for p in swapped.points()} == {p.key for p in points}
    on_rtl = parse_space({"base": "tiny", "axes": {"block_in": [4, 8], "block_out": [4, 8]},
                          "workloads": [CONV, DENSE], "target": "rtl"}, tmp_path)
    assert not {p.key for p in on_rtl.points()} & {p.key for p in points}
    # a clock of 100 and of 100.0 is the same config
    w = space.workloads[0]
    assert make_point({**PRESETS["tiny"].to_dict(), "clock_mhz": 100}, w, "fsim").key == \
        make_point({**PRESETS["tiny"].to_dict(), "clock_mhz": 100.0}, w, "fsim").key


@pytest.mark.parametrize("data, message", [
    ({"axes": {"block_size": [4]}, "workloads": [CONV]}, "axis 'block_size' is not a config field"),
    ({"workloads": ["resnet18.C99"]}, "no such layer"),
    ({"workloads": ["vgg16.C1"]}, "no network 'vgg16'"),
    ({"workloads": ["conv2d:1,16,8"]}, "takes 6 or 7 or 8 or 9 integers"),
    ({"workloads": [CONV, CONV]}, "appears twice"),
    ({"workloads": [{"dense": {"m": 16, "n": 32, "kk": 64}}]}, "dense field 'kk' is unknown"),
    ({"workloads": [CONV], "epilogue": "relu6"}, "epilogue 'relu6' is not one of"),
    ({"workloads": [CONV], "target": "fpga"}, "target 'fpga'"),
    ({"workloads": [CONV], "base": "huge"}, "base 'huge'"),
    ({"workloads": []}, "no workloads"),
    ({"workloads": [CONV], "axis": {}}, "unknown key 'axis'"),
])
def test_bad_spaces_are_rejected_by_name(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpaceError, match=message.replace("(", r"\(")):
        parse_space(data, tmp_path)


def test_workload_specs(tmp_path: Path) -> None:
    layers = parse_workload_string("resnet18.*", tmp_path, None)
    assert [w.name for w in layers] == [f"resnet18.{n}" for n in RESNET18]
    c5 = parse_workload_string("resnet18.C5", tmp_path, None)[0].params
    h, w, ci, co, k, p, s = RESNET18["C5"]
    assert (c5["h"], c5["w"], c5["in_ch"], c5["out_ch"], c5["kernel"], c5["pad"], c5["stride"]) == (h, w, ci, co, k, p, s)
    space = parse_space({"workloads": [
        {"layer": "resnet18.C11", "name": "last"},
        {"name": "fc", "dense": {"m": 1, "n": 1000, "k": 512}, "epilogue": "none"},
        {"onnx": str(ROOT / "vta" / "data" / "digits_cnn.onnx")},
    ], "epilogue": "shift"}, tmp_path)
    last, fc, digits = space.workloads
    assert last.name == "last" and last.epilogue == {"shift": 8, "relu": True}
    assert fc.epilogue is None and fc.params == {"m": 1, "n": 1000, "k": 512}
    assert digits.kind == "onnx" and len(digits.params["sha256"]) == 64


def test_example_spaces_parse() -> None:
    small = load_space(EXAMPLE)
    assert len(small.points()) == 24 and {w.kind for w in small.workloads} == {"conv2d", "dense", "onnx"}
    resnet = load_space(ROOT / "examples" / "sweep_resnet18.toml")
    assert len(resnet.workloads) == 10 and len(resnet.configs()) == 16


# ---- local processes and Dask ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The small space on two local worker processes."""
    out = tmp_path_factory.mktemp("local")
    with LocalExecutor(2) as ex:
        return run_sweep(small_space(out), out / "sweep", executor=ex)


def test_local_sweep_measures_every_point(local_run: Any) -> None:
    assert local_run.counts() == {"ok": 8, "invalid": 0, "error": 0, "pending": 0}
    assert len(local_run.computed) == 8 and local_run.executor == "local" and local_run.workers == 2
    table = csv_rows(local_run.outdir / "points.csv")
    assert len(table) == 8
    for r in local_run.rows:
        cfg = Config(**{k: r[k] for k in PRESETS["tiny"].to_dict()})
        assert r["config_name"] == cfg.name and r["macs_per_cycle"] == cfg.macs_per_cycle
        assert r["cycles"] > 0 and 0 < r["gemm_utilization"] <= 1 and r["dram_bytes"] > 0
        assert r["achieved_macs_per_cycle"] <= cfg.macs_per_cycle
        assert r["inferences_per_s"] == pytest.approx(cfg.clock_mhz * 1e6 / r["cycles"])


def test_rows_match_a_direct_measurement(local_run: Any) -> None:
    """The sweep's numbers are the compiler's and fsim's, not the sweep's own."""
    requant = Epilogue(bias=True, multiplier=19, shift=11, relu=True)
    for r in local_run.rows:
        cfg = Config(**{k: r[k] for k in PRESETS["tiny"].to_dict()})
        wl = Conv2d(1, 16, 8, 8, 16, 3, 1, 1) if r["kind"] == "conv2d" else Dense(16, 32, 64)
        built = build(wl, cfg, requant)
        assert r["cycles"] == cycles_on("fsim", built.kernel), (r["workload"], cfg.name)
        assert r["macs"] == wl.macs


def test_dask_local_cluster_gives_identical_results(local_run: Any, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        res = run_sweep(small_space(tmp_path), tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert res.executor == "dask" and res.workers == 2 and res.counts()["ok"] == 8
    local, dask = by_key(local_run), by_key(res)
    assert local.keys() == dask.keys()
    for key in local:
        assert {m: local[key][m] for m in MEASURED} == {m: dask[key][m] for m in MEASURED}


# ---- resuming -----------------------------------------------------------------------------------

def test_rerun_resumes_and_skips_finished_points(tmp_path: Path) -> None:
    space, out = small_space(tmp_path), tmp_path / "sweep"
    first = run_sweep(space, out, executor=InlineExecutor(), limit=3, plots=False)
    assert len(first.computed) == 3 and first.counts()["pending"] == 5
    path = out / "points.csv"
    rows = csv_rows(path)
    assert len(rows) == 3
    # mark one finished row, so recomputing it would show; then a partial line, as a run killed mid-write leaves
    marked = rows[0]["key"]
    rows[0]["cycles"] = "7777777"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        f.write(",".join(rows[1].values())[:40])  # no newline
    second = run_sweep(space, out, executor=InlineExecutor(), plots=False)
    assert set(second.computed) == {p.key for p in space.points()} - {r["key"] for r in rows}
    assert second.skipped == 3 and second.counts() == {"ok": 8, "invalid": 0, "error": 0, "pending": 0}
    final = csv_rows(path)
    assert len(final) == 8 and len({r["key"] for r in final}) == 8
    assert next(r for r in final if r["key"] == marked)["cycles"] == "7777777"  # not recomputed
    third = run_sweep(space, out, executor=InlineExecutor(), plots=False)
    assert third.computed == [] and third.skipped == 8


def test_table_extends_its_header_and_drops_partial_lines(tmp_path: Path) -> None:
    t = Table(tmp_path / "t.csv")
    t.append({"key": "a", "x": 1, "err": "two\nlines"})
    t.append({"key": "b", "x": 2.5, "y": True})
    with (tmp_path / "t.csv").open("a") as f:
        f.write("c,3")  # killed mid-write
    t2 = Table(tmp_path / "t.csv")
    assert t2.dropped == 1 and list(t2.rows) == ["a", "b"] and t2.columns == ["key", "x", "err", "y"]
    assert t2.get("a") == {"key": "a", "x": 1, "err": "two lines", "y": None}
    assert t2.get("b") == {"key": "b", "x": 2.5, "err": None, "y": True}


# ---- invalid and failing points, crashes ---------------------------------------------------------------

def test_invalid_and_failing_points_are_recorded_and_the_rest_complete(tmp_path: Path) -> None:
    # out_width 64 is not a valid width; a conv over 4 input channels does not compile for block_in 8
    space = parse_space({"base": "tiny", "axes": {"block_in": [4, 8], "out_width": [8, 64]},
                         "workloads": ["conv2d:1,4,8,8,16,3,1,1", DENSE]}, tmp_path)
    with LocalExecutor(2) as ex:
        res = run_sweep(space, tmp_path / "sweep", executor=ex)
    assert res.counts() == {"ok": 3, "invalid": 4, "error": 1, "pending": 0}
    for r in res.rows:
        if r["out_width"] == 64:
            assert r["status"] == "invalid" and "out_width" in r["error"] and r.get("cycles") is None
        elif r["block_in"] == 8 and r["kind"] == "conv2d":
            assert r["status"] == "error" and r["error"].split(":")[0] in ("VTAError", "ValueError"), r["error"]
        else:
            assert r["status"] == "ok" and r["cycles"] > 0
    assert [s["config_name"] for s in res.summary] == ["1x4_i8w8a32_11_10_11_12"]  # the one config with all ok


def _crash_or_echo(task: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A task function that kills its worker for payloads marked ``crash``."""
    payload = task[1]
    if payload.get("crash"):
        os._exit(3)
    return {"key": payload["key"], "status": "ok", "pid": os.getpid()}


def test_a_worker_crash_fails_only_its_point() -> None:
    tasks = [(f"t{i}", ("synth", {"key": f"t{i}", "config_key": "c", "family": "f", "crash": i == 2}))
             for i in range(6)]
    with LocalExecutor(2, fn=_crash_or_echo) as ex:
        rows = dict(ex.run(tasks))
    assert sorted(rows) == [f"t{i}" for i in range(6)]
    assert rows["t2"]["status"] == "error" and "worker process died" in rows["t2"]["error"]
    assert all(rows[f"t{i}"]["status"] == "ok" for i in range(6) if i != 2)


# ---- synthesis ----------------------------------------------------------------------------------------

def test_synth_flag_fails_clearly_without_the_synth_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vta.hw.synth", None)  # import of it fails, whether or not it exists
    r = CliRunner().invoke(main, ["sweep", str(EXAMPLE), "-o", str(tmp_path / "o"), "--synth", "ecp5"])
    assert r.exit_code == 1 and "vta.hw.synth" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o" / "points.csv").exists()
    r = CliRunner().invoke(main, ["sweep", str(EXAMPLE), "-o", str(tmp_path / "o"), "--fmax"])
    assert r.exit_code == 1 and "--fmax needs --synth" in r.output


class _Report:
    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d

    def to_dict(self) -> dict[str, Any]:
        return self.d


def test_synth_estimates_run_once_per_config_and_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stand-in for `vta.hw.synth` (its API, made-up numbers), run in this process."""
    calls: list[tuple[str, str]] = []

    def estimate(config: Config, family: str) -> _Report:
        calls.append((config.name, family))
        return _Report({"family": family, "luts": 100 * config.macs_per_cycle, "ffs": 50,
                        "dsps": config.macs_per_cycle, "brams": 2, "lutrams": 1,
                        "modules": [{"name": "vta_core", "luts": 1}], "cells": {"LUT4": 3}})

    fake = types.ModuleType("vta.hw.synth")
    fake.estimate = estimate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vta.hw.synth", fake)

    def fmax(config: Config, family: str) -> FmaxReport:
        return FmaxReport(config.name, family, "LFE5U-45F", config.clock_mhz, 200.0 - config.block_out, {}, 1, "k")

    monkeypatch.setattr(vta.hw.fmax, "fmax", fmax)
    space, out = small_space(tmp_path), tmp_path / "sweep"
    with pytest.raises(VTAError, match="--fmax places and routes with nextpnr-ecp5: it needs --synth ecp5"):
        run_sweep(space, out, executor=InlineExecutor(), synth="ice40", fmax=True)
    res = run_sweep(space, out, executor=InlineExecutor(), synth="ecp5", fmax=True)
    assert sorted(calls) == sorted((Config(**c).name, "ecp5") for c in space.configs())  # 4 configs, not 8 points
    synth_rows = csv_rows(out / "synth.csv")
    assert len(synth_rows) == 4 and not any(c.startswith(("synth_modules", "synth_cells"))
                                            for c in synth_rows[0])  # breakdowns stay in the JSON reports
    reports = [json.loads((out / "synth_reports" / f"{r['key']}.json").read_text()) for r in synth_rows]
    assert all(rep["modules"] == [{"name": "vta_core", "luts": 1}] and rep["fmax"]["device"] == "LFE5U-45F"
               for rep in reports)
    for r in res.rows:
        assert r["synth_luts"] == 100 * r["macs_per_cycle"] and r["synth_fmax_mhz"] == 200 - r["block_out"]
        assert r["synth_fmax_device"] == "LFE5U-45F" and r["synth_meets_timing"] in (True, "True")
    assert set(res.pareto) == {"LUT", "FF", "DSP", "BRAM"}
    s = {x["config_name"]: x for x in res.summary}
    one = next(iter(s.values()))
    assert one["inferences_per_s_fmax"] == pytest.approx(one["fmax_mhz"] * 1e6 / one["total_cycles"])
    configs = csv_rows(out / "configs.csv")
    assert {"LUT", "DSP", "BRAM", "pareto_LUT"} <= set(configs[0])
    calls.clear()
    again = run_sweep(space, out, executor=InlineExecutor(), synth="ecp5", fmax=True)  # resumes: nothing to do
    assert calls == [] and again.computed == []


def test_resource_columns_and_pareto_front() -> None:
    cols = ["synth_resources_lut", "synth_lut_available", "synth_ff", "synth_dsp48e1", "synth_bram_pct",
            "synth_ramb36", "synth_family"]
    assert resource_columns(cols) == {"LUT": "synth_resources_lut", "FF": "synth_ff", "DSP": "synth_dsp48e1",
                                      "BRAM": "synth_ramb36"}
    items = [{"n": "a", "c": 1, "p": 1.0}, {"n": "b", "c": 2, "p": 0.5}, {"n": "c", "c": 2, "p": 3.0},
             {"n": "d", "c": 3, "p": 3.0}, {"n": "e", "c": 4, "p": 4.0}, {"n": "f", "c": None, "p": 9.0}]
    assert [s["n"] for s in pareto_front(items, "c", "p")] == ["a", "c", "e"]


def test_config_summary_needs_every_workload() -> None:
    base = {"config_name": "x", "clock_mhz": 200.0, "macs_per_cycle": 16, "onchip_bytes": 1024}
    rows = [{**base, "config_key": "k1", "workload": "a", "status": "ok", "cycles": 100},
            {**base, "config_key": "k1", "workload": "b", "status": "ok", "cycles": 300},
            {**base, "config_key": "k2", "workload": "a", "status": "ok", "cycles": 50},
            {**base, "config_key": "k2", "workload": "b", "status": "error", "cycles": None}]
    (s,) = config_summary(rows, ["a", "b"])
    assert s["config_key"] == "k1" and s["total_cycles"] == 400 and s["inferences_per_s"] == pytest.approx(5e5)


# ---- plots, tables, CLI ---------------------------------------------------------------------------------

def test_plots_and_tables_are_written(local_run: Any) -> None:
    out = local_run.outdir
    pngs = ["pareto.png", "roofline_conv2d_1_16_8_8_16_3_1_1.png", "roofline_dense_16_32_64.png"]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert len(csv_rows(out / "results.csv")) == 8
    configs = csv_rows(out / "configs.csv")
    assert len(configs) == 4 and {"pareto_macs_per_cycle", "pareto_onchip_bytes"} <= set(configs[0])
    front = [c for c in configs if c["pareto_macs_per_cycle"] == "True"]
    assert front and [c["config_name"] for c in front] == local_run.to_dict()["pareto"]["macs_per_cycle"]
    recorded = json.loads((out / "space.json").read_text())
    assert recorded["axes"] == {"block_in": [4, 8], "block_out": [4, 8]}


def test_parquet_copy_when_pyarrow_is_installed(local_run: Any) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(local_run.outdir / "results.parquet")
    assert table.num_rows == 8 and "cycles" in table.column_names


def test_cli_sweeps_the_example_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "small"
    r = CliRunner().invoke(main, ["sweep", str(EXAMPLE), "-o", str(out), "-j", "2", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["counts"] == {"ok": 24, "invalid": 0, "error": 0, "pending": 0} and rep["computed"] == 24
    assert {Path(f).name for f in rep["files"]} >= {"points.csv", "results.csv", "configs.csv", "pareto.png",
                                                     "roofline_digits_cnn.png"}
    rows = csv_rows(out / "results.csv")
    digits = [x for x in rows if x["workload"] == "digits_cnn"]
    assert len(digits) == 8 and all(int(x["accel_ops"]) == 3 and int(x["cycles"]) > 0 for x in digits)
    r = CliRunner().invoke(main, ["sweep", str(EXAMPLE), "-o", str(out), "--workloads", "dense:16,64,128", "--limit",
                                  "0"])
    assert r.exit_code == 0 and "computed 0" in r.output and "skipped 8 finished" in r.output, r.output
    r = CliRunner().invoke(main, ["sweep", str(EXAMPLE), "-o", str(out), "--json"])
    assert json.loads(r.output)["computed"] == 0 and json.loads(r.output)["skipped"] == 24


def test_cli_reports_a_bad_space_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "tiny"\nworkloads = ["dense:16,32,64"]\n[axes]\nblock = [4, 8]\n')
    r = CliRunner().invoke(main, ["sweep", str(bad), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "bad.toml: axis 'block' is not a config field" in r.output
    assert "Traceback" not in r.output


@needs_rtl
def test_rtl_target_gives_exact_cycles(tmp_path: Path) -> None:
    space = parse_space({"base": "tiny", "workloads": [DENSE], "target": "rtl"}, tmp_path)
    res = run_sweep(space, tmp_path / "rtl", executor=InlineExecutor(), plots=False)
    (row,) = res.rows
    built = build(Dense(16, 32, 64), PRESETS["tiny"], Epilogue(bias=True, multiplier=19, shift=11, relu=True))
    assert row["status"] == "ok" and row["target"] == "rtl" and row["cycles"] == cycles_on("rtl", built.kernel)


def test_ctrl_c_stops_the_sweep_and_a_rerun_resumes(tmp_path: Path) -> None:
    """SIGINT to the whole process group (as Ctrl-C sends it) mid-sweep: exit 130, the finished
    rows kept intact, no worker left behind; the rerun computes only what is missing."""
    import signal
    import subprocess
    import time

    space = tmp_path / "slow.toml"  # 64 model points, up to a second each: more than finish before the interrupt
    space.write_text(f'base = "tiny"\nworkloads = ["{ROOT / "vta" / "data" / "digits_cnn.onnx"}"]\n'
                     "[axes]\nblock_in = [4, 8]\nblock_out = [4, 8]\nwgt_buffer_bytes = [2048, 4096, 8192, 16384]\n"
                     "inp_buffer_bytes = [1024, 2048, 4096, 8192]\n")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "vta.cli", "sweep", str(space), "-o", str(out), "-j", "2", "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "points.csv").exists() and len(csv_rows(out / "points.csv")) >= 2:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, text
    assert "run the same command again to resume" in " ".join(text.split())
    done = {r["key"] for r in csv_rows(out / "points.csv")}
    assert 2 <= len(done) < 64
    r = CliRunner().invoke(main, ["sweep", str(space), "-o", str(out), "-j", "0", "--limit", "1", "--json", "--no-plots"])
    rep = json.loads(r.output)
    assert rep["computed"] == 1 and rep["skipped"] == len(done) and rep["counts"]["ok"] == len(done) + 1


def test_the_real_synth_reports_columns_are_recognised() -> None:
    """`vta.hw.synth`'s report layout, as the sweep reads it (no Yosys run)."""
    import vta.hw.synth as synth
    from vta.sweep.evaluate import scalar_columns

    report = synth.SynthReport(config="tiny", family="ecp5", flatten=False, top="vta_core",
                               total=synth.Resources(luts=1, ffs=2, dsps=3, brams=4, lutrams=5), cells={"LUT4": 1},
                               modules=(), memories=(), yosys="", key="", synth_seconds=0.0)
    cols = scalar_columns(report.to_dict(), "synth")
    assert resource_columns(cols) == {"LUT": "synth_luts", "FF": "synth_ffs", "DSP": "synth_dsps",
                                      "BRAM": "synth_brams"}
    assert cols["synth_dsps"] == 3
