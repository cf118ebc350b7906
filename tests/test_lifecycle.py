"""The life of a run around a restart (SPEC.md, "The restart" step 2, and the
command line's graceful restart and signals).

A restart, in the wrapper and in-process alike, ends the run as an exit
would: atexit handlers, then the program's children and theirs, stopped and
reaped, then its output. Under the wrapper the program is first interrupted
as Ctrl-C would, so its finally blocks run. Ctrl-C and SIGTERM end the
wrapper (130, 143) in every state after the program's cleanup; SIGHUP
restarts the program. Real processes throughout: the test reads the process
tree in /proc to count what is left.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ready_code, write

WRAPPER = ("-m", "reloader", "--check-time", "50")

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="counts processes in /proc"
)


# ``run``: 1, 2, ... across restarts, through the environment, which execv
# keeps (as in test_restart.py).
RUN_CODE = """\
import os as _os

run = int(_os.environ.get("TEST_RUN", "0")) + 1
_os.environ["TEST_RUN"] = str(run)
"""


def source(text: str) -> str:
    """``run`` defined, then ``text`` dedented, ``READY`` the handshake."""
    return RUN_CODE + textwrap.dedent(text).replace("READY\n", ready_code())


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


# ---------------------------------------------------------------------------
# The process tree, read independently of reloader.


def parent_of(pid: int) -> int | None:
    """The parent of ``pid``, or None if it no longer exists (reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat.rsplit(b")", 1)[1].split()[1])


def descendants(root: int) -> set[int]:
    """Every process whose chain of parents leads to ``root``."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            ppid = parent_of(int(name))
            if ppid is not None:
                parents[int(name)] = ppid
    found: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        for child, ppid in parents.items():
            if ppid == pid and child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_for_tree(root: int, count: int, timeout: float = 15) -> set[int]:
    """Wait until ``root`` has ``count`` descendants; return them."""
    deadline = time.monotonic() + timeout
    while True:
        found = descendants(root)
        if len(found) == count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{root} has {len(found)} descendants, not {count}")
        time.sleep(0.05)


def left_over(pids: set[int], timeout: float = 10) -> set[int]:
    """The ``pids`` still in the process table (zombies included).

    Waits up to ``timeout`` for them to go: a grandchild whose parent was
    killed is reaped by init, a moment later.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = {pid for pid in pids if parent_of(pid) is not None}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# A child that starts a grandchild, both sleeping, and one that ends at once
# and is never waited for: a zombie until someone reaps it. The child ignores
# SIGINT, as a server started by the program may: only the reloader stops it.
CHILDREN = """\
import subprocess
import sys

GRANDCHILD = "import time; time.sleep(60)"
CHILD = (
    "import signal, subprocess, sys, time\\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\\n"
    "subprocess.Popen([sys.executable, '-c', %r])\\n"
    "time.sleep(60)\\n" % GRANDCHILD
)
child = subprocess.Popen([sys.executable, "-c", CHILD])
zombie = subprocess.Popen([sys.executable, "-c", "pass"])
"""
PER_RUN = 3  # the child, its grandchild, the zombie


@pytest.mark.parametrize("how", ["wrapper", "start()"])
def test_restarts_leave_no_child_grandchild_or_zombie(spawn, tmp_path, how):
    setup = "import reloader\nreloader.start(check_time=50)\n"
    body = CHILDREN + (setup if how == "start()" else "") + "READY\n"
    body += "import time\ntime.sleep(60)\n"
    prog = write(tmp_path / "prog.py", source(body))
    args = (*WRAPPER, prog) if how == "wrapper" else (prog,)
    child = spawn(*args)
    earlier: set[int] = set()
    restarts = 5
    for run in range(1, restarts + 2):
        child.wait_for(rf"^ready run={run} pid={child.pid}$")
        # Before this run's ready line, the restart had reaped the direct
        # children of the runs before and stopped their children.
        assert not {pid for pid in earlier if parent_of(pid) == child.pid}
        assert left_over(earlier) == set()
        current = wait_for_tree(child.pid, PER_RUN)
        assert not current & earlier
        earlier |= current
        if run <= restarts:
            write(prog, source(body) + "#" * run + "\n")
    assert len(earlier) == PER_RUN * (restarts + 1)
    stopped = lines(child.output(), "[reloader] stopped ")
    if how == "wrapper":
        assert stopped == [f"[reloader] stopped {PER_RUN} child processes"] * restarts
        child.send_signal(signal.SIGINT)
        assert child.wait_exit() == 130
        assert left_over(earlier) == set()


def test_in_process_restart_logs_the_children_it_stopped(spawn, tmp_path):
    body = CHILDREN + "import logging\nlogging.basicConfig(level=logging.INFO)\n"
    body += "READY\nimport os, time, reloader\nif run == 1:\n"
    body += "    while not os.path.exists('go'):\n        time.sleep(0.05)\n"
    body += "    reloader.restart()\n"
    child = spawn(write(tmp_path / "prog.py", source(body)))
    child.wait_for(r"^ready run=1 ")
    wait_for_tree(child.pid, PER_RUN)  # the grandchild too, started by now
    (tmp_path / "go").touch()
    child.wait_for(r"^ready run=2 ")
    assert lines(child.output(), "INFO:reloader:stopped") == [
        "INFO:reloader:stopped 3 child processes"
    ]


ATEXIT_PROGRAM = """\
import atexit
import os
import subprocess
import sys

import reloader

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
atexit.register(lambda: print("atexit run=%d child running=%s" % (
    run, child.poll() is None), flush=True))
READY
if run == 1:
    sys.executable = "/nonexistent/python"
    reloader.restart()
    print("still here, child running=%s" % (child.poll() is None), flush=True)
    sys.executable = os.environ["REAL_PYTHON"]
    reloader.restart()
"""


def test_atexit_runs_before_children_stop_and_only_if_the_restart_can_happen(
    spawn, tmp_path
):
    prog = write(tmp_path / "prog.py", source(ATEXIT_PROGRAM))
    child = spawn(prog, env={"REAL_PYTHON": sys.executable})
    assert child.wait_exit() == 0, child.output()
    out = child.output()
    assert lines(out, "still here") == ["still here, child running=True"], out
    assert lines(out, "atexit") == [
        "atexit run=1 child running=True",
        "atexit run=2 child running=True",
    ], out
    assert out.index("still here") < out.index("atexit run=1") < out.index("run=2")


# ---------------------------------------------------------------------------
# A graceful restart under the wrapper.

GRACEFUL_PROGRAM = """\
import atexit
import time

atexit.register(lambda: print("atexit run=%d" % run, flush=True))
READY
try:
    time.sleep(60)
finally:
    print("finally run=%d" % run, flush=True)
"""


def test_restart_interrupts_the_program_first(spawn, tmp_path):
    prog = write(tmp_path / "prog.py", source(GRACEFUL_PROGRAM))
    child = spawn(*WRAPPER, prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, source(GRACEFUL_PROGRAM) + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    out = child.output()
    order = [line for line in out.splitlines() if re.match(r"(ready|atexit|fin)", line)]
    assert [line.split(" pid=")[0] for line in order] == [
        "ready run=1",
        "finally run=1",
        "atexit run=1",
        "ready run=2",
    ], out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "finished" not in out and "exited" not in out, out


def test_grace_0_restarts_at_once(spawn, tmp_path):
    prog = write(tmp_path / "prog.py", source(GRACEFUL_PROGRAM))
    child = spawn(*WRAPPER, "--grace", "0", prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, source(GRACEFUL_PROGRAM) + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    out = child.output()
    assert "finally" not in out, out  # not interrupted: re-executed as it was
    assert lines(out, "atexit") == ["atexit run=1"], out


def test_program_that_ignores_the_interruption_is_restarted_after_grace(
    spawn, tmp_path
):
    body = source(
        """\
        import time
        READY
        while True:
            try:
                time.sleep(60)
            except KeyboardInterrupt:
                print("interrupted, going on", flush=True)
        """
    )
    prog = write(tmp_path / "prog.py", body)
    child = spawn(*WRAPPER, "--grace", "0.5", prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, body + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    out = child.output()
    assert lines(out, "interrupted") == ["interrupted, going on"], out
    assert re.search(r"did not return within 0.5 s .*; restarting anyway$", out, re.M)


def test_grace_must_not_be_negative(spawn, tmp_path):
    child = spawn(*WRAPPER, "--grace", "-1", "prog.py")
    assert child.wait_exit() == 2
    assert "argument --grace: must be 0 or more seconds" in child.output()


def test_sighup_restarts_the_program(spawn, tmp_path):
    prog = write(tmp_path / "prog.py", source(GRACEFUL_PROGRAM))
    child = spawn(*WRAPPER, prog)
    child.wait_for(r"^ready run=1 ")
    os.kill(child.pid, signal.SIGHUP)
    child.wait_for(rf"^ready run=2 pid={child.pid}$")
    assert "finally run=1" in child.output()
    # And while the wrapper waits for a change.
    write(prog, source("READY\n"))
    child.wait_for(r"^ready run=3 ")
    child.wait_for(r"waiting for a change$")
    os.kill(child.pid, signal.SIGHUP)
    child.wait_for(rf"^ready run=4 pid={child.pid}$")


def test_background_job_ignores_ctrl_c_but_restarts_gracefully(spawn, tmp_path):
    prog = write(tmp_path / "prog.py", source(GRACEFUL_PROGRAM))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's `&`
    try:
        child = spawn(*WRAPPER, prog)
    finally:
        signal.signal(signal.SIGINT, previous)
    child.wait_for(r"^ready run=1 ")
    write(prog, source(GRACEFUL_PROGRAM) + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    assert "finally run=1" in child.output()
    child.send_signal(signal.SIGINT)  # ignored: the edit after it restarts
    write(prog, source(GRACEFUL_PROGRAM) + "# edited again\n")
    child.wait_for(r"^ready run=3 ")
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait_exit() == 143
    out = child.output()
    assert lines(out, "finally") == [f"finally run={run}" for run in (1, 2, 3)]


# ---------------------------------------------------------------------------
# Ctrl-C and SIGTERM end the wrapper in every state.

PRELUDE = """\
import atexit
import subprocess
import sys
import threading
import time

atexit.register(lambda: print("atexit ran", flush=True))
CHILD = (
    "import os, signal, time\\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\\n"
    "print('kid pid=%d' % os.getpid(), flush=True)\\n"
    "time.sleep(60)\\n"
)
kid = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE)
print(kid.stdout.readline().decode().strip(), flush=True)  # it is set up
"""

STATES = {
    "running": "READY\ntry:\n    time.sleep(60)\nfinally:\n    print('cleanup ran')\n",
    "catching and returning 0": (
        "READY\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
        "    print('cleanup ran')\n"
    ),
    "importing": "import slow\n",
    "waiting for a change": "READY\nprint('cleanup ran')\n",
    "non-daemon thread alive": (
        "threading.Thread(target=time.sleep, args=(60,)).start()\nREADY\n"
        "print('cleanup ran')\n"
    ),
}
SLOW_MODULE = "import time\nprint('importing', flush=True)\ntime.sleep(60)\n"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("state", list(STATES))
def test_signal_ends_the_wrapper_in_every_state(spawn, tmp_path, state, signum):
    write(tmp_path / "slow.py", SLOW_MODULE)
    write(tmp_path / "prog.py", source(PRELUDE + STATES[state]))
    child = spawn(*WRAPPER, "prog.py")
    kid = int(child.wait_for(r"^kid pid=(\d+)$")[1])
    if state == "importing":
        child.wait_for(r"^importing$")
    else:
        child.wait_for(r"^ready run=1 ")
    if state in ("waiting for a change", "non-daemon thread alive"):
        child.wait_for(r"waiting for a change$")
    if signum == signal.SIGINT:
        child.send_signal(signum)  # Ctrl-C: the whole foreground group
    else:
        os.kill(child.pid, signum)  # kill, an IDE's stop button: the wrapper
    assert child.wait_exit() == 128 + signum
    out = child.output()
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert lines(out, "atexit ran") == ["atexit ran"], out
    if state != "importing":
        assert lines(out, "cleanup ran") == ["cleanup ran"], out
        assert out.index("cleanup ran") < out.index("atexit ran"), out
    assert left_over({kid}) == set(), out


def test_second_ctrl_c_ends_at_once(spawn, tmp_path):
    body = PRELUDE + (
        "READY\ntry:\n    time.sleep(60)\nfinally:\n"
        "    print('slow cleanup', flush=True)\n    time.sleep(60)\n"
    )
    write(tmp_path / "prog.py", source(body))
    child = spawn(*WRAPPER, "prog.py")
    kid = int(child.wait_for(r"^kid pid=(\d+)$")[1])
    child.wait_for(r"^ready run=1 ")
    child.send_signal(signal.SIGINT)
    child.wait_for(r"^slow cleanup$")
    child.send_signal(signal.SIGINT)
    assert child.wait_exit() == 130
    assert "Traceback" not in child.output()
    assert left_over({kid}) == set()


# ---------------------------------------------------------------------------
# The program's end: output flushed, children stopped, before the report.


def test_output_is_flushed_and_children_stopped_before_the_report(spawn, tmp_path):
    body = PRELUDE + "READY\nprint('last words')\n"  # buffered: no flush
    write(tmp_path / "prog.py", source(body))
    child = spawn(*WRAPPER, "prog.py", env={"PYTHONUNBUFFERED": None})
    kid = int(child.wait_for(r"^kid pid=(\d+)$")[1])
    child.wait_for(r"waiting for a change$")
    out = child.output()
    assert re.search(
        r"^last words\natexit ran\n\[reloader\] stopped 1 child process\n"
        r"\[reloader\] prog.py finished\n",
        out,
        re.M,
    ), out
    assert parent_of(kid) is None  # stopped and reaped before the report
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait_exit() == 143


def test_program_warning_does_not_point_into_the_wrapper(spawn, tmp_path):
    body = "import socket\nleft_open = socket.socket()\nREADY\n"
    write(tmp_path / "prog.py", source(body))
    child = spawn("-X", "dev", *WRAPPER, "prog.py")
    child.wait_for(r"waiting for a change$")
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait_exit() == 143
    assert "reloader.py" not in child.output(), child.output()


# ---------------------------------------------------------------------------
# start() from two threads at once.

START_RACE = """\
import logging
import sys
import threading
import time

import reloader

logging.getLogger("reloader").setLevel(logging.ERROR)  # "already running"
sys.setswitchinterval(1e-6)  # a thread switch between any two bytecodes


def between_lines(frame, event, arg):
    # And between any two lines of reloader.py run by the two threads.
    if frame.f_code.co_filename.endswith("reloader.py"):
        time.sleep(0)
        return between_lines
    return None


threading.settrace(between_lines)


def watchers():
    return sum(t.name == "reloader" for t in threading.enumerate())


bad = 0
for attempt in range(100):
    barrier = threading.Barrier(2)

    def start():
        barrier.wait()
        reloader.start(check_time=1000)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    running = watchers()
    reloader.stop()
    bad += running != 1 or watchers() != 0
print("bad=%d" % bad)
"""


def test_start_from_two_threads_at_once_leaves_one_watcher(spawn, tmp_path):
    child = spawn(write(tmp_path / "prog.py", START_RACE))
    assert child.wait_exit(timeout=60) == 0, child.output()
    assert lines(child.output(), "bad=") == ["bad=0"], child.output()


# ---------------------------------------------------------------------------
# Programs with signal handlers of their own.

OWN_HANDLERS = {
    # aiohttp's run_app: asyncio's add_signal_handler, then a normal return.
    "loop.add_signal_handler": """\
        import asyncio
        import signal

        async def serve():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            print("ready run=%d " % run, flush=True)
            try:
                await stop.wait()
            finally:
                print("cleanup ran", flush=True)

        asyncio.run(serve())
        """,
    # A handler that sets a flag, and a loop that returns when it is set.
    "signal.signal flag": """\
        import signal
        import threading

        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        READY
        while not stop.wait(0.05):
            pass
        print("cleanup ran", flush=True)
        """,
    # asyncio.run() cancels its main task on Ctrl-C.
    "asyncio.run": """\
        import asyncio

        async def serve():
            print("ready run=%d " % run, flush=True)
            try:
                await asyncio.sleep(60)
            finally:
                print("cleanup ran", flush=True)

        asyncio.run(serve())
        """,
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("kind", list(OWN_HANDLERS))
def test_program_with_its_own_handler(spawn, tmp_path, kind, signum):
    body = source(OWN_HANDLERS[kind])
    prog = write(tmp_path / "prog.py", body)
    child = spawn(*WRAPPER, prog)
    child.wait_for(r"^ready run=1 ")
    # A restart stops it through its handler, too.
    write(prog, body + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    assert lines(child.output(), "cleanup ran") == ["cleanup ran"], child.output()
    os.kill(child.pid, signum)
    assert child.wait_exit() == 128 + signum
    out = child.output()
    assert lines(out, "cleanup ran") == ["cleanup ran"] * 2, out
    assert "Traceback" not in out and "waiting for a change" not in out, out
