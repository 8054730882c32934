"""Generates the tables of docs/isa.md from the declarations, so the document
cannot drift from the encoder. ``python -m vta.isa.docgen docs/isa.md``
rewrites the generated section in place; ``--check`` only compares."""

from __future__ import annotations

import sys
from pathlib import Path

from .config import PRESETS, Config
from .layout import insn_layouts, uop_layout
from .spec import DEP_QUEUES, AluOp, ErrorCode, MemType, Module, Opcode

BEGIN = "<!-- BEGIN GENERATED TABLES (python -m vta.isa.docgen docs/isa.md) -->"
END = "<!-- END GENERATED TABLES -->"


def _enum_table(title: str, enum: type) -> list[str]:
    rows = [f"**{title}**", "", "| name | value |", "|---|---|"]
    rows += [f"| {e.name} | {int(e)} |" for e in enum]
    return rows + [""]


def tables(config: Config | None = None) -> str:
    """The generated section for ``config`` (default: the default preset)."""
    c = config or PRESETS["default"]
    lines = [BEGIN, "", f"Bit positions for the default config `{c.name}`; other configs place the same fields "
             "in the same order with widths derived from their buffer depths (`vta config show --config X` "
             "prints them).", ""]
    lines += _enum_table("Opcodes", Opcode) + _enum_table("Memory types", MemType) + _enum_table("ALU operations",
                                                                                               AluOp)
    lines += _enum_table("Error codes", ErrorCode)
    layouts = {**insn_layouts(c), "uop": uop_layout(c)}
    names = {"mem": "LOAD and STORE", "gemm": "GEMM", "alu": "ALU", "finish": "FINISH", "uop": "Micro-op"}
    for kind, layout in layouts.items():
        lines += [f"**{names[kind]}** ({layout.bits} bits)", "", "| bits | field | width | meaning |", "|---|---|---|---|"]
        for f in layout:
            sign = ", signed" if f.signed else ""
            lines.append(f"| {f.offset + f.width - 1}:{f.offset} | `{f.name}` | {f.width}{sign} | {f.doc} |")
        lines.append("")
    lines += ["**Dependency flags by module** (— : the flag must be 0)", "",
              "| module | pop_prev | pop_next | push_prev | push_next |", "|---|---|---|---|---|"]
    for m in Module:
        q = DEP_QUEUES[m]
        cells = [q[f].name if q[f] is not None else "—" for f in ("pop_prev", "pop_next", "push_prev", "push_next")]
        lines.append(f"| {m.name.lower()} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", END])


def splice(text: str, config: Config | None = None) -> str:
    """``text`` with its generated section replaced by a fresh one."""
    a, b = text.index(BEGIN), text.index(END) + len(END)
    return text[:a] + tables(config) + text[b:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if not a.startswith("--")]
    path = Path(paths[0] if paths else "docs/isa.md")
    text = path.read_text()
    new = splice(text)
    if check:
        if new != text:
            print(f"{path}: generated tables are out of date; run python -m vta.isa.docgen {path}")
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
