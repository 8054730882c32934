"""The whole core under Verilator runs the same instruction programs as the fsim suites,
and must agree with fsim byte for byte (or report the same error about the same
instruction): every program of tests/test_fsim_semantics.py and the error and deadlock
programs of tests/test_fsim_machine.py, on the fsim configs plus a 256-bit bus.

The tests are the fsim tests themselves, collected here a second time with
`conftest.RtlCheck` enabled, so the two suites cannot drift apart.
"""

from __future__ import annotations

import pytest
from conftest import CONFIG_NAMES, RTL_PROBLEM, RtlCheck

from vta.isa import PRESETS, Config

from test_fsim_semantics import *  # noqa: F401,F403  (collected again, on the RTL)
from test_fsim_machine import (  # noqa: F401  (the error and deadlock programs)
    test_deadlock_after_finish_leaves_work,
    test_deadlock_on_full_command_queue,
    test_deadlock_on_full_token_queue,
    test_deadlock_reports_each_module_quickly,
    test_dram_bounds,
    test_sram_bounds,
)




@pytest.fixture(params=[*CONFIG_NAMES, "bus256"])
def cfg(request: pytest.FixtureRequest) -> Config:
    return PRESETS[request.param]


@pytest.fixture(autouse=True)
def _on_rtl(monkeypatch: pytest.MonkeyPatch) -> None:
    if RTL_PROBLEM is not None:
        pytest.skip(f"cannot build the RTL simulation: {RTL_PROBLEM}")
    monkeypatch.setattr(RtlCheck, "enabled", True)
