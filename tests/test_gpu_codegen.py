"""The GPU backend without a GPU: default schedules keep the operators' results (checked by
running the scheduled loop IR on the CPU backend, where thread loops run in order), the
lowering compacts shared and per-thread buffers, the PTX that llvmlite's NVPTX backend
emits is well formed (header, entry points, parameters, barriers, shared memory; ``ptxas``
accepts it where it is installed), launches follow the bound loops, and constructs the
backend cannot lower are clear `CodegenError`s."""

from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from vta.compiler.cpu import compile_cpu
from vta.compiler.gpu import CodegenError, GpuProgram, compile_gpu, default_schedule
from vta.compiler.gpu.lower import lower
from vta.compiler.tir import nn
from vta.compiler.tir.expr import IntImm, Var
from vta.compiler.tir.scalar import FloatImm, call
from vta.compiler.tir.schedule import Schedule
from vta.compiler.tir.stmt import Block, BlockRealize, Buffer, BufferStore, For, IterVar, PrimFunc, SeqStmt
from vta.compiler.tir.te import FuncBuilder

PTXAS = shutil.which("ptxas")


def chain(n: int) -> PrimFunc:
    """``Y = tanh(2x + 1) · exp(2x + 1)`` as three stages (two intermediates to fuse away)."""
    fb = FuncBuilder("chain")
    x = fb.input("X", (n,), "float32")
    a = fb.compute("A", (n,), "float32", lambda i: x[i] * FloatImm(2.0) + FloatImm(1.0))
    b = fb.compute("B", (n,), "float32", lambda i: call("tanh", a[i]))
    y = fb.compute("Y", (n,), "float32", lambda i: b[i] * call("exp", a[i]))
    return fb.build([y])


def parse_ptx(ptx: str) -> dict[str, object]:
    """The PTX header and each entry's parameter count, as a driver would read them."""
    version = re.search(r"^\.version (\d+)\.(\d+)$", ptx, re.MULTILINE)
    target = re.search(r"^\.target (\S+)$", ptx, re.MULTILINE)
    size = re.search(r"^\.address_size (\d+)$", ptx, re.MULTILINE)
    entries = {m.group(1): len(re.findall(r"\.param\b", m.group(2)))
               for m in re.finditer(r"^\.visible \.entry (\w+)\(([^)]*)\)", ptx, re.MULTILINE)}
    return {"version": (int(version.group(1)), int(version.group(2))) if version else None,
            "target": target.group(1) if target else None, "address_size": int(size.group(1)) if size else None,
            "entries": entries}


def check_ptx(prog: GpuProgram, tmp_path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    info = parse_ptx(prog.ptx)
    assert info["version"] is not None and info["version"] >= (8, 0)
    assert info["target"] == "sm_90" and info["address_size"] == 64
    nparams = len(prog.params) + len(prog.scratch)
    assert info["entries"] == {k.name: nparams for k in prog.kernels}
    assert prog.ptx.count("{") == prog.ptx.count("}")
    assert ".extern" not in prog.ptx  # no unresolved calls (NVPTX has no libm)
    if PTXAS:
        f = tmp_path / f"{prog.name}.ptx"
        f.write_text(prog.ptx)
        r = subprocess.run([PTXAS, "-arch=sm_90", str(f), "-o", str(tmp_path / "out.cubin")], capture_output=True,
                           text=True, check=False)
        assert r.returncode == 0, r.stderr
    return info


def inputs(func: PrimFunc, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(d.value for d in p.shape)).astype(np.float32)  # type: ignore[attr-defined]
            for p in func.params]


def same_on_cpu(func: PrimFunc, scheduled: PrimFunc, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """The scheduled function computes what the plain one does (both on the CPU backend)."""
    args = inputs(func)
    ref = [a.copy() for a in args]
    compile_cpu(func)(*ref)
    compile_cpu(scheduled)(*args)
    np.testing.assert_allclose(args[-1], ref[-1], rtol=rtol, atol=atol)


def test_elementwise_chain_is_one_kernel_a_thread_per_element(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = chain(1000)
    s = default_schedule(f)
    same_on_cpu(f, s)
    prog = compile_gpu(s)
    # four neighbouring elements per thread (1000 = 250 threads), read and written 16 bytes at a time
    assert [k.launch.grid for k in prog.kernels] == [(1, 1, 1)] and prog.kernels[0].launch.block == (256, 1, 1)
    assert "ld.global.nc.v4.b32" in prog.ptx and "st.global.v4.b32" in prog.ptx
    assert prog.scratch == () and prog.written == (1,)
    check_ptx(prog, tmp_path)
    assert "bar.sync" not in prog.ptx and "ex2" not in prog.ptx  # exp is the inline polynomial, not an approximation
    odd = compile_gpu(default_schedule(chain(1001)))  # no multiple of four: a thread per element
    assert odd.kernels[0].launch.grid == (4, 1, 1) and ".v4." not in odd.ptx
    small = compile_gpu(default_schedule(chain(40)))
    assert small.kernels[0].launch.grid == (1, 1, 1) and small.kernels[0].launch.block == (64, 1, 1)


@pytest.mark.parametrize("shape", [(64, 1000), (8, 3, 256)])
def test_softmax_rows_are_one_kernel_with_a_block_per_row(shape, tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = nn.softmax(shape, "float32")
    s = default_schedule(f)
    same_on_cpu(f, s)
    prog = compile_gpu(s)
    rows = math.prod(shape[:-1])
    assert [(k.launch.grid, k.launch.block) for k in prog.kernels] == [((rows, 1, 1), (256, 1, 1))]
    assert prog.scratch == ()  # the row max and sum live in shared memory
    check_ptx(prog, tmp_path)
    # a tree of 8 levels for each of the two reductions: the 3 levels over more than a warp wait for
    # the whole block, the 5 in the first warp (and the result's write) for that warp only
    assert prog.ptx.count("bar.sync") >= 2 * 3 and prog.ptx.count("bar.warp.sync") >= 2 * 5
    assert re.search(r"\.shared \.align 16 \.b8 softmax_M_red\[1024\]", prog.ptx)


def test_layer_norm_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = nn.layer_norm((32, 768), "float32")
    s = default_schedule(f)
    same_on_cpu(f, s, atol=1e-4)
    prog = compile_gpu(s)
    assert [(k.launch.grid, k.launch.block) for k in prog.kernels] == [((32, 1, 1), (256, 1, 1))]
    assert [p[0] for p in prog.params] == ["X", "Scale", "B", "Y"]
    check_ptx(prog, tmp_path)


def test_reductions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    long = nn.reduce("ReduceSum", (128, 4096), "float32", [1])
    s = default_schedule(long)
    same_on_cpu(long, s, rtol=1e-4, atol=1e-3)
    prog = compile_gpu(s)
    assert [(k.launch.grid, k.launch.block, k.shared_bytes) for k in prog.kernels] == [((128, 1, 1), (256, 1, 1),
                                                                                         1024)]
    check_ptx(prog, tmp_path)
    short = nn.reduce("ReduceMax", (512, 8), "float32", [1])  # a thread per output, the reduction serial
    s = default_schedule(short)
    same_on_cpu(short, s)
    prog = compile_gpu(s)
    assert [(k.launch.grid, k.launch.block, k.shared_bytes) for k in prog.kernels] == [((2, 1, 1), (256, 1, 1), 0)]
    check_ptx(prog, tmp_path)
    few = nn.reduce("ReduceMax", (512, 24), "float32", [1])  # few outputs of half a warp or more: a warp each
    s = default_schedule(few)
    same_on_cpu(few, s)
    prog = compile_gpu(s)
    assert [(k.launch.grid, k.launch.block, k.shared_bytes) for k in prog.kernels] == [((512, 1, 1), (32, 1, 1), 128)]
    check_ptx(prog, tmp_path)


def test_matmul_tiles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = nn.matmul((256, 256), (256, 256), "float32")
    s = default_schedule(f)
    same_on_cpu(f, s, rtol=1e-4, atol=1e-4)
    prog = compile_gpu(s)
    # 64 tiles of 32×32 (larger tiles would leave most of 132 SMs idle), 16×16 threads of 2×2
    assert [(k.launch.grid, k.launch.block) for k in prog.kernels] == [((8, 8, 1), (16, 16, 1))]
    assert prog.kernels[0].shared_bytes == 2 * 32 * 16 * 4
    check_ptx(prog, tmp_path)
    assert "fma.rn.f32" in prog.ptx and "ld.shared" in prog.ptx and "bar.sync" in prog.ptx


def test_large_matmul_register_tile() -> None:
    s = default_schedule(nn.matmul((2048, 1024), (1024, 2048), "float32"))
    low = lower(s)
    shapes = {b.name: (tuple(d.value for d in b.shape), b.scope) for b in low.allocs}  # type: ignore[attr-defined]
    assert shapes == {"Y_local": ((8, 8), "local"), "A_shared": ((128, 16), "shared"),
                      "B_shared": ((16, 128), "shared")}
    prog = compile_gpu(s)
    assert prog.kernels[0].launch.grid == (16, 16, 1) and prog.kernels[0].launch.block == (16, 16, 1)
    assert prog.ptx.count("fma.rn.f32") >= 8 * 8 * 16  # the k step unrolled over the whole register tile
    assert ".local" not in prog.ptx  # the accumulator tile lives in registers, not in a stack array


def test_batched_and_ragged_matmul_on_cpu() -> None:
    for a, b in (((3, 100, 50), (3, 50, 72)), ((70, 33), (33, 20))):
        f = nn.matmul(a, b, "float32")
        s = default_schedule(f)
        same_on_cpu(f, s, rtol=1e-4, atol=1e-4)
        prog = compile_gpu(s)
        assert len(prog.kernels) == 1
    assert compile_gpu(default_schedule(nn.matmul((3, 100, 50), (3, 50, 72), "float32"))).kernels[0].launch.grid == \
        (3, 4, 3)


def test_program_round_trips_as_data() -> None:
    prog = compile_gpu(default_schedule(nn.softmax((4, 128), "float32")))
    assert GpuProgram.from_dict(prog.to_dict()) == prog


def test_gpu_log_matches_numpy() -> None:
    """The inline float32 log (no libm on the GPU), JIT-compiled for the host."""
    from llvmlite import binding as llvm
    from llvmlite import ir
    from vta.compiler.cpu.jit import _new_machine, optimize
    from vta.compiler.gpu.mathfn import log_f32

    m = ir.Module("logtest")
    f32, ptr = ir.FloatType(), ir.PointerType()
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [ptr, ptr, ir.IntType(64)]), name="logs")
    b = ir.IRBuilder(fn.append_basic_block())
    decl = {}

    def intrinsic(name: str, ty: ir.Type) -> ir.Function:
        key = f"{name}.f32"
        decl.setdefault(key, ir.Function(m, ir.FunctionType(ty, [ty]), name=key))
        return decl[key]

    with b.goto_entry_block():
        pass
    i = ir.Constant(ir.IntType(64), 0)
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    entry = b.block
    b.branch(loop)
    b.position_at_end(loop)
    phi = b.phi(ir.IntType(64))
    phi.add_incoming(i, entry)
    x = b.load(b.gep(fn.args[0], [phi], source_etype=f32), typ=f32)
    b.store(log_f32(b, x, intrinsic), b.gep(fn.args[1], [phi], source_etype=f32))
    nxt = b.add(phi, ir.Constant(ir.IntType(64), 1))
    phi.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, fn.args[2]), loop, done)
    b.position_at_end(done)
    b.ret_void()
    engine = llvm.create_mcjit_compiler(optimize(str(m)), _new_machine())
    engine.finalize_object()
    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(engine.get_function_address("logs"))
    rng = np.random.default_rng(3)
    xs = np.concatenate([np.exp(rng.uniform(-80, 80, 20000)), rng.uniform(0, 4, 20000), [1e-40, 1.0, 2.0]])
    xs = np.concatenate([xs.astype(np.float32), np.array([0.0, -1.0, np.inf, np.nan], np.float32)])
    out = np.empty_like(xs)
    run(xs.ctypes.data, out.ctypes.data, len(xs))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.log(xs.astype(np.float64))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(out[fin], ref[fin], rtol=3e-7, atol=1e-7)
    assert out[-4] == -np.inf and np.isnan(out[-3]) and out[-2] == np.inf and np.isnan(out[-1])


# ---- errors -------------------------------------------------------------------------------

def _copy(n: int, kind: str = "serial", thread: str | None = None, fn=None) -> PrimFunc:  # type: ignore[no-untyped-def]
    a, c = Buffer("A", (n,), "float32"), Buffer("C", (n,), "float32")
    i, vi = Var("i"), Var("vi")
    blk = Block("copy", (IterVar(vi, IntImm(n)),), reads=(a[vi],), writes=(c[vi],),  # type: ignore[arg-type]
                body=BufferStore(c, fn(a[vi]) if fn else a[vi], (vi,)))
    return PrimFunc("copy", (a, c), For(i, IntImm(n), BlockRealize((i,), IntImm(1), blk), kind, thread))


def test_unsupported_constructs_are_clear_errors() -> None:
    with pytest.raises(CodegenError, match="no loop bound to blockIdx or threadIdx"):
        compile_gpu(_copy(64))
    with pytest.raises(CodegenError, match="'parallel'"):
        compile_gpu(_copy(64, "parallel"))
    with pytest.raises(CodegenError, match="vthread"):
        compile_gpu(_copy(64, "thread_binding", "vthread"))
    with pytest.raises(CodegenError, match="sin in float32 is not available on the GPU"):
        compile_gpu(_copy(64, "thread_binding", "threadIdx.x", lambda x: call("sin", x)))
    with pytest.raises(CodegenError, match="exp in float64"):
        f = _copy(64, "thread_binding", "threadIdx.x", lambda x: call("exp", x, dtype="float64"))
        compile_gpu(f)
    with pytest.raises(CodegenError, match="threadIdx.x extent 2048 exceeds"):
        compile_gpu(_copy(2048, "thread_binding", "threadIdx.x"))


def test_block_loops_must_be_outermost_and_shared_must_stay_in_its_kernel() -> None:
    f = nn.unary("Relu", (4, 64), "float32")
    sch = Schedule(f)
    _, j = sch.get_loops("Y")
    sch.bind(j, "blockIdx.x")
    with pytest.raises(CodegenError, match="bound to blockIdx.x but is not one of the stage's outermost loops"):
        compile_gpu(sch.func)
    s = default_schedule(nn.reduce("ReduceSum", (4, 256), "float32", [1]))
    two = PrimFunc("two", s.params, SeqStmt((s.body, s.body)), allocs=s.allocs)
    with pytest.raises(CodegenError, match="shared buffer Y_red is used by stages 0, 1"):
        compile_gpu(two)


def test_accelerator_scopes_are_refused() -> None:
    f = default_schedule(nn.softmax((4, 128), "float32"))
    sch = Schedule(f)
    sch.set_scope("M", "acc")
    with pytest.raises(CodegenError, match="accelerator scope 'acc'"):
        compile_gpu(sch.func)


# ---- convolutions and pooling -------------------------------------------------------------

def test_conv2d_dense_is_one_tiled_kernel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vta.compiler.gpu.conv import MIN_BLOCKS, conv2d_pattern, conv_tile

    f = nn.conv2d((1, 64, 56, 56), (64, 64, 3, 3), "float32", pads=(1, 1, 1, 1))
    info = conv2d_pattern(Schedule(f), "Y")
    assert info is not None and (info.ic, info.kh, info.stride, info.grouped) == (64, 3, (1, 1), False)
    t = conv_tile(info)
    assert t.blocks(info) >= MIN_BLOCKS and t.ro * t.rx > 1  # most SMs busy, a register tile per thread
    prog = compile_gpu(default_schedule(f))
    # the padding is inlined into the shared-memory copy: one kernel, no scratch buffer
    assert len(prog.kernels) == 1 and prog.scratch == ()
    k = prog.kernels[0]
    assert k.launch.block == (t.tx, t.ty, t.to) and k.launch.grid[2] == -(-64 // (t.to * t.ro))
    # the shared buffers compact to one step's tiles (rounded up to whole rounds of the copying threads)
    assert t.shared_bytes(info) <= k.shared_bytes <= 2 * t.shared_bytes(info)
    check_ptx(prog, tmp_path)
    assert "fma.rn.f32" in prog.ptx and "ld.shared" in prog.ptx and "bar.sync" in prog.ptx
    assert ".local" not in prog.ptx  # the accumulators live in registers


@pytest.mark.parametrize("x,w,kw", [
    ((1, 16, 10, 10), (32, 16, 3, 3), {"pads": (1, 1, 1, 1)}),
    ((2, 16, 9, 11), (20, 16, 3, 3), {"pads": (1, 1, 1, 1), "strides": (2, 2), "bias": True}),  # tails, batch 2
    ((2, 12, 7, 9), (40, 12, 3, 3), {"pads": (0, 1, 1, 0)}),  # several channel tiles and a batch: a loop per block
    ((1, 12, 12, 12), (8, 12, 1, 1), {}),
    ((1, 8, 14, 14), (16, 8, 3, 3), {"dilations": (2, 2), "pads": (2, 2, 2, 2)}),
    ((1, 16, 10, 10), (16, 1, 3, 3), {"group": 16, "pads": (1, 1, 1, 1)}),  # depthwise
    ((1, 16, 11, 11), (16, 1, 3, 3), {"group": 16, "pads": (1, 1, 1, 1), "strides": (2, 2)}),
    ((1, 16, 10, 10), (16, 4, 3, 3), {"group": 4, "pads": (1, 1, 1, 1)}),  # grouped
    ((1, 3, 20, 20), (8, 3, 7, 7), {"pads": (3, 3, 3, 3), "strides": (2, 2), "bias": True}),  # few input channels
])
def test_conv2d_variants_on_cpu(x, w, kw, tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = nn.conv2d(x, w, "float32", **kw)
    s = default_schedule(f)
    same_on_cpu(f, s, rtol=1e-4, atol=1e-4)
    prog = compile_gpu(s)
    assert len(prog.kernels) == 1 and prog.scratch == ()  # padding inlined in every schedule
    check_ptx(prog, tmp_path)
    dense = kw.get("group", 1) == 1  # few input channels too: all of them staged at once
    assert (prog.kernels[0].shared_bytes > 0) == dense
    assert ".local" not in prog.ptx


def test_conv2d_batch_and_few_channel_tiles(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from vta.compiler.gpu import conv
    from vta.compiler.gpu.conv import MIN_BLOCKS, conv2d_pattern, conv_tile, few_channel_dense

    # a batch: 8 channels x 2 columns per thread, every channel on one block, the images on the grid
    big = conv2d_pattern(Schedule(nn.conv2d((8, 64, 56, 56), (64, 64, 3, 3), "float32", pads=(1, 1, 1, 1))), "Y")
    assert big is not None
    t = conv_tile(big)
    assert (t.to, t.ty, t.tx, t.ro, t.rx) == (8, 8, 7, 8, 2) and t.blocks(big) >= MIN_BLOCKS
    assert t.batch_on_grid(big) and t.channel_tiles(big) == 1
    one = conv2d_pattern(Schedule(nn.conv2d((1, 64, 56, 56), (64, 64, 3, 3), "float32", pads=(1, 1, 1, 1))), "Y")
    assert one is not None and conv_tile(one).rx == 1  # batch 1 keeps its tile
    # the ResNet stem: 3 input channels, all staged in one step (the dense schedule)
    f = nn.conv2d((1, 3, 224, 224), (64, 3, 7, 7), "float32", (2, 2), (3, 3, 3, 3))
    stem = conv2d_pattern(Schedule(f), "Y")
    assert stem is not None and few_channel_dense(stem) and conv_tile(stem).ic == 3
    prog = compile_gpu(default_schedule(f))
    assert len(prog.kernels) == 1 and prog.scratch == ()
    assert 0 < prog.kernels[0].shared_bytes <= conv_tile(stem).fetch_bytes(stem)
    check_ptx(prog, tmp_path)
    assert ".local" not in prog.ptx
    # the batch tile on a small batch (every tile taken), with tails in channels, rows and columns
    monkeypatch.setattr(conv, "MIN_BLOCKS", 1)
    f = nn.conv2d((2, 16, 9, 13), (24, 16, 3, 3), "float32", pads=(1, 1, 1, 1), bias=True)
    small = conv2d_pattern(Schedule(f), "Y")
    assert small is not None and conv_tile(small).rx == 2
    s = default_schedule(f)
    same_on_cpu(f, s, rtol=1e-4, atol=1e-4)
    prog = compile_gpu(s)
    assert len(prog.kernels) == 1 and prog.scratch == ()
    check_ptx(prog, tmp_path)


@pytest.mark.parametrize("make", [
    lambda: nn.pool2d("MaxPool", (2, 8, 11, 11), "float32", (3, 3), (2, 2), (1, 1, 1, 1)),
    lambda: nn.pool2d("MaxPool", (1, 4, 12, 12), "float32", (3, 3), (1, 1), dilations=(2, 2)),
    lambda: nn.pool2d("AveragePool", (2, 8, 10, 10), "float32", (3, 3), (2, 2), (1, 1, 1, 1)),
    lambda: nn.pool2d("AveragePool", (2, 8, 10, 10), "float32", (3, 3), (1, 1), (1, 1, 1, 1), count_include_pad=True),
    lambda: nn.pool2d("AveragePool", (1, 4, 9, 9), "float32", (2, 2), (2, 2), (0, 0, 1, 1), ceil_mode=True),
    lambda: nn.global_pool("GlobalAveragePool", (2, 16, 3, 3), "float32"),
    lambda: nn.global_pool("GlobalMaxPool", (2, 16, 3, 3), "float32"),
])
def test_window_pools_are_a_thread_per_output(make, tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = make()
    s = default_schedule(f)
    same_on_cpu(f, s)
    prog = compile_gpu(s)
    outputs = math.prod(d.value for d in f.params[-1].shape)  # type: ignore[attr-defined]
    # one kernel (an average's division in the thread that sums), the sum in a register
    assert len(prog.kernels) == 1 and prog.scratch == ()
    k = prog.kernels[0]
    assert k.launch.grid[0] * k.launch.block[0] >= outputs and k.shared_bytes == 0
    check_ptx(prog, tmp_path)
    assert "bar.sync" not in prog.ptx and ".local" not in prog.ptx


@pytest.mark.parametrize("kind", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool_over_small_planes_is_a_warp_per_channel(kind, tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = nn.global_pool(kind, (2, 16, 7, 7), "float32")  # few outputs: a thread each would leave the GPU idle
    s = default_schedule(f)
    same_on_cpu(f, s)
    prog = compile_gpu(s)
    assert [(k.launch.grid, k.launch.block) for k in prog.kernels] == [((32, 1, 1), (32, 1, 1))]
    check_ptx(prog, tmp_path)
    # one warp a block: its tree waits for that warp only
    assert "bar.sync" not in prog.ptx and prog.ptx.count("bar.warp.sync") == 6
    many = compile_gpu(default_schedule(nn.global_pool(kind, (128, 512, 7, 7), "float32")))
    assert [(k.launch.grid, k.launch.block) for k in many.kernels] == [((256, 1, 1), (256, 1, 1))]  # a thread each


def test_global_pool_over_a_large_plane_is_a_block_per_channel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for kind in ("GlobalAveragePool", "GlobalMaxPool"):
        f = nn.global_pool(kind, (2, 16, 14, 14), "float32")
        s = default_schedule(f)
        same_on_cpu(f, s, rtol=1e-5, atol=1e-5)
        prog = compile_gpu(s)
        assert [(k.launch.grid, k.launch.block, k.shared_bytes) for k in prog.kernels] == [((32, 1, 1), (256, 1, 1),
                                                                                             1024)]
        assert prog.scratch == ()
        check_ptx(prog, tmp_path)


def test_maxpool_indices_compile() -> None:
    prog = compile_gpu(default_schedule(nn.pool2d("MaxPool", (1, 4, 12, 12), "float32", (2, 2), (2, 2),
                                                  outputs=(0, 1))))
    assert [p[2] for p in prog.params] == ["float32", "float32", "int64"] and prog.scratch == ()


def test_declarations_nvptx_can_lower_pass_and_library_calls_do_not() -> None:
    """LLVM's own optimizations introduce saturating arithmetic (``max(2y - 1, 0)`` of a
    pooling window becomes ``llvm.usub.sat``): it lowers on NVPTX; a libm call does not."""
    from vta.compiler.cpu.codegen import CodegenError
    from vta.compiler.gpu.codegen import check_declarations
    from vta.compiler.gpu.ptx import emit_ptx

    ir = ('target triple = "nvptx64-nvidia-cuda"\n'
          "declare i64 @llvm.usub.sat.i64(i64, i64)\n"
          "define ptx_kernel void @k(ptr addrspace(1) %p, i64 %a) {\n"
          "  %r = call i64 @llvm.usub.sat.i64(i64 %a, i64 1)\n"
          "  store i64 %r, ptr addrspace(1) %p\n  ret void\n}\n")
    assert ".entry k" in emit_ptx(ir)
    with pytest.raises(CodegenError, match="calls expf, which has no NVPTX lowering"):
        check_declarations("declare float @expf(float)\n")
