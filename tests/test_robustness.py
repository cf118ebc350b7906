"""What must not break the reloader: odd hooks, odd programs, odd hand-overs.

Each test pins a failure that once killed the watcher thread, lost a
change, ended a wait() or leaked an exception out of restart() or
listening_socket(). Each runs a real program that really restarts, and
waits for the positive proof (the next run) with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import child_env, free_port, ready_code, write

import reloader

# A run counter for every program here: the environment survives execv.
RUN_CODE = """\
import os
import sys

run = int(os.environ.get("TEST_RUN", "0")) + 1
os.environ["TEST_RUN"] = str(run)
"""

# The end of a long-running program: run 2 is the proof, then it ends.
RUN_2_ENDS = "if run == 2:\n    sys.exit(0)\n"

# Where a change that must restart the program shows: one deadline for all.
RESTART_TIMEOUT = 10


def program(body: str) -> str:
    """``body`` (dedented) after RUN_CODE; a line ``READY`` is the handshake."""
    return RUN_CODE + textwrap.dedent(body).replace("READY\n", ready_code())


def lines(text: str, prefix: str) -> list[str]:
    """The lines of ``text`` that start with ``prefix``, in order."""
    return [line for line in text.splitlines() if line.startswith(prefix)]


# ---------------------------------------------------------------------------
# A reload hook that calls sys.exit(): logged, and the restart goes on.

EXIT_HOOK_PROGRAM = """\
import threading

import helper  # watched: the test edits it
import reloader


def hook():
    print("hook run=%d thread=%s" % (run, threading.current_thread().name))
    sys.exit(3)


reloader.add_reload_hook(hook)
"""

# What the program does before its handshake, and after it.
EXIT_HOOK_TRIGGER = {
    "restart()": ("", "reloader.restart()\nprint('restart returned')\n"),
    "watcher": ("reloader.start(check_time=50)\n", "threading.Event().wait()\n"),
}


@pytest.mark.parametrize("trigger", EXIT_HOOK_TRIGGER)
def test_hook_calling_sys_exit_does_not_stop_the_restart(spawn, tmp_path, trigger):
    write(tmp_path / "helper.py", "")
    before, after = EXIT_HOOK_TRIGGER[trigger]
    body = EXIT_HOOK_PROGRAM + before + "READY\n" + RUN_2_ENDS + after
    child = spawn(write(tmp_path / "app.py", program(body)))
    child.wait_for(r"^ready run=1 ")
    if trigger == "watcher":
        write(tmp_path / "helper.py", "# edited\n")
    child.wait_for(r"^ready run=2 ", timeout=RESTART_TIMEOUT)
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    thread = "reloader" if trigger == "watcher" else "MainThread"
    assert lines(output, "hook ") == [f"hook run=1 thread={thread}"], output
    failed = r"^reload hook <function hook at 0x\w+> failed; restarting anyway$"
    assert re.search(failed, output, re.MULTILINE), output
    assert re.search(r"^SystemExit: 3$", output, re.MULTILINE), output
    assert "restart returned" not in output


# ---------------------------------------------------------------------------
# The working directory deleted under the program.

DELETED_CWD_PROGRAM = """\
import tempfile
import threading

import helper  # watched: the test edits it
import reloader

reloader.start(check_time=50)
if run == 1:
    # A program working in a temporary folder that it removes (or a
    # `git checkout` that removes it): the restart line's relative path
    # has no working directory to start from.
    os.chdir(tempfile.mkdtemp(dir="."))
    os.rmdir(os.getcwd())
READY
"""


def test_edit_restarts_after_the_working_directory_is_deleted(spawn, tmp_path):
    write(tmp_path / "helper.py", "")
    body = DELETED_CWD_PROGRAM + RUN_2_ENDS + "threading.Event().wait()\n"
    child = spawn(write(tmp_path / "app.py", program(body)))
    child.wait_for(r"^ready run=1 ")
    write(tmp_path / "helper.py", "# edited\n")
    # Run again from the start directory, which still exists.
    child.wait_for(rf"^ready run=2 pid={child.pid}$", timeout=RESTART_TIMEOUT)
    assert child.wait_exit() == 0, child.output()
    # No relative path without a working directory: the absolute one.
    helper = tmp_path.resolve() / "helper.py"
    assert lines(child.output(), "reloader: ") == [
        f"reloader: {helper} modified; restarting"
    ]


# ---------------------------------------------------------------------------
# A change seen while stop() ends the watcher mid-settle.

# As when the program's own start() takes over from the wrapper's: another
# thread calls stop(), then start(), while the watcher is settling a change.
# Made deterministic: the watcher stats every watched file through the os
# module at each scan, and the first stat that shows the edit starts that
# thread and holds the scan until stop() has set the watcher's stop event
# (stop() joins the watcher right after). So the watcher has seen the change
# and is stopped before it can restart for it: only the next watcher can.
STOP_MID_SETTLE_PROGRAM = """\
import threading

import helper  # watched: the test edits it
import reloader

HELPER = helper.__file__
SIZE = os.path.getsize(HELPER)
real_stat = os.stat
real_join = threading.Thread.join
joining = threading.Event()
handed_over = False


def take_over():
    reloader.stop()
    reloader.start(check_time=50)


def join(self, *args, **kwargs):
    if self.name == "reloader":
        joining.set()  # stop() has set the watcher's stop event
    return real_join(self, *args, **kwargs)


def stat(path, *args, **kwargs):
    global handed_over
    result = real_stat(path, *args, **kwargs)
    if path == HELPER and result.st_size != SIZE and not handed_over:
        handed_over = True
        threading.Thread(target=take_over, name="take-over").start()
        if joining.wait(10):
            print("watcher stopped mid-scan", flush=True)
    return result


threading.Thread.join = join
os.stat = stat
reloader.start(check_time=50)
READY
"""


def test_change_seen_by_a_watcher_being_stopped_restarts(spawn, tmp_path):
    write(tmp_path / "helper.py", "")
    body = STOP_MID_SETTLE_PROGRAM + RUN_2_ENDS + "threading.Event().wait()\n"
    child = spawn(write(tmp_path / "app.py", program(body)))
    child.wait_for(r"^ready run=1 ")
    write(tmp_path / "helper.py", "# edited\n")
    child.wait_for(r"^ready run=2 ", timeout=RESTART_TIMEOUT)
    assert child.wait_exit() == 0, child.output()
    # Stopped with the change seen; the next watcher restarts, once.
    assert lines(child.output(), "watcher stopped ") == ["watcher stopped mid-scan"]
    assert lines(child.output(), "reloader: ") == [
        "reloader: helper.py modified; restarting"
    ]


# ---------------------------------------------------------------------------
# wait() while another thread calls stop(), again and again.

STOPPED_WAIT_PROGRAM = """\
import threading
import time

import helper  # watched: the test edits it
import reloader


def keep_stopping():
    while True:
        reloader.stop()
        time.sleep(0.02)


reloader.start(check_time=50)  # so that wait() polls every 50 ms
threading.Thread(target=keep_stopping, daemon=True).start()
READY
"""


def test_stop_from_another_thread_does_not_end_wait(spawn, tmp_path):
    write(tmp_path / "helper.py", "")
    body = STOPPED_WAIT_PROGRAM + RUN_2_ENDS + "reloader.wait()\n"
    child = spawn(write(tmp_path / "app.py", program(body)))
    child.wait_for(r"^ready run=1 ")
    write(tmp_path / "helper.py", "# edited\n")
    child.wait_for(rf"^ready run=2 pid={child.pid}$", timeout=RESTART_TIMEOUT)
    assert child.wait_exit() == 0, child.output()
    assert "Traceback" not in child.output()


# ---------------------------------------------------------------------------
# The spawn fallback cannot start the new process.

FAILED_SPAWN_PROGRAM = """\
import errno

import reloader

print("run=%d" % run)
if run == 1:
    real_execv, real_executable = os.execv, sys.executable

    def execv(path, args):
        raise OSError(errno.ENOTSUP, "execv refused: other threads exist")

    os.execv = execv  # what macOS does with threads running
    sys.executable = "/nonexistent/python"
    reloader.restart()
    print("still here")
    # And the next restart, which can happen, does.
    os.execv, sys.executable = real_execv, real_executable
    reloader.restart()
    print("restart returned")
"""


def test_spawn_fallback_that_cannot_start_the_process_goes_on(spawn, tmp_path):
    child = spawn(write(tmp_path / "app.py", program(FAILED_SPAWN_PROGRAM)))
    assert child.wait_exit() == 0, child.output()
    assert child.output() == (
        "run=1\n"
        "cannot restart /nonexistent/python: [Errno 2] No such file or directory:"
        " '/nonexistent/python'; still running and watching\n"
        "still here\n"
        "run=2\n"
    )


UNUSABLE_EXECUTABLE_PROGRAM = """\
import reloader

print("run=%d" % run)
if run == 1:
    real_executable = sys.executable
    inheritable = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(inheritable, True)
    os.mkdir("elsewhere")
    os.chdir("elsewhere")
    for broken in ("", None):  # embedded interpreters: ValueError, TypeError
        sys.executable = broken
        reloader.restart()
        # Still here, and as before: the directory, the inheritable descriptor.
        print("still here in %s, inheritable=%s" % (
            os.path.basename(os.getcwd()), os.get_inheritable(inheritable)))
    sys.executable = real_executable
    reloader.restart()
"""


def test_reexecution_that_raises_other_errors_goes_on(spawn, tmp_path):
    child = spawn(write(tmp_path / "app.py", program(UNUSABLE_EXECUTABLE_PROGRAM)))
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    assert (
        lines(output, "still here") == ["still here in elsewhere, inheritable=True"] * 2
    ), output
    assert len(lines(output, "cannot restart ")) == 2, output
    assert lines(output, "run=") == ["run=1", "run=2"], output


CLOSED_BEHIND_ITS_BACK_PROGRAM = """\
import errno
import socket

import reloader

print("run=%d" % run)
if run == 1:
    def execv(path, args):
        raise OSError(errno.ENOTSUP, "execv refused: other threads exist")

    os.execv = execv  # what macOS does with threads running
    # A socket object whose descriptor the program closed with os.close():
    # closing it again raises EBADF.
    orphan = socket.create_server(("127.0.0.1", 0))
    os.close(orphan.fileno())
    reloader.restart()
    print("the old process goes on")  # two copies of the program
sys.exit(7)
"""


def test_spawn_fallback_always_ends_the_old_process(spawn, tmp_path):
    child = spawn(write(tmp_path / "app.py", program(CLOSED_BEHIND_ITS_BACK_PROGRAM)))
    assert child.wait_exit() == 7, child.output()
    assert child.output() == "run=1\nrun=2\n"


# ---------------------------------------------------------------------------
# Programs that cannot be run again: -c on 3.9, standard input.

# The program, as -c code or read from standard input.
UNREPEATABLE_PROGRAM = RUN_CODE + textwrap.dedent("""\
    import reloader

    print("run=%d" % run, flush=True)
    if run == 1:
        reloader.restart()
        print("still here")
""")


def test_program_run_with_dash_c(spawn, tmp_path):
    child = spawn("-c", UNREPEATABLE_PROGRAM)
    assert child.wait_exit() == 0, child.output()
    if sys.version_info >= (3, 10):  # sys.orig_argv keeps the code
        expected = "run=1\nrun=2\n"
    else:  # sys.argv == ["-c"]: the code is lost
        expected = "run=1\ncannot restart a program read from -c\nstill here\n"
    assert child.output() == expected


def run_from_stdin(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run ``python *args`` with UNREPEATABLE_PROGRAM as standard input.

    Returns the exit status and the output (standard error included).
    """
    script = write(tmp_path / "stdin.py", UNREPEATABLE_PROGRAM)
    log_path = tmp_path / "stdin.log"
    with open(script, "rb") as stdin, open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=tmp_path,
            env=child_env(None),
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        status = process.wait(timeout=15)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    return status, log_path.read_text()


@pytest.mark.parametrize("args", [["-"], []], ids=["python -", "python"])
def test_program_read_from_standard_input(tmp_path, args):
    # Running it again would read a standard input already read to its end.
    status, output = run_from_stdin(tmp_path, *args)
    assert (status, output) == (
        0,
        "run=1\ncannot restart a program read from standard input\nstill here\n",
    )


# ---------------------------------------------------------------------------
# listening_socket(): a run that never asks for its socket passes it on.

SOCKET_PRELUDE = """\
import socket

import reloader


def describe(sock):
    fd = sock.fileno()
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    return "fd=%d port=%d ino=%d listening=%d" % (
        fd, sock.getsockname()[1], os.fstat(fd).st_ino, listening
    )
"""

SOCKET_LINE = r"fd=(?P<fd>\d+) port=(?P<port>\d+) ino=(?P<ino>\d+) listening=1"

# What run 2 does instead of asking for the socket of runs 1 and 3.
RUN_2_INSTEAD = {
    "asks for nothing": "",
    "asks for another address": (
        'other = reloader.listening_socket(("127.0.0.1", 0), backlog=7)\n'
        'print("run=2 other %s" % describe(other))\n'
    ),
}


@pytest.mark.parametrize("instead", RUN_2_INSTEAD)
def test_socket_not_asked_for_by_one_run_reaches_the_next(spawn, tmp_path, instead):
    body = SOCKET_PRELUDE + (
        "if run == 2:\n"
        + textwrap.indent(RUN_2_INSTEAD[instead] or "pass\n", "    ")
        + "else:\n"
        + '    sock = reloader.listening_socket(("127.0.0.1", 0))\n'
        + '    print("run=%d sock %s" % (run, describe(sock)))\n'
        + "if run < 3:\n"
        + "    reloader.restart()\n"
    )
    child = spawn(write(tmp_path / "app.py", program(body)))
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    found = re.findall(rf"^run=(\d) sock {SOCKET_LINE}$", output, re.MULTILINE)
    assert [run for run, *_ in found] == ["1", "3"], output
    assert found[1][1:] == found[0][1:], output  # same fd, port and inode
    expected_lines = 3 if RUN_2_INSTEAD[instead] else 2
    assert len(output.splitlines()) == expected_lines, output  # not one warning


# What run 2, before it asks for the socket of run 1, goes through.
UNCLAIMED_THEN = {
    # The socket stays this run's: it gets it when it asks.
    "a failed restart": """\
real_executable = sys.executable
sys.executable = "/nonexistent/python"
reloader.restart()
sys.executable = real_executable
sock = reloader.listening_socket(ADDRESS)
print("run=2 sock %s" % describe(sock))
""",
    # The new process cannot inherit it: the port must be free for it.
    "the spawn fallback": """\
import errno


def execv(path, args):
    raise OSError(errno.ENOTSUP, "execv refused: other threads exist")


os.execv = execv  # what macOS does with threads running
reloader.restart()
print("restart returned")
""",
}


@pytest.mark.parametrize("then", UNCLAIMED_THEN)
def test_socket_not_asked_for_yet_survives_a_restart_that_fails(spawn, tmp_path, then):
    body = SOCKET_PRELUDE + (
        f'ADDRESS = ("127.0.0.1", {free_port()})\n'
        "if run == 2:\n"
        + textwrap.indent(UNCLAIMED_THEN[then], "    ")
        + "else:\n"
        + "    sock = reloader.listening_socket(ADDRESS)\n"
        + '    print("run=%d sock %s" % (run, describe(sock)))\n'
        + "if run == 1:\n"
        + "    reloader.restart()\n"
    )
    child = spawn(write(tmp_path / "app.py", program(body)))
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    found = re.findall(rf"^run=(\d) sock {SOCKET_LINE}$", output, re.MULTILINE)
    if then == "a failed restart":
        assert [run for run, *_ in found] == ["1", "2"], output
        assert found[1][1:] == found[0][1:], output  # same fd, port and inode
        assert lines(output, "cannot restart ") == [
            "cannot restart /nonexistent/python: [Errno 2] No such file or"
            " directory; still running and watching"
        ], output
    else:
        assert [run for run, *_ in found] == ["1", "3"], output
        assert found[1][2] == found[0][2], output  # the same port
        assert found[1][3] != found[0][3], output  # on a new socket
    assert len(output.splitlines()) == len(found) + (then == "a failed restart")


# ---------------------------------------------------------------------------
# listening_socket(): a hand-over naming an impossible descriptor.

FORGED_FD_PROGRAM = """\
import json

# Written as this process's previous run would have, before the import.
key = json.dumps([["127.0.0.1", 0], []])
os.environ["RELOADER_SOCKETS"] = json.dumps(
    {{"pid": os.getpid(), "sockets": [[key, {fd}, ["127.0.0.1", 8080]]]}}
)
print("value %r" % os.environ["RELOADER_SOCKETS"])
"""


@pytest.mark.parametrize("fd", [-5, 2**40])
def test_handed_over_descriptor_out_of_range_is_ignored(spawn, tmp_path, fd):
    body = (
        FORGED_FD_PROGRAM.format(fd=fd)
        + SOCKET_PRELUDE
        + 'sock = reloader.listening_socket(("127.0.0.1", 0))\n'
        + 'print("run=%d sock %s" % (run, describe(sock)))\n'
    )
    child = spawn(write(tmp_path / "app.py", program(body)))
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    value = re.search(r"^value (.*)$", output, re.MULTILINE).group(1)
    assert re.fullmatch(
        rf"value .*\n"
        rf"ignoring RELOADER_SOCKETS={re.escape(value)}: "
        rf"{fd} is no descriptor to hand over\n"
        rf"run=1 sock {SOCKET_LINE}\n",
        output,
    ), output


# ---------------------------------------------------------------------------
# watch(): a path no system call accepts.


@pytest.mark.parametrize("path", ["a\0b", Path("a\0b")], ids=["str", "Path"])
def test_watch_rejects_a_path_with_nul(path):
    with pytest.raises(ValueError, match="NUL"):
        reloader.watch(path)
