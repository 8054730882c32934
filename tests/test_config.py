"""Config: presets, names, files, validation."""

import json

import pytest

from vta.isa import PRESETS, Config, ConfigError, MemType, insn_layouts, preset, resolve


def test_default_is_vta_default() -> None:
    c = PRESETS["default"]
    assert c.name == "1x16_i8w8a32_15_15_18_17"
    assert (c.inp_depth, c.wgt_depth, c.acc_depth, c.uop_depth) == (2048, 1024, 2048, 8192)
    assert (c.inp_idx_bits, c.wgt_idx_bits, c.acc_idx_bits, c.uop_bits) == (11, 10, 11, 32)
    assert c.elem_bytes(MemType.INP) == 16 and c.elem_bytes(MemType.WGT) == 256
    assert c.elem_bytes(MemType.ACC) == 64 and c.elem_bytes(MemType.OUT) == 16


def test_presets_cover_required_shapes() -> None:
    assert any(c.batch > 1 for c in PRESETS.values())
    assert any(c.block_in != c.block_out for c in PRESETS.values())
    assert PRESETS["bus256"].bus_width == 256


@pytest.mark.parametrize("name", list(PRESETS))
def test_name_round_trip(name: str) -> None:
    c = PRESETS[name]
    assert Config.from_name(c.name) == c
    assert preset(c.name) == c


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_file_round_trip(tmp_path, suffix: str) -> None:
    c = Config(batch=2, block_in=8, block_out=32, out_width=16, clock_mhz=150.0, wgt_buffer_bytes=1 << 17)
    path = tmp_path / f"c{suffix}"
    c.save(path)
    assert Config.load(path) == c
    assert resolve(str(path)) == c


def test_file_preset_with_overrides(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('preset = "tiny"\nbus_width = 128\n')
    c = Config.load(path)
    assert c.block_in == 4 and c.bus_width == 128


@pytest.mark.parametrize("kwargs, field, needle", [
    ({"batch": 3}, "batch", "not one of 1, 2, 4"),
    ({"block_in": 0}, "block_in", "not one of"),
    ({"inp_width": 7}, "inp_width", "4, 8, 16"),
    ({"acc_width": 8}, "acc_width", "16, 32"),
    ({"out_width": 32, "acc_width": 16}, "out_width", "exceeds acc_width"),
    ({"bus_width": 100}, "bus_width", "64, 128, 256, 512"),
    ({"clock_mhz": 0}, "clock_mhz", "1 to 2000"),
    ({"inp_buffer_bytes": 1000}, "inp_buffer_bytes", "power of two"),
    ({"inp_buffer_bytes": 16}, "inp_buffer_bytes", "fewer than 2 entries"),
    ({"batch": 1.5}, "batch", "not an integer"),
    ({"acc_buffer_bytes": 1 << 19}, "buffer sizes", "does not fit in 128 bits"),
])
def test_validation_names_field(kwargs: dict, field: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config(**kwargs)
    assert e.value.field == field
    assert needle in str(e.value)
    assert field in str(e.value)


def test_unknown_file_key(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"batch": 1, "blok_in": 16}))
    with pytest.raises(ConfigError, match="blok_in.*known fields"):
        Config.load(path)


def test_bad_name() -> None:
    with pytest.raises(ConfigError, match="not a preset"):
        preset("huge")


@pytest.mark.parametrize("name", list(PRESETS))
def test_layouts_never_straddle_words(name: str) -> None:
    for layout in insn_layouts(PRESETS[name]).values():
        for f in layout:
            assert f.offset // 64 == (f.offset + f.width - 1) // 64, f
        ends = sorted((f.offset, f.offset + f.width) for f in layout)
        assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:])), "fields overlap"
        assert layout.used_bits <= 128
