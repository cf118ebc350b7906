"""The public API: bad input, start/stop/wait, logging, forked processes.

Argument checks that start no thread run in this process; everything that
starts the watcher runs in a child process that really restarts.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import child_env, ready_code, write

import reloader


def source(text: str) -> str:
    """Dedent ``text``; a line ``READY`` becomes the ready_code() handshake."""
    return textwrap.dedent(text).replace("READY\n", ready_code())


def reloader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "reloader"]


def run_to_end(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a short program that exits by itself; capture its output."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=child_env(None),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


# The end of a long-running program, after its handshake.
SLEEP = "import time\nwhile True:\n    time.sleep(0.05)\n"


# ---------------------------------------------------------------------------
# Bad input: a clear error, and no watcher thread started.


@pytest.mark.parametrize(
    "value", [0, 0.0, -1, -0.5, float("nan"), float("inf"), float("-inf")]
)
def test_start_rejects_a_check_time_that_is_not_positive(value):
    with pytest.raises(ValueError, match="check_time"):
        reloader.start(check_time=value)
    assert reloader_threads() == []


@pytest.mark.parametrize("value", ["5", None, True, False, [50], b"50"])
def test_start_rejects_a_check_time_that_is_not_a_number(value):
    with pytest.raises(TypeError, match="check_time"):
        reloader.start(check_time=value)
    assert reloader_threads() == []


@pytest.mark.parametrize("loop", [object(), 42, "loop"])
def test_start_rejects_an_io_loop_without_callback_methods(loop):
    with pytest.raises(TypeError, match="io_loop"):
        reloader.start(io_loop=loop, check_time=50)
    assert reloader_threads() == []


@pytest.mark.parametrize("path", [None, 42, b"app.py", ["app.py"]])
def test_watch_rejects_what_is_not_a_path(path):
    with pytest.raises(TypeError, match="watch"):
        reloader.watch(path)


def test_watch_rejects_an_empty_path():
    with pytest.raises(ValueError, match="watch"):
        reloader.watch("")


@pytest.mark.parametrize("hook", [42, None, "print"])
def test_add_reload_hook_rejects_what_is_not_callable(hook):
    with pytest.raises(TypeError, match="add_reload_hook"):
        reloader.add_reload_hook(hook)


@pytest.mark.parametrize("fd", [object(), "3", 3.0, None])
def test_set_close_exec_rejects_what_has_no_descriptor(fd):
    with pytest.raises(TypeError, match="set_close_exec"):
        reloader.set_close_exec(fd)


def close_on_exec(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


def test_set_close_exec_on_an_int_descriptor():
    read, write_end = os.pipe()
    try:
        os.set_inheritable(read, True)
        assert not close_on_exec(read)
        assert reloader.set_close_exec(read) is None
        assert not os.get_inheritable(read)
        assert close_on_exec(read)
    finally:
        os.close(read)
        os.close(write_end)


@pytest.mark.parametrize("kind", ["file", "socket"])
def test_set_close_exec_on_an_object_with_fileno(tmp_path, kind):
    if kind == "file":
        obj = open(tmp_path / "data", "wb")
    else:
        obj = socket.socket()
    with obj:
        os.set_inheritable(obj.fileno(), True)
        reloader.set_close_exec(obj)
        assert not os.get_inheritable(obj.fileno())
        assert close_on_exec(obj.fileno())


def test_set_close_exec_on_a_closed_descriptor_raises_oserror():
    read, write_end = os.pipe()
    os.close(read)
    os.close(write_end)
    with pytest.raises(OSError):
        reloader.set_close_exec(read)


def test_stop_when_not_running_is_harmless():
    assert reloader.stop() is None
    assert reloader.stop() is None
    assert reloader_threads() == []


# ---------------------------------------------------------------------------
# start() and stop(), in child processes.


def test_second_start_warns_and_keeps_one_thread(tmp_path):
    code = textwrap.dedent(
        """\
        import threading
        import reloader
        reloader.start(check_time=50)
        reloader.start(check_time=50)
        names = [t.name for t in threading.enumerate()]
        print("reloader threads:", names.count("reloader"))
        """
    )
    result = run_to_end(code, tmp_path)
    assert (result.returncode, result.stdout) == (0, "reloader threads: 1\n")
    # No handler is configured: logging's last resort prints the bare message.
    assert result.stderr == "reloader.start() called while already running; ignored\n"


def test_stop_then_start_again_works(spawn, tmp_path):
    body = """\
        import threading
        import reloader
        reloader.start(check_time=50)
        reloader.stop()
        print("after stop:", [t.name for t in threading.enumerate()])
        reloader.start(check_time=50)
        print("after start:", [t.name for t in threading.enumerate()])
        READY
        """
    prog = write(tmp_path / "prog.py", source(body) + SLEEP)
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    assert "after stop: ['MainThread']\nafter start: ['MainThread', 'reloader']\n" in (
        child.output()
    )
    write(prog, source(body) + "# edited\n" + SLEEP)
    child.wait_for(rf"^ready run=2 pid={child.pid}$")


def test_start_imports_neither_tornado_nor_asyncio(spawn, tmp_path):
    body = """\
        import sys
        import reloader

        def loops():
            return [name for name in ("tornado", "asyncio") if name in sys.modules]

        reloader.add_reload_hook(lambda: print("at restart:", loops(), flush=True))
        reloader.start(check_time=50)
        print("after start:", loops())
        READY
        """
    prog = write(tmp_path / "prog.py", source(body) + SLEEP)
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, source(body) + "# edited\n" + SLEEP)
    child.wait_for(r"^ready run=2 ")
    output = child.output()
    assert output.count("after start: []\n") == 2
    assert "at restart: []\n" in output


# ---------------------------------------------------------------------------
# The one INFO line per restart.

# Standard error goes to a file of its own, so the test can tell it from the
# handshake on standard output.
TO_STDERR_LOG = """\
import os
os.dup2(os.open("stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND), 2)
"""

LOGGING = {
    "no logging configured": ("", "{}"),
    # basicConfig()'s default level drops INFO: no handler would emit the line.
    "only warnings configured": (
        "import logging\nlogging.basicConfig()\n",
        "{}",
    ),
    "a handler configured": (
        "import logging\n"
        "logging.basicConfig(level=logging.INFO, format='LOG|%(levelname)s|"
        "%(name)s|%(message)s')\n",
        "LOG|INFO|reloader|{}",
    ),
}


@pytest.mark.parametrize("logging_setup", LOGGING)
def test_restart_line_reaches_stderr(spawn, tmp_path, logging_setup):
    setup, expected = LOGGING[logging_setup]
    body = TO_STDERR_LOG + setup + "import reloader\nreloader.start(check_time=50)\n"
    prog = write(tmp_path / "prog.py", source(body + "READY\n") + SLEEP)
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, source(body + "READY\n") + "# edited\n" + SLEEP)
    child.wait_for(r"^ready run=2 ")
    # The line is written and flushed before the re-execution.
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    assert len(lines) == 1, lines
    if expected == "{}":
        assert re.fullmatch(r"(reloader: )?prog\.py modified; restarting", lines[0])
    else:
        assert lines == [expected.format("prog.py modified; restarting")]
    assert "modified" not in child.output()  # nothing of it on stdout


# ---------------------------------------------------------------------------
# wait()


@pytest.mark.parametrize("started", [False, True], ids=["alone", "after start"])
def test_wait_restarts_on_the_calling_thread(spawn, tmp_path, started):
    body = textwrap.dedent(
        """\
        import threading
        import reloader

        def hook():
            print("hook thread=%s" % threading.current_thread().name, flush=True)

        reloader.add_reload_hook(hook)
        """
    )
    if started:  # wait() takes over from the watcher thread
        body += "reloader.start(check_time=50)\n"
    body += "READY\nreloader.wait()\n"
    prog = write(tmp_path / "prog.py", source(body))
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, source(body) + "# edited\n")
    child.wait_for(rf"^hook thread=MainThread\nready run=2 pid={child.pid}$")
    assert "hook thread=reloader" not in child.output()


# ---------------------------------------------------------------------------
# Several processes.


def wait_for_file(path, pattern: str, timeout: float = 15) -> re.Match[str]:
    """Wait until ``pattern`` matches the file at ``path``; return the match."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if os.path.exists(path):
            text = Path(path).read_text()
            match = re.search(pattern, text, re.MULTILINE)
            if match:
                return match
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in {path} after {timeout} s:\n{text}")


# A forked process reports in a file of its own: two processes printing to
# one log can interleave within a line.
FORKED_REPORT = """\
def report_and_wait(log_name, prefix):
    with open(log_name, "w") as log:
        names = [t.name for t in threading.enumerate()]
        log.write("%s pid=%d threads=%s\\n" % (prefix, os.getpid(), names))
        log.flush()
        while not os.path.exists("done"):
            time.sleep(0.05)
        log.write("%s still pid=%d\\n" % (prefix, os.getpid()))
"""


def test_process_forked_after_start_does_not_watch(spawn, tmp_path):
    body = (
        "import os\nimport threading\nimport time\nimport warnings\n"
        + FORKED_REPORT
        + source(
            """\
            import reloader

            reloader.start(check_time=50)
            if not os.path.exists("forked.log"):
                with warnings.catch_warnings():
                    # 3.12+ warns about fork() with threads running: that is
                    # the situation under test.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:
                    # Detached (forked again, its parent gone): a restart
                    # stops the program's children, and this one must live
                    # on to show that it never restarts.
                    if os.fork() == 0:
                        report_and_wait("forked.log", "forked")
                    os._exit(0)
                os.waitpid(pid, 0)
            READY
            """
        )
    )
    prog = write(tmp_path / "prog.py", body + SLEEP)
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    forked = wait_for_file(tmp_path / "forked.log", r"^forked pid=(\d+) threads=(.*)$")
    assert forked[2] == "['MainThread']"
    write(prog, body + "# edited\n" + SLEEP)
    child.wait_for(rf"^ready run=2 pid={child.pid}$")
    (tmp_path / "done").touch()
    # Still the same process, never re-executed: it got to the end of its
    # code (a re-executed one would find forked.log and print a ready line).
    wait_for_file(tmp_path / "forked.log", rf"^forked still pid={forked[1]}$")
    assert len(re.findall(r"^ready run=", child.output(), re.MULTILINE)) == 2


# Stands in for Tornado's multi-process mode, which only needs
# tornado.process.task_id() to be looked up in sys.modules.
FAKE_TORNADO = """\
import sys
import types

process = types.ModuleType("tornado.process")
process.task_id = lambda: {task_id}
tornado = types.ModuleType("tornado")
tornado.process = process
sys.modules.update({{"tornado": tornado, "tornado.process": process}})
"""


@pytest.mark.parametrize("task_id", [0, 3, None])
def test_tornado_child_processes_never_restart(spawn, tmp_path, task_id):
    body = FAKE_TORNADO.format(task_id=task_id) + source(
        """\
        import os
        import threading
        import time
        import reloader

        reloader.start(check_time=50)
        print("threads:", [t.name for t in threading.enumerate()])
        READY
        while not os.path.exists("done"):
            time.sleep(0.05)
        print("still pid=%d" % os.getpid())
        """
    )
    prog = write(tmp_path / "prog.py", body)
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, body + "# edited\n")
    if task_id is None:  # not a child: the control case restarts
        child.wait_for(r"^threads: \['MainThread', 'reloader'\]$")
        child.wait_for(rf"^ready run=2 pid={child.pid}$")
        return
    (tmp_path / "done").touch()
    child.wait_for(rf"^still pid={child.pid}$")
    assert child.wait_exit() == 0
    output = child.output()
    assert "threads: ['MainThread']\n" in output
    assert "run=2" not in output
    assert "modified" not in output


def test_tornado_fork_processes_children_never_restart(spawn, tmp_path):
    pytest.importorskip("tornado")
    body = (
        "import os\nimport threading\nimport time\n"
        + FORKED_REPORT
        + textwrap.dedent(
            """\
            import tornado.process
            import reloader

            task = tornado.process.fork_processes(2, max_restarts=0)
            reloader.start(check_time=50)
            report_and_wait("task-%d.log" % task, "task")
            """
        )
    )
    prog = write(tmp_path / "prog.py", body)
    child = spawn(prog)
    tasks = [
        wait_for_file(tmp_path / f"task-{task}.log", r"^task pid=(\d+) threads=(.*)$")
        for task in (0, 1)
    ]
    write(prog, body + "# edited\n")
    (tmp_path / "done").touch()
    assert child.wait_exit() == 0  # fork_processes exits 0 once all did
    for task, report in enumerate(tasks):
        assert report[2] == "['MainThread']"
        log = (tmp_path / f"task-{task}.log").read_text()
        assert log.endswith(f"task still pid={report[1]}\n")
    assert "modified" not in child.output()
