"""What the command line tells its user: help, version, option errors, -q.

Each test runs the real ``python -m reloader`` as a child process on a real
program in ``tmp_path`` (the ``reloader`` command itself is tried on an
installed wheel in ``tests/test_install.py``).
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import ready_code, write

import reloader

WRAPPER = ("-m", "reloader", "--check-time", "50")


def source(text: str) -> str:
    """Dedent ``text``; a line ``READY`` becomes the ready_code() handshake."""
    return textwrap.dedent(text).replace("READY\n", ready_code())


def finished(spawn, *args: str) -> tuple[int, str]:
    """Run ``python *args`` to its end; return its status and output."""
    child = spawn(*args)
    status = child.wait_exit()
    return status, child.output()


def test_help_shows_usage_examples_what_is_watched_and_where_to_read_more(spawn):
    status, output = finished(spawn, "-m", "reloader", "--help")
    assert status == 0, output
    assert output.startswith("usage: python -m reloader [options] -m module"), output
    assert "\nexamples:\n" in output
    assert "\n  python -m reloader app.py --port 8000\n" in output
    assert "\n  python -m reloader --watch templates --watch .env app.py\n" in output
    for words in ("What is watched", "*.swp", "__pycache__", ".git", "README"):
        assert words in output


def test_version_names_the_program(spawn):
    status, output = finished(spawn, "-m", "reloader", "--version")
    assert (status, output) == (0, f"reloader {reloader.__version__}\n")


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan"])
def test_a_bad_check_time_is_reported_under_the_option_name(spawn, value):
    status, output = finished(spawn, "-m", "reloader", "--check-time", value, "x.py")
    assert status == 2, output
    assert output.startswith("usage: python -m reloader "), output
    expected = (
        "python -m reloader: error: argument --check-time: must be a positive"
        f" number of milliseconds, not {value}\n"
    )
    assert output.endswith(expected), output
    assert "check_time" not in output


def test_a_check_time_that_is_not_a_number_is_reported_under_the_option_name(
    spawn,
):
    status, output = finished(spawn, "-m", "reloader", "--check-time", "x", "x.py")
    assert status == 2, output
    assert "error: argument --check-time: invalid float value: 'x'" in output


def test_a_missing_watch_path_is_warned_about_and_watched_for(spawn, tmp_path):
    write(
        tmp_path / "app.py",
        source(
            """
            import time
            READY
            while True:
                time.sleep(0.05)
            """
        ),
    )
    child = spawn(*WRAPPER, "--watch", "conf/app.toml", "app.py")
    child.wait_for(r"^ready run=1 ")
    warning = (
        "[reloader] --watch conf/app.toml: no such file or folder;"
        " watching for it to appear"
    )
    assert child.output().count(warning) == 1, child.output()
    write(tmp_path / "conf" / "app.toml", "debug = true\n")
    child.wait_for(r"^ready run=2 ")


def test_quiet_hides_routine_lines_and_reports_failed_runs(spawn, tmp_path):
    # Run 1 ends well, run 2 exits with status 3, run 3 raises: under -q only
    # the two failures are reported.
    app = tmp_path / "app.py"
    program = source(
        """
        import sys
        READY
        sys.exit(0)
        """
    )
    write(app, program)
    child = spawn(*WRAPPER, "-q", "app.py")
    child.wait_for(r"^ready run=1 ")
    write(app, program.replace("sys.exit(0)", "sys.exit(300 - 297)"))
    child.wait_for(r"^\[reloader\] app\.py exited with status 3$")
    write(app, program.replace("sys.exit(0)", "raise ValueError('no')"))
    child.wait_for(r"^\[reloader\] app\.py raised ValueError$")
    child.wait_for(r"^ValueError: no$")
    output = child.output()
    reloader_lines = [line for line in output.splitlines() if "[reloader]" in line]
    assert reloader_lines == [
        "[reloader] app.py exited with status 3",
        "[reloader] app.py raised ValueError",
    ], output


def test_without_quiet_a_clean_exit_is_reported_too(spawn, tmp_path):
    write(tmp_path / "app.py", source("READY\n"))
    child = spawn(*WRAPPER, "app.py")
    child.wait_for(r"^ready run=1 ")
    child.wait_for(r"^\[reloader\] app\.py finished$")
    child.wait_for(r"^\[reloader\] waiting for a change$")
