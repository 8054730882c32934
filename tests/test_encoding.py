"""Encoder/decoder: round trips on random instructions and micro-ops, range errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vta.isa import (
    PRESETS, EncodingError, Insn, Opcode, decode_insns, decode_uops, encode_insns, encode_uops, insn_columns,
    insn_layouts, uop_layout,
)
from vta.isa.spec import LAYOUT_OF_OPCODE

CONFIGS = [PRESETS[n] for n in ("default", "tiny", "batch4", "nonsquare", "bus256")]


@st.composite
def insn_strategy(draw, config):
    op = draw(st.sampled_from(list(Opcode)))
    layout = insn_layouts(config)[LAYOUT_OF_OPCODE[op]]
    values = {f.name: draw(st.integers(f.lo, f.hi)) for f in layout.fields[1:]}
    return Insn(op, **values)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_insn_round_trip(config, data) -> None:
    insns = data.draw(st.lists(insn_strategy(config), min_size=1, max_size=40))
    raw = encode_insns(insns, config)
    assert raw.shape == (len(insns), 16)
    assert decode_insns(raw, config) == insns
    assert decode_insns(raw.tobytes(), config) == insns


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_uop_round_trip(config, data) -> None:
    lay = uop_layout(config)
    n = data.draw(st.integers(0, 50))
    cols = {f.name: data.draw(st.lists(st.integers(f.lo, f.hi), min_size=n, max_size=n)) for f in lay}
    raw = encode_uops(cols["dst_idx"], cols["src_idx"], cols["wgt_idx"], config)
    assert raw.shape == (n, config.uop_bits // 8)
    back = decode_uops(raw, config)
    for k, v in cols.items():
        assert back[k].tolist() == v


def test_known_bits_default() -> None:
    """A hand-checked encoding: GEMM opcode 2 in bits 0-2, reset at bit 7, uop_bgn from bit 8."""
    c = PRESETS["default"]
    raw = encode_insns([Insn.gemm(5, 6, reset=True, push_next=1)], c)
    lo = int.from_bytes(raw[0, :8].tobytes(), "little")
    assert lo & 0b111 == 2
    assert (lo >> 6) & 1 == 1  # push_next
    assert (lo >> 7) & 1 == 1  # reset
    assert (lo >> 8) & 0x1FFF == 5
    assert (lo >> 21) & 0x3FFF == 6


def test_signed_fields() -> None:
    c = PRESETS["default"]
    insn = Insn.alu(3, 0, 1, imm=-5)
    assert decode_insns(encode_insns([insn], c), c)[0].imm == -5
    ld = Insn.load(2, 0, 0, 1, 1, pad=(1, 0, 0, 0), pad_value=-128)
    assert decode_insns(encode_insns([ld], c), c)[0].pad_value == -128


def test_out_of_range_names_field_and_index() -> None:
    c = PRESETS["tiny"]
    insns = [Insn.finish(), Insn.gemm(0, 1), Insn.gemm(0, 1, dst=(0, c.acc_depth))]
    with pytest.raises(EncodingError, match=r"instruction 2: gemm field 'dst_factor_in' = 256 is outside \[0, 255\]"):
        encode_insns(insns, c)
    with pytest.raises(EncodingError, match="imm"):
        encode_insns([Insn.alu(0, 0, 1, imm=1 << 15)], c)
    with pytest.raises(EncodingError, match="micro-op 1: uop field 'dst_idx'"):
        encode_uops([0, 256], [0, 0], [0, 0], c)


def test_unknown_opcode() -> None:
    c = PRESETS["default"]
    raw = encode_insns([Insn.finish(), Insn.finish()], c)
    raw[1, 0] = (int(raw[1, 0]) & 0xF8) | 6
    with pytest.raises(EncodingError, match="instruction 1: unknown opcode 6"):
        decode_insns(raw, c)


def test_unknown_field() -> None:
    with pytest.raises(EncodingError, match="GEMM has no field 'imm'"):
        Insn(Opcode.GEMM, imm=3)
    with pytest.raises(AttributeError):
        Insn.finish().sram_base = 1


def test_columns_are_vectorized_views() -> None:
    c = PRESETS["default"]
    insns = [Insn.load(2, i, 10 * i, 1, 16) for i in range(100)] + [Insn.finish()]
    cols = insn_columns(encode_insns(insns, c), c)
    assert cols["sram_base"][:100].tolist() == list(range(100))
    assert cols["dram_base"][:100].tolist() == [10 * i for i in range(100)]
    assert isinstance(cols["opcode"], np.ndarray)
