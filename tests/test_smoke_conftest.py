"""The child-process fixture itself works (plain Python, no reloader)."""

from __future__ import annotations

import pytest


def test_wait_for_sees_output(spawn):
    child = spawn("-c", "print('hi')")
    assert child.wait_for(r"^hi$").group() == "hi"
    assert child.wait_exit() == 0


def test_wait_for_timeout_reports_the_log(spawn):
    code = "import time; print('started'); time.sleep(60)"
    child = spawn("-c", code)
    child.wait_for("^started$")
    with pytest.raises(AssertionError) as failure:
        child.wait_for("never printed", timeout=0.2)
    report = str(failure.value)
    assert "'never printed' matched 0/1: timed out" in report
    assert "exit code: still running" in report
    assert "started" in report
    assert code in report
