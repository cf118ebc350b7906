"""The shared fixture of reloader's tests: real Python child processes.

A reloader can only be tested by letting it restart a real process, so every
test runs its program as a child and talks to it through the child's output.

``ROOT``, ``RELOADER``
    The repository root and ``reloader.py`` in it, as ``Path`` objects.

``spawn`` (fixture)
    ``spawn(*args, cwd=tmp_path, env=None, python=sys.executable) -> Child``
    starts ``[python, *args]`` (arguments may be paths) in ``cwd``. Its
    environment is this process's, with ``PYTHONPATH=ROOT`` (so the child can
    ``import reloader``), ``PYTHONUNBUFFERED=1``, ``PYTHONDONTWRITEBYTECODE=1``
    and no ``RELOADER_*`` variable. ``env`` overrides keys; a value of None
    removes the key, so an output-loss test passes
    ``env={"PYTHONUNBUFFERED": None}`` to put the flush under test.
    Standard output and standard error both go to ``tmp_path/"child-<n>.log"``
    (never to a pipe that nobody reads); standard input is ``/dev/null``.
    Each child leads a new session, and teardown SIGKILLs every child's
    process group, so processes the child started (a restart's spawned
    process, say) die with it.

``Child``
    ``pid``, ``argv``, ``log_path``; ``output()`` is the whole log so far.
    ``wait_for(pattern, timeout=15, count=1)`` polls the log every 50 ms until
    the regular expression (``re.MULTILINE``, so ``^`` and ``$`` match at
    lines) has matched ``count`` times, and returns the last match found. It
    raises ``AssertionError`` with the pattern, exit code, command line and
    whole log on timeout, or as soon as the child has exited without
    matching. ``wait_exit(timeout=15)`` returns the exit status (negative for
    a signal). ``poll()`` is the exit status or None while running.
    ``send_signal(sig)`` signals the process group; ``kill()`` SIGKILLs it.

``write(path, text)``
    Writes ``text`` (UTF-8) to ``path``, creating folders, and returns the
    path. **Every edit must change the file's size**, not only its content:
    then the change shows in the fingerprint whatever the file system's
    timestamp resolution, and no test has to sleep for the mtime to tick.
    ``write`` raises ``AssertionError`` for an edit that keeps the size.

``free_port()``
    A TCP port on 127.0.0.1 that nothing listens on, taken below the
    kernel's ephemeral range, for tests that need a fixed port.

``ready_code(name="ready")``
    Python source to paste at the top level at the end of a child program:
    it prints ``<name> run=N pid=P`` (so ``ready run=1 pid=1234``), flushed,
    where N counts the runs of that program across restarts. The handshake:
    a test edits only after ``wait_for(r"^ready run=1 ")``, then waits for
    ``run=2``, never sleeps. N is kept in a file ``.<name>.runs`` next to the
    program (next to the zip for a zip launch), so each test starts at 1.
    Do not let the child watch that folder (``watch(tmp_path)`` when the
    program lives in ``tmp_path``): the counter's own write would restart
    the program for ever. Put watched files in a subfolder instead.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Callable, Union

import pytest

ROOT = Path(__file__).resolve().parent.parent
RELOADER = ROOT / "reloader.py"

POLL_INTERVAL = 0.05  # seconds between two reads of a child's log

StrPath = Union[str, "os.PathLike[str]"]


class Child:
    """A running child process whose output goes to a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: StrPath,
        env: Mapping[str, str],
        log_path: Path,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        with open(log_path, "wb") as log:  # the child keeps its own copy
            self._proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def output(self) -> str:
        """Return everything the child has written so far."""
        return self.log_path.read_bytes().decode("utf-8", errors="replace")

    def poll(self) -> int | None:
        """Return the exit status, or None while the child runs."""
        return self._proc.poll()

    def wait_for(
        self, pattern: str, timeout: float = 15, count: int = 1
    ) -> re.Match[str]:
        """Wait until ``pattern`` has matched the log ``count`` times.

        Returns the last match found (the ``count``-th, unless more have
        appeared meanwhile). Raises ``AssertionError`` with the whole log
        after ``timeout`` seconds, or once the child has exited without
        matching.
        """
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            status = self._proc.poll()  # before reading: the read is final
            matches = list(regex.finditer(self.output()))
            if len(matches) >= count:
                return matches[-1]
            if status is not None:
                why = "the child exited first"
            elif time.monotonic() >= deadline:
                why = f"timed out after {timeout} s"
            else:
                time.sleep(POLL_INTERVAL)
                continue
            raise AssertionError(
                self._report(f"{pattern!r} matched {len(matches)}/{count}: {why}")
            )

    def wait_exit(self, timeout: float = 15) -> int:
        """Wait for the child to exit; return its status (-N for signal N).

        Raises ``AssertionError`` with the whole log after ``timeout`` seconds.
        """
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            msg = self._report(f"still running after {timeout} s")
            raise AssertionError(msg) from None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child's process group."""
        os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the child's process group and reap the child."""
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the whole group has already exited
            pass
        except PermissionError:  # macOS, when only zombies are left
            pass
        self._proc.wait(timeout=15)

    def _report(self, headline: str) -> str:
        status = self._proc.poll()
        return (
            f"{headline}\n"
            f"exit code: {'still running' if status is None else status}\n"
            f"argv: {self.argv}\n"
            f"----- log {self.log_path} -----\n"
            f"{self.output()}"
            "----- end of log -----"
        )


def child_env(overrides: Mapping[str, str | None] | None) -> dict[str, str]:
    """The environment of a spawned child; see the module docstring."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELOADER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


Spawn = Callable[..., Child]


@pytest.fixture(autouse=True, scope="session")
def sigint_reaches_children() -> Iterator[None]:
    """Let child processes take SIGINT even where this process ignores it.

    A shell starts a background job with SIGINT ignored (``python
    tests/run.py &``); an ignored signal stays ignored across exec, Python
    then installs no handler for it, and the wrapper keeps it ignored, as a
    background job's must be. A handled one is reset to the default in the
    child, so the tests that press Ctrl-C reach their children.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start child processes; kill their process groups at teardown."""
    children: list[Child] = []

    def spawn(
        *args: StrPath,
        cwd: StrPath = tmp_path,
        env: Mapping[str, str | None] | None = None,
        python: StrPath = sys.executable,
    ) -> Child:
        log_path = tmp_path / f"child-{len(children) + 1}.log"
        argv = [os.fspath(python), *(os.fspath(arg) for arg in args)]
        child = Child(argv, cwd=cwd, env=child_env(env), log_path=log_path)
        children.append(child)
        return child

    yield spawn
    errors: list[BaseException] = []
    for child in children:  # kill them all even if one kill fails
        try:
            child.kill()
        except Exception as exc:  # collected, raised below
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def polling_spawn(spawn: Spawn) -> Spawn:
    """``spawn``, with ``RELOADER_POLL=1`` unless ``env`` says otherwise.

    For the tests that count the watcher's scans: polling stats every file
    every ``check_time``, while with notifications most files are stat'ed
    only by the safety poll, every 10 s.
    """

    def polling(*args: StrPath, env: Mapping[str, str | None] | None = None, **kw):  # type: ignore[no-untyped-def]
        return spawn(*args, env={"RELOADER_POLL": "1", **(env or {})}, **kw)

    return polling


def write(path: StrPath, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8), making folders; return the path.

    Raises ``AssertionError`` if ``path`` exists with the same size: every
    edit in these tests changes the size (see the module docstring).
    """
    path = Path(path)
    data = text.encode("utf-8")
    if path.exists():
        assert path.stat().st_size != len(data), f"edit keeps the size: {path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


_READY_TEMPLATE = """
def _ready_{name}():
    # Handshake for the tests (tests/conftest.py ready_code): count this run
    # in a file beside the program; for a zip launch __file__ is inside the
    # zip, so walk up to a real folder.
    import os

    where = os.path.abspath(globals().get("__file__") or "-")
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    counter = os.path.join(where, ".{name}.runs")
    with open(counter, "ab") as runs:
        runs.write(b".")
    run = os.path.getsize(counter)
    print("{name} run=%d pid=%d" % (run, os.getpid()), flush=True)


_ready_{name}()
del _ready_{name}
"""


def ready_code(name: str = "ready") -> str:
    """Source printing ``<name> run=N pid=P``; see the module docstring.

    ``name`` must be an identifier. Without ``__file__`` (``python -c``) the
    counter lives in the working directory.
    """
    if not name.isidentifier():
        raise ValueError(f"ready_code name must be an identifier: {name!r}")
    return textwrap.dedent(_READY_TEMPLATE).format(name=name)


def free_port() -> int:
    """A TCP port nobody listens on, which the child will bind by number.

    Taken below the kernel's ephemeral range where it can be read (Linux), so
    no connection's source port or ``bind(port 0)`` elsewhere on this busy
    machine can grab it before the child binds it.
    """
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass  # not Linux: the usual start of the range
    for port in random.sample(range(max(1024, low - 10_000), low), 100):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: try another
            return port
    raise AssertionError("no free TCP port below the ephemeral range")
