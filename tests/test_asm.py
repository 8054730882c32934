"""Assembler and disassembler: exact round trips, and errors with line numbers."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vta.isa import (
    PRESETS, AluOp, AsmError, Insn, MemType, Module, Opcode, Program, assemble, assemble_file, check_insn,
    disassemble, encode_insns, format_insn, insn_layouts, parse_insn,
)
from vta.isa.spec import DEP_QUEUES, LAYOUT_OF_OPCODE, LOAD_MEMTYPES, STORE_MEMTYPES
from vta.sim.randprog import random_program

EXAMPLES = Path(__file__).parent.parent / "examples"
CONFIGS = [PRESETS[n] for n in ("default", "tiny", "batch4", "nonsquare")]


@st.composite
def valid_insn(draw, config):
    """Any instruction that passes the static checks (fields drawn over their whole ranges)."""
    op = draw(st.sampled_from([Opcode.LOAD, Opcode.STORE, Opcode.GEMM, Opcode.ALU]))
    layout = insn_layouts(config)[LAYOUT_OF_OPCODE[op]]
    v = {f.name: draw(st.integers(f.lo, f.hi)) for f in layout.fields[1:]}
    if op == Opcode.LOAD:
        v["memory_type"] = draw(st.sampled_from(LOAD_MEMTYPES))
    if op == Opcode.STORE:
        v["memory_type"] = draw(st.sampled_from(STORE_MEMTYPES))
    if op == Opcode.STORE or v.get("memory_type") == MemType.UOP:
        for k in ("y_pad_top", "y_pad_bottom", "x_pad_left", "x_pad_right", "pad_value"):
            v[k] = 0
    if op == Opcode.ALU:
        v["alu_op"] = draw(st.sampled_from(list(AluOp)))
        if not v["use_imm"]:
            v["imm"] = 0
    if op in (Opcode.GEMM, Opcode.ALU):
        end = draw(st.integers(0, config.uop_depth))
        v["uop_end"], v["uop_bgn"] = end, draw(st.integers(0, end))
    insn = Insn(op, **v)
    for flag, q in DEP_QUEUES[insn.module].items():
        if q is None:
            setattr(insn, flag, 0)
    assert check_insn(insn, config) is None
    return insn


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_insns_round_trip(config, data) -> None:
    insns = data.draw(st.lists(valid_insn(config), max_size=30)) + [Insn.finish()]
    prog = Program(config, insns)
    text = disassemble(prog)
    back = assemble(text)
    assert back.insns == insns
    assert np.array_equal(encode_insns(back.insns, config), encode_insns(insns, config))
    assert disassemble(back) == text


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("seed", range(5))
def test_random_programs_round_trip(config, seed: int) -> None:
    prog = random_program(config, seed)
    back = assemble(disassemble(prog))
    assert back.insns == prog.insns
    assert np.array_equal(back.dram_image(), prog.dram_image())
    assert [s.name for s in back.outputs()] == [s.name for s in prog.outputs()]


def test_file_round_trip(tmp_path) -> None:
    prog = random_program(PRESETS["tiny"], 7)
    prog.save(tmp_path / "p.vtaprog")
    back = Program.load(tmp_path / "p.vtaprog")
    assert back.insns == prog.insns and back.config == prog.config
    assert np.array_equal(back.dram_image(), prog.dram_image())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.s")), ids=lambda p: p.name)
def test_examples_assemble_and_round_trip(path: Path) -> None:
    prog = assemble_file(path)
    assert disassemble(assemble(disassemble(prog))) == disassemble(prog)


def test_syntax_details() -> None:
    prog = assemble("""
        .config tiny
        .data A int8 2x4 @0x40
          1, 2, 3, 4
          -1 -2 -3 -4
        .data K uop 1 @0x80
          3 2 1
        load inp sram=0 dram=A+1 y=1 x=1 pad=0,0,1,2 padval=-7 push=next   ; comment
        load uop sram=5 dram=K y=1 x=1
        gemm reset uops=5:6 iter=2,3 dst=4,1 pop=prev
        alu shr uops=5:6 imm=-3 push=next
        store acc sram=0 dram=0x10 y=1 x=2 pop=prev
        finish
    """)
    a, u, g, alu, st_, fin = prog.insns
    assert a.dram_base == 0x40 // 4 + 1 and a.x_stride == 1 and a.pad_value == -7
    assert (a.y_pad_top, a.y_pad_bottom, a.x_pad_left, a.x_pad_right) == (0, 0, 1, 2)
    assert u.module == Module.COMPUTE and u.memory_type == MemType.UOP
    assert (g.reset, g.uop_bgn, g.uop_end, g.iter_out, g.iter_in, g.dst_factor_out) == (1, 5, 6, 2, 3, 4)
    assert alu.use_imm == 1 and alu.imm == -3 and alu.alu_op == AluOp.SHR
    assert st_.memory_type == MemType.ACC and st_.pop_prev == 1
    assert prog.segment("K").values.tolist() == [[3, 2, 1]]
    assert format_insn(parse_insn("alu min uops=0:1 imm=0")) == "alu min uops=0:1 iter=1,1 dst=0,0 src=0,0 imm=0"


@pytest.mark.parametrize("text, line, needle", [
    ("finsh", 1, "unknown instruction 'finsh'"),
    ("\n\nload inp sram=0 y=1 x=1\nfinish", 3, "missing dram="),
    ("load inp sram=0 dram=B y=1 x=1\nfinish", 1, "not a number or a defined segment"),
    ("load qq sram=0 dram=0 y=1 x=1", 1, "unknown memory type 'qq'"),
    ("alu foo uops=0:1\nfinish", 1, "unknown ALU operation 'foo'"),
    ("gemm uops=0:1 imm=3\nfinish", 1, "unknown operand 'imm'"),
    ("gemm uops=0-1\nfinish", 1, "uops= takes N:N"),
    ("gemm uops=0:1 iter=x,2\nfinish", 1, "'x' is not an integer"),
    ("gemm uops=0:1 iter=20000,1\nfinish", 1, "iter_out"),
    ("load inp sram=0 dram=0 y=1 x=1 pop=prev\nfinish", 1, "pop_prev is set on a load-module"),
    ("store out sram=0 dram=0 y=1 x=1 pad=1,0,0,0\nfinish", 1, "STORE takes no padding"),
    ("gemm uops=0:1", 1, "must end with FINISH"),
    ("finish\nfinish", 1, "FINISH before the end"),
    (".config nope", 1, "not a preset"),
    (".config tiny batch=3", 1, "batch"),
    (".data A int8 4 @0\n 1 2 3\nfinish", 1, "expects 4 values, found 3"),
    (".data A int9 4 @0 zeros\nfinish", 1, "dtype 'int9'"),
    (".data A int8 4 @0 zeros\n.data A int8 4 @8 zeros\nfinish", 2, "already defined at line 1"),
    (".data A int8 4 @0 zeros\n.data B int8 4 @2 zeros\nfinish", 3, "overlaps"),
    (".data A int8 1 @0\n 300\nfinish", 1, "do not fit int8"),
    ("1 2 3", 1, "data values outside a .data section"),
    (".bogus", 1, "unknown directive"),
])
def test_errors_name_the_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(AsmError) as e:
        assemble(text, source="t.s")
    assert e.value.line == line, str(e.value)
    assert f"t.s:{line}:" in str(e.value)
    assert needle in str(e.value)


@pytest.mark.parametrize("change, needle", [
    ({"format_version": 9}, "format version 9 is not 1"),
    ({"config": {"batch": 3}}, "config field 'batch'"),
    ({"n_insns": 3}, "insns.bin holds"),
    ({"segments": [{"name": "A"}]}, "malformed program file (KeyError"),
    ({"insn_addr": 0}, "overlaps '<instructions>'"),
])
def test_malformed_program_files(tmp_path, change: dict, needle: str) -> None:
    import json
    import zipfile

    from vta.isa import ProgramError

    good = tmp_path / "good.vtaprog"
    assemble_file(EXAMPLES / "gemm_relu.s").save(good)
    bad = tmp_path / "bad.vtaprog"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(bad, "w") as out:
        meta = {**json.loads(z.read("program.json")), **change}
        for name in z.namelist():
            out.writestr(name, json.dumps(meta) if name == "program.json" else z.read(name))
    with pytest.raises(ProgramError) as e:
        Program.load(bad)
    assert str(e.value).startswith(f"{bad}: ") and str(e.value).count(str(bad)) == 1
    assert needle in str(e.value)
