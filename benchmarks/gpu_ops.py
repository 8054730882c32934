"""The GPU backend against PyTorch eager, same GPU, same run: single operators (an
elementwise chain, softmax and layer-norm rows, a row reduction, float32 matmuls, ResNet-18
convolutions (cuDNN), max/average/global pooling, and a plain copy for the bandwidth the
memory-bound ones are measured against), each
default-scheduled (`vta.compiler.gpu.default_schedule`), compiled to PTX by llvmlite and
launched through the CUDA driver (`vta.runtime.cuda_device`), against the same operator in
PyTorch on the same device. Device-side times: CUDA events recorded on the stream the
kernels run on, around --iters back-to-back launches after a warm-up, the median of
--repeat such measurements divided by --iters. Outputs are checked to agree first.
PyTorch's matmul and cuDNN's convolutions run in strict float32 (TF32 off), like ours
(cuDNN with ``benchmark`` on: its fastest algorithm for the shape).

    python benchmarks/gpu_ops.py [--repeat 5] [--iters 20] [--json] [--only matmul_2048]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vta.compiler.gpu import compile_gpu, default_schedule
from vta.compiler.tir import nn
from vta.compiler.tir.scalar import FloatImm, call
from vta.compiler.tir.stmt import PrimFunc
from vta.compiler.tir.te import FuncBuilder
from vta.runtime import cuda_device


def _chain(n: int) -> PrimFunc:
    fb = FuncBuilder("chain")
    x = fb.input("X", (n,), "float32")
    a = fb.compute("A", (n,), "float32", lambda i: x[i] * FloatImm(2.0) + FloatImm(1.0))
    b = fb.compute("B", (n,), "float32", lambda i: call("tanh", a[i]))
    return fb.build([fb.compute("Y", (n,), "float32", lambda i: b[i] * call("exp", a[i]))])


@dataclass
class Case:
    name: str
    func: Callable[[], PrimFunc]
    torch_fn: Callable[..., object]  # the same operator on torch tensors (inputs in parameter order)
    flops: float  # 0: report bandwidth instead
    rtol: float = 1e-4
    atol: float = 1e-4


def _cases() -> list[Case]:
    import torch
    import torch.nn.functional as F

    n = 1 << 24
    conv = _conv_case
    mm = lambda m, k, nn_: Case(f"matmul_{m}x{k}x{nn_}", lambda: nn.matmul((m, k), (k, nn_), "float32"),
                                lambda a, b: a @ b, 2.0 * m * k * nn_, 1e-4, 1e-3 * k ** 0.5)
    return [
        Case("chain_16M", lambda: _chain(n), lambda x: torch.tanh(x * 2 + 1) * torch.exp(x * 2 + 1), 0),
        Case("softmax_4096x4096", lambda: nn.softmax((4096, 4096), "float32"), lambda x: torch.softmax(x, -1), 0,
             1e-4, 1e-6),
        Case("layernorm_8192x1024", lambda: nn.layer_norm((8192, 1024), "float32"),
             lambda x, g, b: F.layer_norm(x, (1024,), g, b, 1e-5), 0, 1e-4, 1e-4),
        Case("reducesum_4096x8192", lambda: nn.reduce("ReduceSum", (4096, 8192), "float32", [1]),
             lambda x: x.sum(-1, keepdim=True), 0, 1e-4, 1e-3),
        mm(256, 256, 256), mm(2048, 2048, 2048), mm(4096, 4096, 4096),
        # ResNet-18 convolutions, batch 1 (stride 2 1x1: a downsampling shortcut)
        conv((1, 64, 56, 56), 64, 3), conv((1, 128, 28, 28), 128, 3), conv((1, 256, 14, 14), 256, 3),
        conv((1, 512, 7, 7), 512, 3), conv((1, 128, 28, 28), 256, 1, 2), conv((1, 256, 14, 14), 256, 1),
        conv((1, 3, 224, 224), 64, 7, 2),  # the stem (3 input channels: the direct schedule)
        conv((1, 256, 28, 28), 256, 3, group=256),  # depthwise
        conv((8, 64, 56, 56), 64, 3),  # batch 8
        # pooling, large enough to be bandwidth-bound (compare with copy_256M)
        Case("maxpool_3x3s2_32x64x112x112", lambda: nn.pool2d("MaxPool", (32, 64, 112, 112), "float32", (3, 3),
                                                               (2, 2), (1, 1, 1, 1)),
             lambda x: F.max_pool2d(x, 3, 2, 1), 0),
        Case("avgpool_3x3s1_32x64x56x56", lambda: nn.pool2d("AveragePool", (32, 64, 56, 56), "float32", (3, 3),
                                                             (1, 1), (1, 1, 1, 1)),
             lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), 0),
        Case("avgpool_2x2s2_32x128x56x56", lambda: nn.pool2d("AveragePool", (32, 128, 56, 56), "float32", (2, 2),
                                                              (2, 2)),
             lambda x: F.avg_pool2d(x, 2, 2), 0),
        Case("globalavgpool_64x512x7x7", lambda: nn.global_pool("GlobalAveragePool", (64, 512, 7, 7), "float32"),
             lambda x: x.mean((2, 3), keepdim=True), 0, 1e-4, 1e-5),
        Case("globalavgpool_32x256x56x56", lambda: nn.global_pool("GlobalAveragePool", (32, 256, 56, 56), "float32"),
             lambda x: x.mean((2, 3), keepdim=True), 0, 1e-4, 1e-5),
        Case("copy_256M", lambda: _copy(1 << 26), lambda x: x.clone(), 0),
    ]


def _conv_case(x: tuple[int, int, int, int], o: int, k: int, stride: int = 1, group: int = 1) -> Case:
    import torch.nn.functional as F

    n, c, h, w = x
    p = k // 2
    oh, ow = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
    name = f"conv_{'x'.join(map(str, x))}_{k}x{k}s{stride}_{o}" + (f"_g{group}" if group > 1 else "")
    return Case(name, lambda: nn.conv2d(x, (o, c // group, k, k), "float32", (stride, stride), (p, p, p, p),
                                        group=group),
                lambda xs, ws: F.conv2d(xs, ws, None, stride, p, 1, group),
                2.0 * n * o * oh * ow * (c // group) * k * k, 1e-4, 1e-3 * (c // group * k * k) ** 0.5)


def _copy(n: int) -> PrimFunc:
    fb = FuncBuilder("copy")
    x = fb.input("X", (n,), "float32")
    return fb.build([fb.compute("Y", (n,), "float32", lambda i: x[i])])


def _time(run: Callable[[], None], stream: object, iters: int, repeat: int, event: Callable[[], object],
          record: Callable[[object, object], None], elapsed: Callable[[object, object], float]) -> float:
    """Median device milliseconds per call of ``run``: events recorded on ``stream`` around ``iters`` calls."""
    for _ in range(3):
        run()
    times = []
    for _ in range(repeat):
        start, end = event(), event()
        record(start, stream)
        for _ in range(iters):
            run()
        record(end, stream)
        times.append(elapsed(start, end) / iters)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not cuda_device.available():
        sys.exit(f"gpu_ops: {cuda_device.unavailable_reason()}")
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # cuDNN convolutions in strict float32 too
    torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithm for each shape
    torch.cuda.init()
    gpu = cuda_device.CudaDevice(0)  # the primary context, which PyTorch uses too
    tstream = torch.cuda.current_stream()
    rows = []
    for case in _cases():
        if a.only and a.only not in case.name:
            continue
        t0 = time.perf_counter()
        func = default_schedule(case.func())
        program = compile_gpu(func)
        compile_s = time.perf_counter() - t0
        prog = gpu.load(program)
        rng = np.random.default_rng(0)
        host = [rng.standard_normal(shape).astype(np.float32) for _, shape, _ in program.params[:-1]]
        out_shape = program.params[-1][1]
        dev = [gpu.to_device(h) for h in host] + [gpu.alloc(out_shape, "float32")]
        gpu.activate()
        prog.launch(*dev)  # checked launch: a fault names its kernel
        got = dev[-1].copy_to()
        tin = [torch.from_numpy(h).cuda() for h in host]
        ref = case.torch_fn(*tin)
        torch.cuda.synchronize()
        np.testing.assert_allclose(got, ref.cpu().numpy().reshape(out_shape), rtol=case.rtol, atol=case.atol)

        def ours(prog: cuda_device.CudaProgram = prog, dev: list = dev) -> None:  # type: ignore[type-arg]
            prog.launch(*dev, stream=0, check_each=False)

        ms = _time(ours, 0, a.iters, a.repeat, cuda_device.Event, lambda e, s: e.record(s),
                   lambda s, e: s.elapsed_ms(e))
        gpu.synchronize()
        tms = _time(lambda fn=case.torch_fn, tin=tin: fn(*tin), tstream, a.iters, a.repeat,
                    lambda: torch.cuda.Event(enable_timing=True), lambda e, s: e.record(s),
                    lambda s, e: (e.synchronize(), s.elapsed_time(e))[1])
        moved = sum(h.nbytes for h in host) + got.nbytes
        row = {"op": case.name, "kernels": len(program.kernels), "vta_ms": ms, "torch_ms": tms,
               "speed_vs_torch": tms / ms, "compile_s": compile_s}
        if case.flops:
            row["vta_tflops"], row["torch_tflops"] = case.flops / ms / 1e9, case.flops / tms / 1e9
        else:
            row["vta_gbps"], row["torch_gbps"] = moved / ms / 1e6, moved / tms / 1e6
        rows.append(row)
        for x in dev:
            x.free()
        prog.close()
        if not a.json:
            rate = (f"{row['vta_tflops']:.2f} vs {row['torch_tflops']:.2f} TFLOP/s" if case.flops else
                    f"{row['vta_gbps']:.0f} vs {row['torch_gbps']:.0f} GB/s")
            print(f"{case.name:24s} {len(program.kernels)} kernel(s)  vta {ms * 1e3:9.1f} us  torch {tms * 1e3:9.1f} us  "
                  f"x{tms / ms:5.2f}  ({rate}; compiled in {compile_s:.1f} s)", flush=True)
    if a.json:
        print(json.dumps({"device": gpu.name, "rows": rows}, indent=1))
    else:
        print(f"device: {gpu.name}, compute capability {gpu.compute_capability}")


if __name__ == "__main__":
    main()
