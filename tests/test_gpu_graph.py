"""Whole models with ``host="gpu"``: every host operator compiled to a GPU program (here,
everywhere: PTX checked, artifacts round-tripped), and run on a GPU against onnxruntime and
against the CPU backend when one is present (skipped with the reason otherwise)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx_models import bert_style, mobilenet_style, resnet_style
from test_gpu_codegen import check_ptx
from vta.compiler import artifact
from vta.compiler.cpu.codegen import CodegenError
from vta.compiler.graph import import_onnx
from vta.compiler.graph.build import compile_module
from vta.isa import PRESETS
from vta.runtime import calibrate, cuda_device, run_graph

from vta.cli import main

needs_gpu = pytest.mark.skipif(not cuda_device.available(), reason=f"no CUDA GPU: {cuda_device.unavailable_reason()}")


def _feeds(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    if name == "bert_style":
        mask = np.ones((2, 8), np.int64)
        mask[1, 5:] = 0
        return {"ids": rng.integers(0, 50, (2, 8)).astype(np.int64), "mask": mask}
    return {"input": rng.standard_normal((2, 3, 16, 16)).astype(np.float32)}


MODELS = {"resnet_style": resnet_style, "mobilenet_style": mobilenet_style, "bert_style": bert_style}


def _gpu_exe(name: str):  # type: ignore[no-untyped-def]
    feeds = _feeds(name)
    return compile_module(import_onnx(MODELS[name](), {k: v.shape for k, v in feeds.items()}), host="gpu"), feeds


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_host_operator_compiles_for_the_gpu(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    exe, _ = _gpu_exe(name)
    kernels = [st for st in exe.steps if st.kind == "kernel"]
    assert exe.host == "gpu" and kernels
    assert all(st.gpu is not None and st.kernel is None and st.fallback is None for st in kernels), \
        [(st.node.op, st.fallback) for st in kernels if st.gpu is None]
    for prog in {id(st.gpu): st.gpu for st in kernels}.values():
        check_ptx(prog, tmp_path)  # type: ignore[arg-type]


def test_gpu_artifact_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    exe, _ = _gpu_exe("resnet_style")
    path = tmp_path / "m.vtapkg"
    artifact.save(exe, path)
    back = artifact.load(path)
    assert back.host == "gpu" and len(back.steps) == len(exe.steps)
    for a, b in zip(exe.steps, back.steps):
        assert a.device == b.device
        if a.gpu is not None:
            assert b.gpu.ptx == a.gpu.ptx and b.gpu.kernels == a.gpu.kernels  # type: ignore[union-attr]
    assert back.kernels == exe.kernels


def test_an_operator_the_gpu_cannot_compile_falls_back_to_the_cpu(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The fallback path itself: the GPU code generator refuses every softmax-like function here."""
    import vta.compiler.gpu as gpu

    real = gpu.compile_gpu

    def refuse_reductions(func):  # type: ignore[no-untyped-def]
        if "reduce" in func.name.lower() or "softmax" in func.name.lower():
            raise CodegenError(f"{func.name}: refused by this test")
        return real(func)

    monkeypatch.setattr(gpu, "compile_gpu", refuse_reductions)
    exe, feeds = _gpu_exe("bert_style")
    fallen = [st for st in exe.steps if st.fallback]
    assert fallen and all(st.kernel is not None and st.gpu is None and "refused by this test" in st.fallback
                          for st in fallen)
    assert any(st.gpu is not None for st in exe.steps)
    artifact.save(exe, tmp_path / "m.vtapkg")
    back = artifact.load(tmp_path / "m.vtapkg")
    assert [st.fallback for st in back.steps] == [st.fallback for st in exe.steps]
    if cuda_device.available():
        ref = ort.InferenceSession(bert_style().SerializeToString()).run(None, feeds)
        outs, report = run_graph(exe, feeds)
        np.testing.assert_allclose(next(iter(outs.values())).reshape(ref[0].shape), ref[0], rtol=1e-4, atol=1e-4)
        assert {"gpu", "cpu (fallback)"} <= {r.device for r in report.ops}


@pytest.mark.skipif(cuda_device.available(), reason="a GPU is present")
def test_running_a_gpu_executable_without_a_gpu_says_why() -> None:
    exe, feeds = _gpu_exe("resnet_style")
    with pytest.raises(cuda_device.CudaError, match="compiled for --host gpu, but there is no usable GPU"):
        run_graph(exe, feeds)


@needs_gpu
@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_on_the_gpu_match_onnxruntime_and_the_cpu(name: str) -> None:
    exe, feeds = _gpu_exe(name)
    model = MODELS[name]()
    ref = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    cpu_exe = compile_module(import_onnx(model, {k: v.shape for k, v in feeds.items()}))
    cpu_outs, _ = run_graph(cpu_exe, feeds)
    for _ in range(2):  # the second run reuses the loaded programs and buffers
        outs, report = run_graph(exe, feeds)
        for r, (k, got) in zip(ref, outs.items()):
            np.testing.assert_allclose(got.reshape(r.shape), r, rtol=1e-4, atol=1e-4, err_msg=k)
            np.testing.assert_allclose(got, cpu_outs[k], rtol=1e-4, atol=1e-4, err_msg=k)
        gpu_ops = [r for r in report.ops if r.device == "gpu"]
        assert gpu_ops and all(r.seconds > 0 for r in gpu_ops)
        assert {r.device for r in report.ops} <= {"gpu", "view"}


@needs_gpu
def test_quantized_model_with_the_accelerator_and_the_gpu() -> None:
    """Accelerator steps between GPU steps: their inputs come down, their outputs go back up."""
    cfg = PRESETS["default"]
    rng = np.random.default_rng(3)
    samples = [{"input": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(4)]
    mod = lambda: import_onnx(resnet_style(), {"input": (1, 3, 16, 16)})  # noqa: E731
    on_cpu = compile_module(mod(), cfg, calibrate(samples))
    on_gpu = compile_module(mod(), cfg, calibrate(samples), host="gpu")
    assert on_gpu.accelerated == on_cpu.accelerated > 0
    a, _ = run_graph(on_cpu, samples[0])
    b, report = run_graph(on_gpu, samples[0])
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-4, err_msg=k)
    devices = {r.device.split(" ")[0] for r in report.ops}
    assert {"gpu", "accel"} <= devices


@needs_gpu
def test_vta_run_host_gpu_reports_gpu_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.onnx"
    onnx.save(resnet_style(), path)
    res = CliRunner().invoke(main, ["run", str(path), "--float", "--host", "gpu", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output[res.output.index("{"):])
    assert r["host"] == "gpu" and r["ms_by_device"]["gpu"] > 0
