"""The ONNX backend node tests (generated in memory by ``onnx.backend.test``) against the
graph compiler with the CPU backend. Every test outside the expected-failure list
(tests/onnx_conformance_xfail.txt: unsupported operators, types and attributes, each
failing with an error that says so) must pass, and every listed one must still fail, so
the list stays exact. `python tests/test_onnx_conformance.py` prints the counts and
rewrites the list."""

from __future__ import annotations

import sys
import unittest
import warnings
from pathlib import Path

XFAIL = Path(__file__).with_name("onnx_conformance_xfail.txt")


def _suite() -> unittest.TestSuite:
    import onnx.backend.test
    from vta.onnx_backend import VtaBackend

    bt = onnx.backend.test.BackendTest(VtaBackend, __name__)
    bt.include(r"^test_.*_cpu$")
    bt.exclude(r"_expanded")
    suite = unittest.TestSuite()
    for name, case in bt.test_cases.items():
        if name == "OnnxBackendNodeModelTest":
            suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    return suite


def run_conformance() -> tuple[list[str], dict[str, str], int]:
    """(passed, failed with the last line of their error, skipped)."""
    import io

    with warnings.catch_warnings():  # the onnx package's own case generators divide by zero on purpose
        warnings.simplefilter("ignore")
        suite = _suite()
        names = [t.id().rsplit(".", 1)[-1] for t in _iter(suite)]  # before running: a suite forgets its tests
        res = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    failed = {t.id().rsplit(".", 1)[-1]: tb.strip().splitlines()[-1] for t, tb in res.failures + res.errors}
    skipped = {t.id().rsplit(".", 1)[-1] for t, _ in res.skipped}
    passed = [n for n in names if n not in failed and n not in skipped]
    return passed, failed, len(skipped)


def _iter(suite: unittest.TestSuite):  # type: ignore[no-untyped-def]
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _iter(t)
        else:
            yield t


def test_onnx_node_conformance() -> None:
    passed, failed, _ = run_conformance()
    expected = {line.split("\t")[0] for line in XFAIL.read_text().splitlines() if line and not line.startswith("#")}
    wrong = [f"{n}: {failed[n]}" for n in sorted(set(failed) - expected)]
    assert not wrong, f"{len(wrong)} conformance test(s) fail that are not expected to:\n" + "\n".join(wrong[:30])
    now_pass = sorted(expected - set(failed))
    assert not now_pass, f"{len(now_pass)} expected failure(s) now pass; update {XFAIL.name}: {now_pass[:20]}"
    assert len(passed) >= 370
    for line in failed.values():  # an expected failure is a clear refusal, never a wrong number
        assert "Mismatch" not in line and "Not equal" not in line, line


if __name__ == "__main__":
    p, f, s = run_conformance()
    XFAIL.write_text("# ONNX node tests expected to fail (name, then the error), rewritten by running this file\n" +
                     "".join(f"{n}\t{f[n].split('; supported ops')[0][:160]}\n" for n in sorted(f)))
    print(f"passed {len(p)}, expected failures {len(f)}, skipped {s}")
    sys.exit(0)
