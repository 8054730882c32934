"""docs/isa.md against the ISA declaration: generated tables current, every name described."""

from pathlib import Path

import pytest

from vta.isa import AluOp, MemType, Opcode
from vta.isa.docgen import BEGIN, END, splice
from vta.isa.spec import LAYOUT_DECLS, UOP_DECL

DOC = Path(__file__).parent.parent / "docs" / "isa.md"


def test_generated_tables_are_current() -> None:
    text = DOC.read_text()
    assert splice(text) == text, "run: python -m vta.isa.docgen docs/isa.md"


def test_prose_describes_every_name() -> None:
    text = DOC.read_text()
    prose = text[: text.index(BEGIN)] + text[text.index(END):]
    names = {d.name for decls in LAYOUT_DECLS.values() for d in decls} | {d.name for d in UOP_DECL}
    missing = sorted(n for n in names if f"`{n}`" not in prose and n not in prose)
    assert not missing, f"fields not described outside the generated tables: {missing}"
    for e in [*Opcode, *MemType, *AluOp]:
        assert e.name in prose, e.name


def test_readme_mentions_isa_doc() -> None:
    assert "docs/isa.md" in (DOC.parent.parent / "README.md").read_text()


def test_readme_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    text = (DOC.parent.parent / "README.md").read_text()
    examples = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    assert len(examples) >= 3
    runtime, compiler, schedule = {}, {}, {}  # type: ignore[var-annotated]
    exec(compile(examples[0], "README.md (runtime)", "exec"), runtime)
    assert runtime["stats"].gemm_uops == 16
    exec(compile(examples[1], "README.md (compiler)", "exec"), compiler)
    assert compiler["result"].stats.gemm_utilization > 0.8 and compiler["built"].compile_s < 1
    assert "sch.tensorize(n1, gemm_1x16x16)" in capsys.readouterr().out
    exec(compile(examples[2], "README.md (schedule)", "exec"), schedule)
    printed = capsys.readouterr().out
    assert 'with block("A_inp")' in printed and "sch.compute_at('A_inp', j_0)" in printed


def test_ci_runs_the_readme_test_line() -> None:
    root = DOC.parent.parent
    readme = (root / "README.md").read_text().splitlines()
    line = readme[readme.index("# install and run the tests") + 1]
    assert "pytest" in line and "pip install" in line
    assert "# install and run the tests" in (root / ".ci" / "run").read_text()


def test_compiler_doc_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    text = (DOC.parent / "compiler.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(code, "docs/compiler.md", "exec"), {})
    assert 'with block("Y")' in capsys.readouterr().out
