"""The restart itself: hooks, flushing, a clean process, the fallbacks.

Each test runs a real program that restarts itself for real (``os.execv``,
or the spawn fallback), and checks what the next run sees. The sections
follow the steps of "The restart" in SPEC.md; step 4, the command line in
every launch mode, is tests/test_modes.py.
"""

from __future__ import annotations

import re
import shlex
import sys
import types

import pytest
from conftest import ready_code, write

# A run counter that every program can keep, whatever its launch mode: the
# environment survives execv and is inherited by the spawn fallback.
RUN_CODE = """
import os as _os

run = int(_os.environ.get("TEST_RUN", "0")) + 1
_os.environ["TEST_RUN"] = str(run)
"""


def program(body: str) -> str:
    """``body`` with ``run`` defined (1, 2, ... across restarts) before it."""
    return RUN_CODE + body


def lines(text: str, prefix: str) -> list[str]:
    """The lines of ``text`` that start with ``prefix``, in order."""
    return [line for line in text.splitlines() if line.startswith(prefix)]


# ---------------------------------------------------------------------------
# The public names.


def test_public_names_are_exactly_all():
    import reloader

    assert reloader.__all__ == [
        "start",
        "stop",
        "wait",
        "watch",
        "ignore",
        "add_reload_hook",
        "restart",
        "set_close_exec",
        "listening_socket",
        "main",
    ]
    public = {
        name
        for name, value in vars(reloader).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"  # annotations
    }
    assert public == set(reloader.__all__)


# ---------------------------------------------------------------------------
# 1. Reload hooks.

HOOKS_PROGRAM = """
import sys
import threading

import helper  # watched: the test edits it to trigger the "watcher" restart
import reloader

def hook(name, fail=False):
    def fn():
        thread = threading.current_thread().name
        print(f"hook {name} run={run} thread={thread}", flush=True)
        if fail:
            raise RuntimeError(f"hook {name} failed")
    return fn

reloader.add_reload_hook(hook("a"))
reloader.add_reload_hook(hook("b", fail=True))
reloader.add_reload_hook(hook("c"))
"""

HOOKS_TRIGGER = {
    "main": "reloader.restart()\n",
    "worker": (
        "worker = threading.Thread(target=reloader.restart, name='worker')\n"
        "worker.start()\n"
        "worker.join()\n"
    ),
    "watcher": (
        "reloader.start(check_time=50)\nthreading.Event().wait()\n"  # edit
    ),
}


@pytest.mark.parametrize("trigger", HOOKS_TRIGGER)
def test_hooks_run_in_order_guarded_on_the_restarting_thread(spawn, tmp_path, trigger):
    write(tmp_path / "helper.py", "")
    body = HOOKS_PROGRAM + ready_code() + "if run == 2:\n    sys.exit(0)\n"
    write(tmp_path / "app.py", program(body + HOOKS_TRIGGER[trigger]))
    child = spawn("app.py")
    child.wait_for(r"^ready run=1 ")
    if trigger == "watcher":
        write(tmp_path / "helper.py", "# edited\n")
    assert child.wait_exit() == 0
    output = child.output()
    thread = {"main": "MainThread", "worker": "worker", "watcher": "reloader"}[trigger]
    assert lines(output, "hook ") == [
        f"hook a run=1 thread={thread}",
        f"hook b run=1 thread={thread}",
        f"hook c run=1 thread={thread}",
    ]
    assert re.search(r"^reload hook .* failed; restarting anyway$", output, re.M)
    assert re.search(r"^RuntimeError: hook b failed$", output, re.M)
    assert len(lines(output, "ready run=2 ")) == 1


# ---------------------------------------------------------------------------
# 2. Nothing written is lost.

OUTPUT_PROGRAM = """
import logging
import logging.handlers
import sys

import reloader

def buffered_log(logger, path):
    # A MemoryHandler keeps its records until it is flushed or full.
    target = logging.FileHandler(path)
    memory = logging.handlers.MemoryHandler(1000, logging.CRITICAL, target)
    logger.addHandler(memory)
    logger.setLevel(logging.INFO)
    return logger

if run == 1:
    for i in range(2000):
        print(f"line {i}")
    sys.stderr.write("stderr tail without newline")
    app = buffered_log(logging.getLogger("app"), "app.log")
    app.propagate = False
    root = buffered_log(logging.getLogger(), "root.log")
    for i in range(3):
        app.info("app record %d", i)
        root.info("root record %d", i)
    reloader.restart()
    print("restart returned")
else:
    sys.stderr.write("\\n")
    print(f"run {run} done")
"""


@pytest.mark.parametrize("sink", ["file", "pipe"])
def test_nothing_written_before_a_restart_is_lost(spawn, tmp_path, sink):
    write(tmp_path / "app.py", program(OUTPUT_PROGRAM))
    env = {"PYTHONUNBUFFERED": None}  # the flush is under test
    if sink == "file":
        child = spawn("app.py", env=env)
    else:  # stdout and stderr both into one pipe, read by cat
        command = f"{shlex.quote(sys.executable)} app.py 2>&1 | cat"
        child = spawn("-c", command, env=env, python="/bin/sh")
    assert child.wait_exit() == 0
    expected = "".join(f"line {i}\n" for i in range(2000))
    expected += "stderr tail without newline\nrun 2 done\n"
    assert child.output() == expected
    app_log = "".join(f"app record {i}\n" for i in range(3))
    assert (tmp_path / "app.log").read_text() == app_log
    root_log = "".join(f"root record {i}\n" for i in range(3))
    assert (tmp_path / "root.log").read_text() == root_log


# ---------------------------------------------------------------------------
# 3. A clean process: no alarm, no leaked descriptor, terminal echo on.

ALARM_PROGRAM = """
import signal
import time

import reloader

ALARM = 2.0
if run == 1:
    _os.environ["TEST_ALARM_AT"] = repr(time.time() + ALARM)
    signal.setitimer(signal.ITIMER_REAL, ALARM)
    reloader.restart()
    print("restart returned")
else:
    print(f"run={run} pending={signal.getitimer(signal.ITIMER_REAL)}", flush=True)
    # Positive proof: still alive well after the old alarm was due.
    due = float(_os.environ["TEST_ALARM_AT"]) + 0.5
    while time.time() < due:
        time.sleep(due - time.time())
    print("survived", flush=True)
"""


def test_pending_alarm_is_cleared(spawn, tmp_path):
    write(tmp_path / "app.py", program(ALARM_PROGRAM))
    child = spawn("app.py")
    assert child.wait_exit() == 0
    assert child.output() == "run=2 pending=(0.0, 0.0)\nsurvived\n"


FDS_PROGRAM = """
import os

import reloader

def open_fds():
    return sorted(int(name) for name in os.listdir("/proc/self/fd"))

print(f"run={run} fds={open_fds()}")
for fd in os.environ.get("TEST_FDS", "").split():
    try:
        os.fstat(int(fd))
    except OSError:
        print(f"run={run} fd {fd} closed")
    else:
        print(f"run={run} fd {fd} open")
if run < 3:
    kept = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(kept, True)  # deliberately inheritable
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    os.environ["TEST_FDS"] = f"{kept} {write_end}"
    reloader.restart()
    print("restart returned")
"""


def test_descriptors_do_not_leak_into_the_new_process(spawn, tmp_path):
    write(tmp_path / "app.py", program(FDS_PROGRAM))
    child = spawn("app.py")
    assert child.wait_exit() == 0
    output = child.output()
    fds = [line.split(" ", 1)[1] for line in lines(output, "run=") if "fds=" in line]
    assert len(fds) == 3
    assert fds[0] == fds[1] == fds[2]  # the same descriptors in every run
    checks = [line for line in lines(output, "run=") if " fd " in line]
    assert len(checks) == 4
    assert all(line.endswith(" closed") for line in checks), output


ECHO_PROGRAM = """
import os
import sys
import termios

import reloader

def echo():
    return bool(termios.tcgetattr(0)[3] & termios.ECHO)

print(f"run={run} isatty={os.isatty(0)} echo={echo()}")
if run == 1:
    attributes = termios.tcgetattr(0)
    attributes[3] &= ~termios.ECHO  # as getpass or pdb may leave it
    termios.tcsetattr(0, termios.TCSANOW, attributes)
    print(f"run={run} echo={echo()}")
    reloader.restart()
    print("restart returned")
"""

# Runs the program with a pseudo-terminal as its standard input, holding the
# master side open for as long as the program runs.
PTY_LAUNCHER = """
import pty
import subprocess
import sys

master, slave = pty.openpty()
sys.exit(subprocess.call([sys.executable, "app.py"], stdin=slave))
"""


def test_terminal_echo_is_restored(spawn, tmp_path):
    write(tmp_path / "app.py", program(ECHO_PROGRAM))
    write(tmp_path / "launcher.py", PTY_LAUNCHER)
    child = spawn("launcher.py")
    assert child.wait_exit() == 0
    assert child.output() == (
        "run=1 isatty=True echo=True\nrun=1 echo=False\nrun=2 isatty=True echo=True\n"
    )


# ---------------------------------------------------------------------------
# 5. The spawn fallback, where execv refuses (macOS with threads; Windows).

SPAWN_PROGRAM = """
import errno
import os
import sys
import threading

import reloader

print(f"run={run} pid={os.getpid()} ppid={os.getppid()}", flush=True)
if run == 1:
    def execv(path, args):
        raise OSError(errno.ENOTSUP, "execv refused: other threads exist")

    os.execv = execv  # what macOS does with threads running
    threading.Thread(target=threading.Event().wait, daemon=True).start()
    reloader.restart()
    print("restart returned")
else:
    sys.exit(7)
"""


def test_spawn_fallback_exits_with_the_new_process_status(spawn, tmp_path):
    write(tmp_path / "app.py", program(SPAWN_PROGRAM))
    child = spawn("app.py")
    assert child.wait_exit() == 7
    output = child.output()
    runs = re.findall(r"^run=(\d) pid=(\d+) ppid=(\d+)$", output, re.M)
    assert [run for run, _, _ in runs] == ["1", "2"], output
    (_, pid1, _), (_, pid2, ppid2) = runs
    assert int(pid1) == child.pid
    assert int(pid2) != child.pid
    assert int(ppid2) == child.pid  # the first run waited for the second
    assert "restart returned" not in output


# ---------------------------------------------------------------------------
# 6. A restart that cannot happen is logged and the process goes on.

UNRESTARTABLE_PROGRAM = """
import sys
import threading

import helper  # watched: the test edits it
import reloader

real_executable = sys.executable
calls = 0

def hook():
    # Each restart attempt: the first fails, the second may go ahead.
    global calls
    calls += 1
    print(f"attempt {calls}", flush=True)
    if calls == 2:
        sys.executable = real_executable

if run == 1:
    reloader.add_reload_hook(hook)
    sys.executable = "/nonexistent/python"
reloader.start(check_time=50)
"""

UNRESTARTABLE_TRIGGER = {
    "restart()": "if run == 1:\n    reloader.restart()\n    print('still running')\n",
    "edit": "",
}


@pytest.mark.parametrize("trigger", UNRESTARTABLE_TRIGGER)
def test_failed_reexecution_is_logged_and_watching_goes_on(spawn, tmp_path, trigger):
    write(tmp_path / "helper.py", "")
    body = UNRESTARTABLE_PROGRAM + ready_code() + UNRESTARTABLE_TRIGGER[trigger]
    body += "if run == 2:\n    sys.exit(0)\nthreading.Event().wait()\n"
    write(tmp_path / "app.py", program(body))
    child = spawn("app.py")
    child.wait_for(r"^ready run=1 ")
    if trigger == "edit":
        write(tmp_path / "helper.py", "# edit 1\n")
    else:
        child.wait_for(r"^still running$")
    child.wait_for(r"^cannot restart /nonexistent/python: .*still running and watching")
    child.wait_for(r"^attempt 1$")
    write(tmp_path / "helper.py", "# the second edit\n")
    assert child.wait_exit() == 0
    output = child.output()
    assert lines(output, "attempt ") == ["attempt 1", "attempt 2"]
    assert len(lines(output, "ready run=2 ")) == 1
