"""Restart a Python process when its source changes: one file, standard library only.

Two ways to use it::

    python -m reloader app.py [args...]      # run app.py, run it again on every save
    python -m reloader -m package [args...]  # the same for a module

    import reloader                          # inside a long-running program
    reloader.start()

A daemon thread polls the file of every imported module, and every path given
to ``watch()``, every ``check_time`` milliseconds. When one changes, and the
burst of changes has settled, the process re-executes itself with the same
command line (``os.execv``: the pid stays). When Tornado or asyncio runs a loop
in the thread that called ``start()``, the restart happens on that loop.
``listening_socket()`` keeps a server's port open through the restart, so
clients that connect meanwhile wait instead of being refused.

Limits: the restart is a re-execution, so any state that lives only in memory
is lost (reload hooks can save it). The polling costs one ``stat`` per watched
file per scan. A changed ``.py`` file that does not compile holds the restart
until it does; other errors only show when the new process imports the file,
and the ``python -m reloader`` wrapper covers those. Where ``execv`` is not
available (Windows, or macOS with threads running) the restart starts a new
process and waits for it instead, and a listening socket cannot be handed over.
On Python 3.9 a program run with ``-c`` cannot be re-executed. A program that
changes directory should import this module first: the restart runs from the
directory that was current then. Files are compared by modification time,
size and inode, so an edit made within the same clock tick as a scan that
keeps all three is caught by comparing contents, for two seconds after each
change.

Copyright (c) 2026 the reloader authors.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

import logging
import operator
import os
import sys
import threading
import time

# Import cost is the user's start-up time. ``typing`` would cost several
# milliseconds and ``from __future__ import annotations`` 0.2 ms, so neither
# runs: mypy treats any name TYPE_CHECKING as true, the types below exist only
# for it, and the annotations Python evaluates (a function's) are strings
# where they name these types or use ``X | Y``, which 3.9 cannot evaluate.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import subprocess
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, NoReturn, Optional, Protocol, Union

    class _TornadoLoop(Protocol):
        def add_callback(self, callback: Callable[[], object]) -> None: ...

    class _AsyncioLoop(Protocol):
        def call_soon_threadsafe(self, callback: Callable[[], object]) -> object: ...

    _Loop = Union[_TornadoLoop, _AsyncioLoop]
    _Print = Union[tuple[int, int, int], None, object]

__all__ = [
    "start",
    "stop",
    "wait",
    "watch",
    "add_reload_hook",
    "restart",
    "set_close_exec",
    "listening_socket",
    "main",
]

__version__ = "0.1.0"

_log = logging.getLogger("reloader")


# ---------------------------------------------------------------------------
# The public API: thin wrappers around the one private state object.


def start(io_loop: "_Loop | None" = None, check_time: float = 500) -> None:
    """Start watching in a daemon thread named ``reloader``.

    Every ``check_time`` milliseconds the thread compares the files of all
    imported modules, and of every ``watch()``ed path, with what it saw
    before. On a change it restarts the process: on ``io_loop`` if given (an
    object with ``add_callback``, as Tornado's IOLoop, or with
    ``call_soon_threadsafe``, as an asyncio loop), else on the Tornado or
    asyncio loop current in the calling thread, else from the watcher thread.

    Raises ``TypeError`` if ``check_time`` is not a number or ``io_loop`` has
    neither method, ``ValueError`` if ``check_time`` is not a positive finite
    number. A second call while running logs a warning and changes nothing.
    Does nothing in the children of Tornado's ``fork_processes``.

    A file edited after the process started counts as a change when the
    watcher first sees it, so no edit is missed while the process starts up.
    The price: a module imported later whose file was edited after the
    process started, but before that import, restarts the process once more.
    """
    interval = _check_interval(check_time)
    loop = _find_loop(io_loop)
    _state.start(loop, interval, owner="program")


def stop() -> None:
    """Stop the watcher thread and return once it has stopped.

    Harmless when not running; ``start()`` may be called again afterwards.
    Changes made while stopped are seen by the next scan after ``start()``.
    """
    _state.stop()


def wait() -> "NoReturn":
    """Block the calling thread until a watched file changes, then restart.

    The restart runs on the calling thread. A watcher thread started with
    ``start()`` is stopped first; nothing it had seen is forgotten. Never
    returns normally: if the restart cannot happen, the error is logged and
    the wait goes on.
    """
    _state.stop()
    interval = _state.check_time or 0.5
    # An event nobody sets: a stop() elsewhere must not end the wait.
    _state.watcher.run(interval, threading.Event(), loop=None)
    raise AssertionError("unreachable: the watcher loop only ends by restarting")


def watch(path: "str | os.PathLike[str]") -> None:
    """Also watch ``path``: a file, or a folder and every file under it.

    A relative path is resolved against the current working directory now.
    A path that does not exist yet is watched for its appearance; in a
    folder, a file that appears is a change. Raises ``TypeError`` if ``path``
    is not a ``str`` or ``os.PathLike``, ``ValueError`` if it is empty.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"watch() needs a str or os.PathLike path, not {type(path).__name__}"
        )
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"watch() needs a path that is a str, not {name!r}")
    if not name or "\0" in name:
        raise ValueError(f"watch() needs a non-empty path without NUL, not {name!r}")
    _state.watcher.add_root(os.path.abspath(name))


def add_reload_hook(fn: "Callable[[], object]") -> None:
    """Call ``fn()`` before every restart, after the hooks added before it.

    Hooks run on the thread that performs the restart. A hook that raises is
    logged and the restart goes on. Raises ``TypeError`` if ``fn`` is not
    callable.
    """
    if not callable(fn):
        raise TypeError(f"add_reload_hook() needs a callable, not {fn!r}")
    with _state.lock:
        _state.hooks.append(fn)


def restart() -> None:
    """Restart the process now: run the reload hooks, then re-execute.

    Returns only if the re-execution failed (the interpreter was deleted,
    say): the reason is logged and the process goes on, still watching. A
    call made while another restart is under way returns at once.
    """
    _state.restart()


def set_close_exec(fd: "int | _HasFileno") -> None:
    """Mark a file descriptor close-on-exec, so a restart does not leak it.

    ``fd`` is an int or an object with ``fileno()``. Raises ``OSError`` if
    the descriptor is not open, ``TypeError`` if ``fd`` is neither.
    """
    if isinstance(fd, int):
        os.set_inheritable(fd, False)
        return
    fileno = getattr(fd, "fileno", None)
    if fileno is None:
        raise TypeError(f"set_close_exec() needs an int or fileno(), not {fd!r}")
    os.set_inheritable(fileno(), False)


def listening_socket(address: "Any", **kwargs: "Any") -> "socket.socket":
    """Return a listening socket for ``address`` that survives restarts.

    The first run gets ``socket.create_server(address, **kwargs)``; after a
    restart by ``execv`` the same socket is handed over, so clients that
    connect during the restart wait in its backlog instead of being refused.
    Port 0 keeps the port the first run was given. A hand-over that does not
    check out (not from this process, not a listening socket on that address)
    is ignored with a warning. Raises what ``create_server`` raises.
    """
    return _state.sockets.get(address, kwargs)


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the command line ``python -m reloader``; see ``--help``.

    Runs the program in this process as ``python`` would, reports how it
    ended, then waits for a change to any file it involved and runs it again
    in a fresh process. Returns (or exits with) 0 after success with
    ``--until-success``, 2 for bad options, 130 on Ctrl-C, 143 on SIGTERM.
    Installs handlers for SIGINT, SIGTERM and SIGHUP (restart) when called
    from the main thread.
    """
    return _Wrapper(sys.argv[1:] if argv is None else list(argv)).main()


if TYPE_CHECKING:

    class _HasFileno(Protocol):
        def fileno(self) -> int: ...


# ---------------------------------------------------------------------------
# The state: one object, so that the module's globals are written in one place.

# Environment variables that carry state through ``execv``; see "Carrying the
# reference time across a restart" and ``_Sockets``.
_SINCE_ENV = "RELOADER_SINCE"
_SOCKETS_ENV = "RELOADER_SOCKETS"


class _State:
    def __init__(self, own_environment: bool) -> None:
        self.lock = threading.Lock()
        self.hooks: list[Callable[[], object]] = []
        self.cwd = os.getcwd()
        self.argv: Optional[list[str]] = None
        self.thread: Optional[threading.Thread] = None
        self.stop_event = threading.Event()
        self.owner = ""
        self.check_time = 0.0
        self.restarting = False
        # start() and stop() one at a time: checking for a running watcher
        # and starting one must be one step, or two threads calling start()
        # at once both find none. Not ``lock``: stop() joins the watcher
        # thread, which takes ``lock`` to restart.
        self.control = threading.Lock()
        # Under the wrapper (see "A graceful restart under the wrapper"):
        self.grace = 0.0  # --grace, in seconds
        self.program_running = False  # the program runs on the main thread
        self.interrupting = False  # a restart has interrupted the program
        self.signals: Optional[_Signals] = None  # main()'s handlers
        self.program_returned = threading.Event()
        self.watcher = _Watcher(_reference_time(own_environment))
        self.sockets = _Sockets(own_environment)

    def start(self, loop: "_Loop | None", interval: float, owner: str) -> None:
        if _in_tornado_child():
            _log.debug("not watching in a child of tornado.process.fork_processes")
            return
        with self.control:
            with self.lock:
                running = self.thread is not None and self.thread.is_alive()
                previous = self.owner
            if running and not (previous == "wrapper" and owner == "program"):
                _log.warning("reloader.start() called while already running; ignored")
                return
            if running:
                # The program's own start() under ``python -m reloader`` takes
                # over from the wrapper's, so its loop and interval apply.
                self.join_watcher()
            with self.lock:
                self.stop_event = threading.Event()
                self.owner = owner
                self.check_time = interval
                self.thread = threading.Thread(
                    target=self.watcher.run,
                    args=(interval, self.stop_event, loop),
                    name="reloader",
                    daemon=True,
                )
                self.thread.start()

    def stop(self) -> None:
        with self.control:
            self.join_watcher()

    def join_watcher(self) -> None:
        with self.lock:
            thread, self.thread = self.thread, None
            self.stop_event.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def restart(self) -> None:
        """Restart now: the watcher decided a change, or restart() was called.

        The one entry point for both. Under the wrapper, from any thread but
        the main one while the program runs there, the program is first
        interrupted and given ``grace`` seconds to return.
        """
        if (
            self.program_running
            and self.grace > 0
            and threading.current_thread() is not threading.main_thread()
            and self.signals is not None
            and self.signals.can_interrupt()
        ):
            self.restart_gracefully()
        else:
            self.restart_now()

    def restart_gracefully(self) -> None:
        """See "A graceful restart under the wrapper"."""
        with self.lock:
            if self.interrupting or self.restarting:
                return
            self.interrupting = True
        _interrupt_main_thread()
        if self.program_returned.wait(self.grace):
            return  # the wrapper restarts, on the main thread
        _log.warning(
            "the program did not return within %g s of the interruption; "
            "restarting anyway",
            self.grace,
        )
        self.restart_now()

    def restart_now(self) -> None:
        with self.lock:
            if self.restarting:
                return
            self.restarting = True
            hooks = list(self.hooks)
        try:
            source = "" if self.argv is not None else _program_source()
            if source:
                # Before the hooks: they prepare a restart that cannot come.
                _log.error("cannot restart a program read from %s", source)
                return
            _run_hooks(hooks)
            # After the hooks, which may change what it is made of.
            since = self.watcher.restart_since or time.time_ns() - _MARGIN_NS
            self.watcher.restart_since = 0
            argv = self.command_line()
            if _can_reexecute(argv, self.cwd):
                # Not before: a run ended for a restart that then fails would
                # go on without its atexit handlers and its children.
                _end_run()
            if self.signals is not None:
                self.signals.ignore_for_exec(True)
            try:
                _reexecute(argv, self.cwd, self.sockets, since)
            finally:
                if self.signals is not None:
                    self.signals.ignore_for_exec(False)
        finally:
            with self.lock:
                self.restarting = False
                self.interrupting = False

    def command_line(self) -> list[str]:
        return list(self.argv) if self.argv is not None else _command_line()

    def after_fork_in_child(self) -> None:
        # Threads do not survive fork: forget the parent's watcher thread, and
        # renew the lock, which another thread may have held at the fork.
        self.lock = threading.Lock()
        self.control = threading.Lock()
        self.watcher.lock = threading.Lock()
        self.watcher.poll_lock = threading.Lock()
        self.sockets.lock = threading.Lock()
        self.thread = None
        self.stop_event = threading.Event()
        self.owner = ""
        self.restarting = False
        self.program_running = False
        self.interrupting = False
        self.program_returned = threading.Event()
        if self.signals is not None:
            self.signals.after_fork_in_child()
            self.signals = None


def _check_interval(check_time: object) -> float:
    """Return ``check_time`` milliseconds in seconds; raise if it is not valid."""
    if isinstance(check_time, bool) or not isinstance(check_time, (int, float)):
        raise TypeError(
            f"check_time must be a number of milliseconds, not {check_time!r}"
        )
    if not 0 < check_time < float("inf"):
        raise ValueError(
            f"check_time must be a positive number of milliseconds, not {check_time!r}"
        )
    return float(check_time) / 1000.0


def _find_loop(io_loop: object) -> "_Loop | None":
    """The loop that should perform the restart, in the spec's order."""
    if io_loop is not None:
        if not hasattr(io_loop, "add_callback") and not hasattr(
            io_loop, "call_soon_threadsafe"
        ):
            raise TypeError(
                "io_loop must have add_callback (Tornado) or call_soon_threadsafe "
                f"(asyncio), not {io_loop!r}"
            )
        return io_loop  # type: ignore[return-value]
    ioloop = sys.modules.get("tornado.ioloop")
    if ioloop is not None:
        import warnings

        with warnings.catch_warnings():
            # Tornado 6.2+ deprecates current() without a running loop; asking
            # is exactly how we learn there is none.
            warnings.simplefilter("ignore", DeprecationWarning)
            current = ioloop.IOLoop.current(instance=False)
        if current is not None:
            return current  # type: ignore[no-any-return]
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            return asyncio.get_running_loop()  # type: ignore[no-any-return]
        except RuntimeError:
            pass  # no loop runs in this thread: the watcher restarts itself
    return None


def _in_tornado_child() -> bool:
    process = sys.modules.get("tornado.process")
    return process is not None and process.task_id() is not None


def _run_hooks(hooks: "Iterable[Callable[[], object]]") -> None:
    for hook in hooks:
        try:
            hook()
        except (Exception, SystemExit):
            _log.exception("reload hook %r failed; restarting anyway", hook)


# ---------------------------------------------------------------------------
# The watcher.
#
# Carrying the reference time across a restart
# ---------------------------------------------------------------------------
# A file is only compared with itself: the first scan records what it sees.
# An edit made after the process started but before that first scan (while
# the restarted process is still importing, say) would be recorded as the
# starting point and never seen. So a file seen for the first time counts as
# changed when its modification time lies after a reference time, or its inode
# change time does: an mtime can be set back (an editor or a checkout that
# restores it, a mv of an old file), the ctime cannot, and a write, utime() or
# rename sets it. The reference time is:
#
# * after a restart, the moment the old process took the stat pass that found
#   every file settled, less a margin. The old process puts it in RELOADER_SINCE
#   with its pid, which execv keeps; the new one takes it only if the pid is its
#   own (or its parent's, after the spawn fallback), so a child process the
#   program starts never inherits it. The margin covers the file systems'
#   coarse clock, which stamps a write up to a tick (a few ms) before the
#   time.time_ns() of the same moment; it is smaller than the settle time, so
#   the files of the burst that caused the restart lie before it.
# * on a first start, the process's own start time where the system tells it
#   (Linux), rounded late so a save made just before the launch is not taken
#   for one made after; elsewhere, the time this module was imported.
#
# Modification times in the future are never a first-sight change, so a file
# from a clock-skewed archive cannot cause a restart loop. A module imported
# long after start() whose file was edited before its import is seen as
# changed once: the process restarts one extra time, and the new reference
# time ends it.

_MARGIN_NS = 20_000_000
_SETTLE = 0.05
# Within this many ns of a scan, a write can leave mtime, size and inode as
# they were (coarse clocks, one-second file systems): such files are compared
# by content until their last write is older than this.
_RACY_NS = 2_000_000_000
_RACY_MAX_BYTES = 1 << 20

_IGNORED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
    }
)
_IGNORED_SUFFIXES = (".swp", ".swx", "~", ".pyc")
_IGNORED_NAMES = frozenset({"4913"})  # vim's probe for a writable folder

_UNSEEN = object()  # a path not stat'ed yet: compared with the reference time
_fingerprint = operator.attrgetter("st_mtime_ns", "st_size", "st_ino")

# Keeping the scan at the cost of its stats
# ---------------------------------------------------------------------------
# The floor is a Python loop calling os.stat on every file. Python code run
# per file on top of it costs 15-20 %: building the fingerprint tuple alone
# (three attribute reads and a tuple) costs 10 %. So the pass runs in C,
# list(map(getter, map(os.stat, paths))), with a getter of a single number
# that changes whenever the fingerprint can: the inode change time. Every
# write, truncate, utime() and rename sets it, and a new inode renamed over
# the file brings its own; the full fingerprint is then read, by a second
# stat of those few files only, and decides. A change of ctime alone (chmod)
# is no change. Windows keeps the creation time in st_ctime, so there the
# getter is the fingerprint itself.
if sys.platform == "win32":
    _quick_print = _fingerprint
else:
    _quick_print = operator.attrgetter("st_ctime_ns")


def _reference_time(own_environment: bool) -> int:
    """The reference time in ns; see "Carrying the reference time"."""
    value = os.environ.get(_SINCE_ENV)
    if own_environment:
        os.environ.pop(_SINCE_ENV, None)
    if value:
        kind, _, rest = value.partition(":")
        pid, _, since = rest.partition(":")
        expected = os.getpid() if kind == "exec" else os.getppid()
        if kind in ("exec", "spawn") and pid == str(expected) and since.isdigit():
            return int(since)
    return _process_start_ns()


def _process_start_ns() -> int:
    now = time.time_ns()
    if sys.platform == "win32" or not hasattr(time, "CLOCK_BOOTTIME"):
        return now
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        start_ticks = int(fields[19]) + 1  # field 22; +1 rounds late
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / ticks_per_second
    except (OSError, ValueError, IndexError):
        return now  # no /proc: the import time is the best we know
    return now - max(0, int(age * 1e9))


class _Dir:
    """What a watched folder held when it was last listed."""

    __slots__ = ("dirs", "files", "print")

    def __init__(self, fingerprint: "tuple[int, int, int]") -> None:
        self.print = fingerprint
        self.files: list[str] = []
        self.dirs: list[str] = []


class _Watcher:
    """The scan: fingerprints of every watched file, compared each pass.

    The hot loop stats a precomputed list of paths, with the fingerprints in
    a parallel list; the list is rebuilt only when ``sys.modules``, the
    ``watch()`` list or a watched folder's listing changed.
    """

    def __init__(self, since: int) -> None:
        self.since = since
        self.lock = threading.Lock()
        self.roots: dict[str, None] = {}
        self.roots_changed = False
        self.paths: list[str] = []
        self.prints: list[_Print] = []
        self.quick: list[object] = []
        self.modules_key: Optional[tuple[int, object]] = None
        self.dirs: dict[str, _Dir] = {}
        self.gone: dict[str, _Print] = {}
        self.absent: dict[str, _Print] = {}
        self.racy: dict[str, tuple[int, tuple[int, int, int], bytes]] = {}
        self.pending: dict[str, None] = {}
        self.unsettled = False  # changes seen, not yet settled and decided
        self.restart_since = 0  # the settled scan's time, for the next run
        self.poll_lock = threading.Lock()
        self.reported: set[str] = set()
        self.scan_count = 0

    def add_root(self, path: str) -> None:
        with self.lock:
            self.roots[path] = None
            self.roots_changed = True

    # -- the loop ---------------------------------------------------------

    def run(
        self, interval: float, stop: "threading.Event", loop: "_Loop | None"
    ) -> None:
        """Poll until ``stop`` is set; restart on ``loop``, or here, on a change."""
        settle = min(_SETTLE, interval)
        while not stop.wait(interval):
            try:
                # One poll at a time: a wait() and a start() may overlap.
                with self.poll_lock:
                    changed = self.poll(settle, stop)
                    if changed and stop.is_set():
                        self.pending.update(dict.fromkeys(changed))
                        self.unsettled = True  # the next run restarts for them
                        changed = []
                if changed:
                    _announce(changed)
                    self.restart_with(loop)
            except Exception as e:
                self.report_once(
                    f"scan:{type(e).__name__}:{e}",
                    "scan or restart failed; the next scan runs as usual",
                    exc_info=True,
                )

    def restart_with(self, loop: "_Loop | None") -> None:
        if loop is None:
            _state.restart()
            return
        asyncio_loop = getattr(loop, "asyncio_loop", loop)
        closed = getattr(asyncio_loop, "is_closed", None)
        running = getattr(asyncio_loop, "is_running", None)
        if (closed is not None and closed()) or (running is not None and not running()):
            # Closed, or stopped after run_until_complete(): nothing would run
            # a callback there, perhaps ever again.
            _state.restart()
        elif hasattr(loop, "add_callback"):
            loop.add_callback(_state.restart)
        else:
            loop.call_soon_threadsafe(_state.restart)

    def poll(self, settle: float, stop: "threading.Event") -> "list[str]":
        """One scan; on a change, scan until the burst settles.

        Returns the changed paths when the process should restart, or an
        empty list (also while a changed ``.py`` file does not compile).
        """
        since = time.time_ns()
        changed = self.scan()
        if not changed and not self.unsettled:
            return []  # also while a syntax error holds the restart: nothing new
        self.unsettled = True
        while changed:
            self.pending.update(dict.fromkeys(changed))
            if stop.wait(settle):
                return []  # stopped: the next run settles what is pending
            since = time.time_ns()
            changed = self.scan()
        self.unsettled = False
        ready = [path for path in self.pending if os.path.exists(path)]
        if not ready:
            self.pending.clear()
            return []
        if any(self.does_not_compile(path) for path in ready):
            return []
        self.pending.clear()
        self.restart_since = since - min(_MARGIN_NS, int(settle * 1e9))
        return ready

    def does_not_compile(self, path: str) -> bool:
        if not path.endswith(".py"):
            return False
        try:
            with open(path, "rb") as f:
                source = f.read()
            compile(source, path, "exec", dont_inherit=True)
        except SyntaxError as e:
            where = f"{_relative(e.filename or path)}:{e.lineno}"
            self.report_once(
                f"syntax:{where}:{e.msg}:{len(source)}",
                "%s: SyntaxError: %s; not restarting until it compiles",
                where,
                e.msg,
            )
            return True
        except (OSError, ValueError):
            return False  # unreadable or gone: the new process will tell
        return False

    def report_once(self, key: str, message: str, *args: object, **kw: "Any") -> None:
        if key in self.reported:
            return
        if len(self.reported) > 1000:
            self.reported.clear()
        self.reported.add(key)
        _log.error(message, *args, **kw)

    # -- one scan ---------------------------------------------------------

    def scan(self) -> "list[str]":
        """Stat every watched path once; return those that changed."""
        self.refresh_paths()
        try:
            # See "Keeping the scan at the cost of its stats".
            quick: list[object] = list(map(_quick_print, map(os.stat, self.paths)))
        except OSError:
            quick = self.stat_each()
        self.scan_count += 1
        now = time.time_ns()
        changed = self.compare(quick, now) if quick != self.quick else []
        if self.absent:
            changed += self.check_absent(now)
        if self.racy:
            changed += self.check_racy(now, changed)
        return changed

    def stat_each(self) -> "list[object]":
        """The slow pass, when a file vanished: set it aside in ``absent``."""
        current: list[object] = []
        paths, prints, quick = [], [], []
        for path, old, old_quick in zip(self.paths, self.prints, self.quick):
            try:
                st = os.stat(path)
            except OSError:
                # Gone is not a change by itself: its last print is kept, so
                # only a different file coming back counts. Never seen: any
                # file that comes is a change.
                self.absent[path] = None if old is _UNSEEN else old
                continue
            current.append(_quick_print(st))
            paths.append(path)
            prints.append(old)
            quick.append(old_quick)
        self.paths, self.prints, self.quick = paths, prints, quick
        self.reindex_racy()
        return current

    def compare(self, quick: "list[object]", now: int) -> "list[str]":
        """Take the new prints; return the paths that really changed."""
        changed = []
        for i, (new_quick, old_quick) in enumerate(zip(quick, self.quick)):
            if new_quick == old_quick:
                continue
            path = self.paths[i]
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone since: the next scan sets it aside
            new = _fingerprint(st)
            old = self.prints[i]
            if new != old:
                if old is not _UNSEEN or self.touched_since(st):
                    changed.append(path)
                self.prints[i] = new
                self.note_racy(path, i, new, now)
        self.quick = quick
        return changed

    def touched_since(self, st: "os.stat_result") -> bool:
        """First sight: written or renamed after the reference time?"""
        # The clock is read after the stat: a write that lands between the
        # scan's start and this stat is not from the future.
        now = time.time_ns()
        return self.since < st.st_mtime_ns <= now or self.since < st.st_ctime_ns <= now

    def check_absent(self, now: int) -> "list[str]":
        changed = []
        for path, old in list(self.absent.items()):
            try:
                st = os.stat(path)
            except OSError:
                continue  # still not there
            del self.absent[path]
            new = _fingerprint(st)
            self.paths.append(path)
            self.prints.append(new)
            self.quick.append(_quick_print(st))
            if new != old:
                changed.append(path)
                self.note_racy(path, len(self.paths) - 1, new, now)
        return changed

    def note_racy(
        self, path: str, i: int, new: "tuple[int, int, int]", now: int
    ) -> None:
        if now - _RACY_NS < new[0] <= now and new[1] <= _RACY_MAX_BYTES:
            self.racy[path] = (i, new, _read(path))
        else:
            self.racy.pop(path, None)

    def check_racy(self, now: int, changed: "list[str]") -> "list[str]":
        """Compare the contents of files written too recently to trust stat."""
        result = []
        seen = set(changed)
        for path, (i, fingerprint, content) in list(self.racy.items()):
            if i >= len(self.prints) or self.prints[i] != fingerprint:
                del self.racy[path]  # stat saw a change: compare() handled it
                continue
            if path not in seen:
                now_content = _read(path)
                if now_content != content:
                    self.racy[path] = (i, fingerprint, now_content)
                    result.append(path)
            if now - fingerprint[0] > _RACY_NS:
                del self.racy[path]
        return result

    def reindex_racy(self) -> None:
        """The paths moved in the list: find the racy ones again (few)."""
        for path, (_, fingerprint, content) in list(self.racy.items()):
            try:
                self.racy[path] = (self.paths.index(path), fingerprint, content)
            except ValueError:
                del self.racy[path]

    # -- what to watch ----------------------------------------------------

    def refresh_paths(self) -> None:
        modules = sys.modules
        # A cheap sign that sys.modules changed: its size and last key. A module
        # replaced in place under the same name keeps both, but keeps its file.
        try:
            key: Optional[tuple[int, object]] = (len(modules), next(reversed(modules)))
        except (RuntimeError, StopIteration):
            key = None  # another thread imported between the two calls: rebuild
        rebuild = key is None or key != self.modules_key
        self.modules_key = key
        with self.lock:
            roots = list(self.roots)
            new_roots, self.roots_changed = self.roots_changed, False
        # A root that is no folder (a file, or not there yet) is one of the
        # paths the scan stats, so only a new watch() walks it again: stat it
        # once per scan. Becoming a folder changes its print: a restart.
        walked = roots if new_roots else [root for root in roots if root in self.dirs]
        if self.walk(walked) or rebuild or new_roots:
            self.rebuild(roots)

    def rebuild(self, roots: "list[str]") -> None:
        old = dict(zip(self.paths, self.prints))
        old_quick = dict(zip(self.paths, self.quick))
        wanted = _module_paths()
        for root in roots:
            if root not in self.dirs:
                wanted[root] = None
        for folder in self.dirs.values():
            wanted.update(dict.fromkeys(folder.files))
        for path, fingerprint in old.items():
            if path not in wanted and fingerprint is not _UNSEEN:
                self.gone[path] = fingerprint
        for path in list(self.absent):
            if path not in wanted:
                self.gone[path] = self.absent.pop(path)
        while len(self.gone) > 10_000:
            del self.gone[next(iter(self.gone))]
        self.paths = [path for path in wanted if path not in self.absent]
        self.prints = [
            old[path] if path in old else self.gone.pop(path, _UNSEEN)
            for path in self.paths
        ]
        self.quick = [old_quick.get(path) for path in self.paths]
        self.reindex_racy()

    def walk(self, roots: "list[str]") -> bool:
        """Relist the watched folders that changed; True if a listing did."""
        now = time.time_ns()
        seen: set[tuple[int, int]] = set()
        changed = False
        live: set[str] = set()
        for root in roots:
            changed |= self.walk_dir(root, now, seen, live)
        for path in list(self.dirs):
            if path not in live:
                del self.dirs[path]
                changed = True
        return changed

    def walk_dir(
        self,
        path: str,
        now: int,
        seen: "set[tuple[int, int]]",
        live: "set[str]",
        new: bool = False,
    ) -> bool:
        """Walk ``path``; ``new`` if it appeared in a folder listed before."""
        try:
            st = os.stat(path)
        except OSError:
            return False  # not there (yet): watched for its appearance
        if not _is_dir(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            return False  # a file, or a folder already walked (symlink loop)
        seen.add((st.st_dev, st.st_ino))
        live.add(path)
        fingerprint = (st.st_mtime_ns, st.st_size, st.st_ino)
        folder = self.dirs.get(path)
        if folder is None and not new:
            # First sight (see "Carrying the reference time"): a folder moved
            # here since then, its ctime new but not its mtime (its entries
            # are as they were), brings files that are new here.
            new = st.st_mtime_ns <= self.since and self.touched_since(st)
        changed = False
        known: Optional[set[str]] = None  # the subfolders before a new listing
        if (
            folder is None
            or folder.print != fingerprint
            or now - st.st_mtime_ns < _RACY_NS
        ):
            known = None if folder is None else set(folder.dirs)
            changed = self.list_dir(path, fingerprint, new=new)
            folder = self.dirs[path]
        for sub in folder.dirs:
            # A folder seen for the first time with its parent (the first
            # scan, a new watch()) holds files that were there before.
            fresh = new or (known is not None and sub not in known)
            changed |= self.walk_dir(sub, now, seen, live, new=fresh)
        return changed

    def list_dir(
        self, path: str, fingerprint: "tuple[int, int, int]", new: bool
    ) -> bool:
        folder = _Dir(fingerprint)
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    name = entry.name
                    if _is_ignored(name):
                        continue
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        continue  # vanished while listing: its folder changes again
                    if is_dir:
                        if name not in _IGNORED_DIRS:
                            folder.dirs.append(entry.path)
                    else:
                        folder.files.append(entry.path)
        except OSError:
            pass  # unreadable folder: watch what it held before, if anything
        old = self.dirs.get(path)
        self.dirs[path] = folder
        before = set() if old is None else set(old.files)
        for file in folder.files:
            if file not in before and (old is not None or new):
                # A new file in a watched folder is a change even if its mtime
                # is old (a ``mv`` keeps it): mark it as known to be absent.
                self.gone.setdefault(file, None)
        return old is None or old.files != folder.files or old.dirs != folder.dirs


def _module_paths() -> "dict[str, None]":
    """The files of all modules, in import order, ``.pyc`` mapped to source."""
    paths: dict[str, None] = {}
    # A copy: another thread may import while we walk. list() of a dict view
    # runs in C without releasing the GIL, so it sees one consistent state.
    for module in list(sys.modules.values()):
        try:
            path = _module_path(module)
        except Exception:
            continue  # a lazy module whose attributes raise: nothing to watch
        if path is not None:
            paths[path] = None
    return paths


def _module_path(module: object) -> "str | None":
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path or "\0" in path:
        return None
    archive = getattr(getattr(module, "__loader__", None), "archive", None)
    if isinstance(archive, str):
        return archive  # a module in a zip file: watch the zip
    if path.endswith(".pyc"):
        folder, name = os.path.split(path)
        if os.path.basename(folder) == "__pycache__":
            path = os.path.join(os.path.dirname(folder), name.partition(".")[0] + ".py")
    if not os.path.isabs(path):
        path = os.path.join(_state.cwd, path)
    return path


def _is_dir(mode: int) -> bool:
    return mode & 0o170000 == 0o040000  # stat.S_ISDIR without importing stat


def _is_ignored(name: str) -> bool:
    return (
        name in _IGNORED_NAMES
        or name.startswith(".#")
        or name.endswith(_IGNORED_SUFFIXES)
    )


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_RACY_MAX_BYTES + 1)
    except OSError:
        return b""


def _relative(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except (ValueError, OSError):
        return path  # another drive (Windows), or the working directory is gone
    return path if relative.startswith(".." + os.sep) else relative


def _announce(changed: "list[str]") -> None:
    """The one line per restart, which must never be lost; see "Logging"."""
    more = len(changed) - 1
    message = "%s modified; restarting"
    args: tuple[object, ...] = (_relative(changed[0]),)
    if more:
        message = "%s and %d other file%s modified; restarting"
        args += (more, "s" * (more > 1))
    if _log.hasHandlers() and _log.isEnabledFor(logging.INFO):
        _log.info(message, *args)
    elif _log.level == logging.NOTSET:
        # No handler would emit it: the program configured no logging, or only
        # from WARNING up (basicConfig()'s default). A restart is never silent,
        # unless the reloader logger itself was told to be (-q).
        _write_stderr("reloader: " + message % args + "\n")


def _write_stderr(text: str) -> None:
    stream = sys.stderr
    if stream is not None:
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr is closed: there is nowhere left to say it


# ---------------------------------------------------------------------------
# The restart.
#
# Re-executing the same command line
# ---------------------------------------------------------------------------
# Python strips its own options from sys.argv, and "python -m pkg.mod" leaves
# sys.argv[0] as the module's file, so re-running sys.argv would change the
# mode: sys.path[0] becomes the file's folder instead of the working
# directory, relative imports break, __spec__ is None. Python 3.10+ keeps the
# real command line in sys.orig_argv, which covers every mode (-m, a path, a
# folder or zip, -c) and every option (-u, -X, -W, -O, -B, -E, -I). On 3.9 it
# is rebuilt from sys.flags, sys.warnoptions, sys._xoptions and
# __main__.__spec__: a spec named "__main__" means a folder or a zip, run by
# its path; any other spec means -m. Under the wrapper, the program replaces
# __main__ and sys.argv, so main() records the command line before it starts
# the program. The interpreter is sys.executable, the one running now, and
# the restart runs from the directory the process started in, as the command
# line's relative paths assume.


def _program_source() -> str:
    """Where the program came from if it cannot be run again, else ''."""
    first = sys.argv[0] if sys.argv else ""
    if first == "-" or (first == "" and not _stdin_is_a_terminal()):
        # "python -" or "python < app.py": read to its end, so the new process
        # would find nothing to run and exit at once, silently.
        return "standard input"
    if sys.version_info < (3, 10) and first in ("-c", ""):  # drop with 3.9
        # sys.orig_argv is missing and sys.argv keeps no copy of the code.
        return "-c" if first == "-c" else "the interactive prompt"
    return ""


def _stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False  # closed: no prompt anyone types into


def _command_line() -> "list[str]":
    """The command line that started this process, to run it again."""
    if sys.version_info >= (3, 10):  # sys.orig_argv; drop with 3.9
        return [sys.executable, *sys.orig_argv[1:]]
    return _command_line_39()


def _command_line_39() -> "list[str]":
    """Rebuild the command line on Python 3.9, which lacks sys.orig_argv."""
    flags = sys.flags
    options = []
    if flags.isolated:
        options.append("-I")
    else:
        options += ["-E"] * bool(flags.ignore_environment)
        options += ["-s"] * bool(flags.no_user_site)
    options += ["-S"] * bool(flags.no_site)
    options += ["-B"] * bool(flags.dont_write_bytecode)
    options += ["-O"] * flags.optimize
    options += ["-b"] * flags.bytes_warning
    options += ["-d"] * flags.debug
    options += ["-v"] * flags.verbose
    options += ["-q"] * bool(flags.quiet)
    options += ["-i"] * bool(flags.inspect)
    if type(getattr(sys.stdout, "buffer", None)).__name__ == "FileIO":
        options.append("-u")  # -u leaves stdout's binary layer unbuffered
    options += [f"-W{option}" for option in sys.warnoptions]
    for key, value in getattr(sys, "_xoptions", {}).items():
        options.append(f"-X{key}" if value is True else f"-X{key}={value}")
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    args = list(sys.argv)
    if spec is not None and spec.name != "__main__":
        name = spec.name
        if name.endswith(".__main__"):
            name = name[: -len(".__main__")]
        return [sys.executable, *options, "-m", name, *args[1:]]
    return [sys.executable, *options, *args]


def _reexecute(argv: "list[str]", cwd: str, sockets: "_Sockets", since: int) -> None:
    """Re-execute ``argv`` from ``cwd``; return only if that failed.

    ``since`` is the next run's reference time; see "Carrying the reference
    time across a restart".
    """
    _flush_output()
    _clear_alarms()
    _restore_echo()
    try:
        if sys.platform == "win32":
            _spawn_and_exit(argv, cwd, since)
        else:
            _exec(argv, cwd, since, sockets)
    finally:
        os.environ.pop(_SINCE_ENV, None)
        os.environ.pop(_SOCKETS_ENV, None)
        sockets.take_back()


def _exec(argv: "list[str]", cwd: str, since: int, sockets: "_Sockets") -> None:
    """``execv`` from ``cwd``, or spawn where threads forbid it; log a failure."""
    try:
        previous: Optional[str] = os.getcwd()
    except OSError:
        previous = None  # deleted: there is no directory to come back to
    try:
        os.chdir(cwd)
    except OSError as e:
        _log.error("cannot restart: cannot go back to the start directory (%s)", e)
        return
    made_private = _close_on_exec(keep=sockets.hand_over())
    try:
        os.environ[_SINCE_ENV] = f"exec:{os.getpid()}:{since}"
        _flush_output()  # again: other threads may have printed meanwhile
        os.execv(argv[0], argv)
    except (OSError, ValueError, TypeError) as e:
        # ValueError, TypeError: an empty or None sys.executable (embedded).
        import errno

        if isinstance(e, OSError) and e.errno == getattr(errno, "ENOTSUP", None):
            # macOS refuses execv while other threads run.
            sockets.take_back()
            _spawn_and_exit(argv, cwd, since)
        else:
            _log.error("cannot restart %s: %s; still running and watching", argv[0], e)
    finally:
        # Still here: the program's descriptors are as it left them.
        for fd in made_private:
            try:
                os.set_inheritable(fd, True)
            except OSError:
                pass  # closed meanwhile: nothing to give back
        if previous is not None:
            try:
                os.chdir(previous)
            except OSError:
                pass  # the folder went away since: the program will tell


def _flush_output() -> None:
    """Flush stdout, stderr and every logging handler: no output is lost."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # closed, or a broken pipe: the reader is gone
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            try:
                handler.flush()
            except (OSError, ValueError):
                pass  # closed, or its stream gone: nothing more can reach it


def _clear_alarms() -> None:
    """A pending setitimer alarm survives execv and would kill the new process."""
    signal = sys.modules.get("signal")
    if signal is None or not hasattr(signal, "setitimer"):
        return
    for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
        signal.setitimer(timer, 0)


def _restore_echo() -> None:
    """Turn terminal echo back on if pdb or getpass left it off."""
    if sys.platform == "win32":
        return  # the console's echo does not outlive the process
    import termios

    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return
        attributes = termios.tcgetattr(fd)
        if not attributes[3] & termios.ECHO:
            attributes[3] |= termios.ECHO | termios.ICANON
            termios.tcsetattr(fd, termios.TCSANOW, attributes)
    except (AttributeError, OSError, ValueError, termios.error):
        pass  # no usable stdin: nothing to restore


# Ending a run
# ---------------------------------------------------------------------------
# A restart ends the run as an exit would, and so does the wrapper when the
# program ends and when the wrapper itself ends: atexit handlers, then the
# program's child processes, then its output. After execv the new image knows
# nothing of the old one's children: they would run on unmanaged, and become
# zombies that nobody reaps when they end. So the children and theirs are
# found (Linux: /proc, each task's "children" list, else every process's
# parent; elsewhere on POSIX: ``ps``; multiprocessing's own list everywhere),
# asked to stop with SIGTERM, killed after _CHILD_GRACE, and the direct ones
# reaped. A child that leads its own process group (``start_new_session``)
# gets the signal for its whole group, which reaches the grandchildren it
# left behind. A child that ignores SIGTERM (multiprocessing's resource
# tracker does) is killed at once: waiting could not help. An atexit handler
# that waits for a child (multiprocessing's joins its non-daemon processes)
# would hold the restart for ever, so after _CHILD_GRACE the children get
# SIGTERM while the handlers still run. The end comes only once the restart
# can happen (the interpreter and the start directory exist): a run ended
# for a restart that then fails would go on without its atexit handlers.

_CHILD_GRACE = 1.0  # seconds between SIGTERM and SIGKILL


def _can_reexecute(argv: "list[str]", cwd: str) -> bool:
    """Whether the interpreter and the start directory are there."""
    first = argv[0] if argv else None
    return (
        isinstance(first, str)
        and bool(first)
        and os.access(first, os.X_OK)
        and os.path.isdir(cwd)
    )


def _end_run() -> None:
    """Run the atexit handlers, stop the children, flush the output."""
    # First too: logging's atexit handler flushes stderr, which would put
    # what is buffered there before what stdout holds.
    _flush_output()
    if sys.platform == "win32" or not _descendants():
        _run_atexit()  # no child for a handler to wait on: no timer thread
    else:
        hurry = threading.Timer(_CHILD_GRACE, _signal_children)
        hurry.daemon = True
        hurry.start()
        try:
            _run_atexit()
        finally:
            hurry.cancel()
    _stop_children()
    _flush_output()


def _run_atexit() -> None:
    import atexit

    try:
        atexit._run_exitfuncs()
    except (Exception, SystemExit):
        # 3.9 and 3.10 raise the last handler's error again after printing
        # it with its traceback, as an exit does: nothing more to say.
        pass


def _signal_children() -> None:
    """Ask every child to stop; the atexit handlers run too long."""
    if sys.platform == "win32":
        return  # terminating is killing there: _stop_children does it
    import signal

    _send(_descendants(), signal.SIGTERM)


def _stop_children(grace: float = _CHILD_GRACE) -> int:
    """Stop this process's children and theirs; return how many there were.

    SIGTERM first, SIGKILL after ``grace`` seconds (at once for 0), then wait
    until they are gone, the direct children reaped. Logs one line if there
    were any.
    """
    if sys.platform == "win32":
        count = _stop_children_win32(grace)
    else:
        count = _stop_children_posix(grace)
    if count:
        _log.info("stopped %d child process%s", count, "es" * (count > 1))
    return count


def _stop_children_posix(grace: float) -> int:
    if sys.platform == "win32":
        return 0  # no such signals there: _stop_children_win32
    import signal

    found = _descendants()
    if not found:
        return 0
    if grace > 0:
        _send(found, signal.SIGTERM)
        left = _wait_gone(found, grace)
    else:
        left = found
    if left:
        # Also any child started meanwhile, by a child's SIGTERM handler say.
        left += [pid for pid in _descendants() if pid not in left]
        _send(left, signal.SIGKILL)
        left = _wait_gone(left, 5.0)
        if left:
            _log.warning("child processes %s did not end when killed", left)
    return len(found)


def _send(pids: "list[int]", signum: int) -> None:
    """Send ``signum`` to each pid, to the whole group of a group leader."""
    if sys.platform == "win32":
        return
    import signal

    own_group = os.getpgrp()
    for pid in pids:
        sig = signum
        if sig == signal.SIGTERM and _ignores_sigterm(pid):
            sig = signal.SIGKILL
        try:
            if pid != own_group and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except OSError:
            pass  # gone already, or no longer ours (reaped and reused)


def _ignores_sigterm(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << 14))  # SIGTERM=15
    except (OSError, ValueError, IndexError):
        pass  # no /proc, or gone: SIGTERM it is
    return False


def _wait_gone(pids: "list[int]", timeout: float) -> "list[int]":
    """Wait up to ``timeout`` s for ``pids`` to end; return those still there."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    left = [pid for pid in pids if not _gone(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        left = [pid for pid in left if not _gone(pid)]
    return left


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended; reaps it if it is a child of this process."""
    if sys.platform == "win32":
        return True  # not called there: _stop_children_win32
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:
        pass  # a grandchild: its own parent, or init, reaps it
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        pass  # no /proc here: ask the system below
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # there, but not ours to signal
    return False


def _descendants() -> "list[int]":
    """The pids of this process's children and theirs, parents first."""
    me = os.getpid()
    found: dict[int, None] = {}
    children = _children_lister()
    todo = [me]
    while todo:
        for pid in children(todo.pop(0)):
            if pid not in found and pid != me:
                found[pid] = None
                todo.append(pid)
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None:
        # Where the process tree cannot be read, at least these are known.
        for process in multiprocessing.active_children():
            if process.pid is not None:
                found.setdefault(process.pid, None)
    return list(found)


def _children_lister() -> "Callable[[int], list[int]]":
    """How to list a process's children here: the cheapest way that works."""
    if os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        return _children_from_tasks
    parents = _parent_map()
    return lambda pid: parents.get(pid, [])


def _children_from_tasks(pid: int) -> "list[int]":
    """Linux with CONFIG_PROC_CHILDREN: each thread's children, in /proc."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # ended meanwhile
    children = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                children += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            continue  # the thread or the process ended meanwhile
    return children


def _parent_map() -> "dict[int, list[int]]":
    """Every process's children: from /proc where it exists, else ``ps``."""
    pairs: list[tuple[int, int]] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        names = []
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            pairs.append((int(name), ppid))
    if not pairs:
        pairs = _ps_pairs()
    parents: dict[int, list[int]] = {}
    for pid, ppid in pairs:
        parents.setdefault(ppid, []).append(pid)
    return parents


def _ps_pairs() -> "list[tuple[int, int]]":
    """(pid, ppid) of every process, from ``ps`` (macOS, the BSDs)."""
    import subprocess

    try:
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid="],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        _log.warning("cannot list child processes: %s", e)
        return []
    pairs = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
            pairs.append((int(fields[0]), int(fields[1])))
    return pairs


def _stop_children_win32(grace: float) -> int:
    """Windows: multiprocessing's children only (no process tree to read)."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return 0
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(grace)
    return len(children)


def _close_on_exec(keep: "set[int]") -> "list[int]":
    """Mark every descriptor above 2 close-on-exec, except ``keep``.

    Returns those that were inheritable, to undo it if the restart fails.
    """
    changed = []
    for fd in _open_fds():
        if fd > 2 and fd not in keep:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
                    changed.append(fd)
            except OSError:
                pass  # closed since it was listed: nothing to leak
    return changed


def _open_fds() -> "Iterable[int]":
    if sys.platform == "win32":
        return ()  # handles are not inherited unless asked for
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return [int(name) for name in os.listdir(folder)]
        except (OSError, ValueError):
            continue  # not this system's folder
    try:
        limit = os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        limit = 1024
    return range(3, min(limit, 65536))


def _spawn_and_exit(argv: "list[str]", cwd: str, since: int) -> None:
    """Run ``argv`` as a new process, wait for it, exit with its status.

    Used where execv cannot keep the process (Windows, macOS with threads):
    a console or a parent waiting on this process sees the new one's end.
    Returns only if the new process could not be started.
    """
    import subprocess

    os.environ[_SINCE_ENV] = f"spawn:{os.getpid()}:{since}"
    os.environ.pop(_SOCKETS_ENV, None)
    _flush_output()
    try:
        process = subprocess.Popen(argv, cwd=cwd)
    except (OSError, ValueError, TypeError) as e:
        _log.error("cannot restart %s: %s; still running and watching", argv[0], e)
        return
    # From here on this process must end, whatever happens: two copies of
    # the program must never run side by side.
    try:
        _close_listening_sockets()  # the new process binds as it starts
    finally:
        status = _wait(process)
        try:
            _flush_output()
        finally:
            os._exit(status)


def _wait(process: "subprocess.Popen[bytes]") -> int:
    """The exit status of ``process``, as this process should exit with it."""
    status = None
    while status is None:
        try:
            status = process.wait()
        except KeyboardInterrupt:
            continue  # Ctrl-C reached the new process too: its end decides
    if status < 0:
        return 128 - status  # killed by signal -status, as a shell reports it
    if status >= 1 << 31:
        return status - (1 << 32)  # Windows' unsigned codes (0xC000013A)
    return status


def _close_listening_sockets() -> None:
    socket = sys.modules.get("socket")
    accepting = getattr(socket, "SO_ACCEPTCONN", None)
    if socket is None or accepting is None:
        return
    import gc

    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.fileno() >= 0:
            try:
                if not obj.getsockopt(socket.SOL_SOCKET, accepting):
                    continue
                # shutdown() wakes a thread blocked in accept(); close() alone
                # would leave the port bound until accept returns.
                obj.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile, or refused by the system: close it
            try:
                obj.close()
            except OSError:
                pass  # its descriptor was closed behind its back: nothing bound


# ---------------------------------------------------------------------------
# Keeping listening sockets across restarts.


class _Sockets:
    """The listening sockets kept open through ``execv``.

    The hand-over is an environment variable, RELOADER_SOCKETS, holding JSON:
    the pid (execv keeps it, so a child process of the program can tell the
    variable is not its own) and, per socket, the key of the address that was
    asked for, the descriptor and the address it is bound to.
    """

    def __init__(self, own_environment: bool) -> None:
        self.lock = threading.Lock()
        self.kept: list[tuple[str, socket.socket]] = []
        self.offered: dict[str, list[tuple[int, Any]]] = {}
        # The offers that hand_over() adopted, passed on but not asked for:
        # still this run's to claim if the restart fails.
        self.unclaimed: dict[str, list[socket.socket]] = {}
        self.value = os.environ.get(_SOCKETS_ENV, "")
        if own_environment:
            os.environ.pop(_SOCKETS_ENV, None)

    def get(self, address: "Any", kwargs: "dict[str, Any]") -> "socket.socket":
        import socket

        key = _socket_key(address, kwargs)
        with self.lock:
            self.load()
            # Each call gets a socket of its own, as from create_server(): the
            # n-th call for an address adopts the n-th socket handed over for
            # it, so two servers that both ask for port 0 keep two ports.
            offers = self.offered.get(key)
            offer = offers.pop(0) if offers else None
            spares = self.unclaimed.get(key)
            sock = spares.pop(0) if spares else None
        if sock is None and offer is not None:
            sock = self.adopt(key, *offer)
        if sock is None:
            try:
                sock = socket.create_server(address, **kwargs)
            except OSError as e:
                import errno

                # An edited address (another host, other options) on a port
                # that a socket handed over for the old one still holds.
                if e.errno != errno.EADDRINUSE or not self.release_unclaimed():
                    raise
                sock = socket.create_server(address, **kwargs)
        with self.lock:
            self.kept = [(k, s) for k, s in self.kept if s.fileno() >= 0]
            self.kept.append((key, sock))
        return sock

    def release_unclaimed(self) -> bool:
        """Close the sockets handed over that no call has claimed yet.

        Only those that check out as ours: the others may be any open file.
        Returns True if one was closed. A later call for one of them gets a
        new socket.
        """
        with self.lock:
            offers = self.take_offers()
            spares = [sock for found in self.unclaimed.values() for sock in found]
            self.unclaimed = {}
        for key, (fd, bound) in offers:
            adopted = self.adopt(key, fd, bound)
            if adopted is not None:
                spares.append(adopted)
        for sock in spares:
            sock.close()
        return bool(spares)

    def load(self) -> None:
        """Read the hand-over the first time it is needed; hold the lock."""
        if self.value:
            self.offered = self.parse(self.value)
            self.value = ""

    def take_offers(self) -> "list[tuple[str, tuple[int, Any]]]":
        """Take every offer not adopted yet out of the offers; hold the lock."""
        self.load()
        offers = [(k, o) for k, found in self.offered.items() for o in found]
        self.offered = {}
        return offers

    def parse(self, value: str) -> "dict[str, list[tuple[int, Any]]]":
        import json

        offered: dict[str, list[tuple[int, Any]]] = {}
        try:
            data = json.loads(value)
            if data["pid"] != os.getpid():
                raise ValueError(f"written by process {data['pid']}, not this one")
            for k, fd, bound in data["sockets"]:
                if not isinstance(fd, int) or not 2 < fd < 1 << 30:
                    raise ValueError(f"{fd!r} is no descriptor to hand over")
                offered.setdefault(str(k), []).append((fd, bound))
        except (ValueError, KeyError, TypeError) as e:
            _log.warning("ignoring %s=%r: %s", _SOCKETS_ENV, value, e)
            return {}
        for offers in offered.values():
            for fd, _ in offers:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass  # not open: adopt() will say so
        return offered

    def adopt(self, key: str, fd: int, bound: "Any") -> "socket.socket | None":
        import socket

        try:
            sock = socket.socket(fileno=fd)
        except OSError as e:
            _log.warning("not adopting socket fd %d for %s: %s", fd, key, e)
            return None
        family = _address_family(key)
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            name = sock.getsockname()
        except OSError as e:
            listening, name = 0, e
        if (
            not listening
            or sock.type != socket.SOCK_STREAM
            or (family is not None and sock.family != family)
            or _jsonable(name) != bound
        ):
            sock.detach()  # not ours to close: it may be another open file
            _log.warning(
                "not adopting socket fd %d for %s: not a listening socket bound there",
                fd,
                key,
            )
            return None
        # Blocking, as create_server() makes it: the previous run may have made
        # it non-blocking (asyncio, Tornado do), a flag execv keeps with the
        # descriptor, while the new socket object assumes the default.
        sock.settimeout(socket.getdefaulttimeout())
        return sock

    def hand_over(self) -> "set[int]":
        """Make the kept sockets inheritable and describe them for execv.

        The sockets handed over to this run that it never asked for (a run
        that failed at import, say) are passed on too, so the port stays
        open, and the same, for the run that asks again.
        """
        import json

        with self.lock:
            offers = self.take_offers()
        for key, (fd, bound) in offers:
            unclaimed = self.adopt(key, fd, bound)
            if unclaimed is not None:
                with self.lock:
                    self.unclaimed.setdefault(key, []).append(unclaimed)
        sockets = []
        with self.lock:
            for key, sock in self.all_kept():
                fd = sock.fileno()
                if fd < 0:
                    continue
                try:
                    sock.set_inheritable(True)
                    sockets.append([key, fd, _jsonable(sock.getsockname())])
                except OSError:
                    continue  # closed or broken: the next run binds afresh
        if sockets:
            value = {"pid": os.getpid(), "sockets": sockets}
            os.environ[_SOCKETS_ENV] = json.dumps(value)
        return {fd for _, fd, _ in sockets}

    def take_back(self) -> None:
        """After a failed execv, or to spawn: the sockets are ours alone again."""
        os.environ.pop(_SOCKETS_ENV, None)
        with self.lock:
            for _, sock in self.all_kept():
                try:
                    sock.set_inheritable(False)
                except OSError:
                    pass  # already closed

    def all_kept(self) -> "list[tuple[str, socket.socket]]":
        """The sockets asked for, then the unclaimed ones; hold the lock."""
        spares = [(k, sock) for k, found in self.unclaimed.items() for sock in found]
        return self.kept + spares


def _socket_key(address: "Any", kwargs: "dict[str, Any]") -> str:
    import json

    return json.dumps([_jsonable(address), sorted(kwargs.items())], default=str)


def _address_family(key: str) -> "int | None":
    import json
    import socket

    address, kwargs = json.loads(key)
    family = dict(kwargs).get("family")
    if isinstance(family, int):
        return family
    if isinstance(address, list):
        return socket.AF_INET6 if ":" in str(address[0]) else None
    return getattr(socket, "AF_UNIX", None) if isinstance(address, str) else None


def _jsonable(value: "Any") -> "Any":
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


# ---------------------------------------------------------------------------
# The command line.
#
# Two copies of this module
# ---------------------------------------------------------------------------
# "python -m reloader" runs this file as __main__; the program's own
# "import reloader" then makes a second module object, with its own hooks and
# state. So the __main__ guard at the bottom imports the importable copy by
# its real name (__spec__.name, so pkg._vendor.reloader works too) and runs
# main() there: one state, seen by both the wrapper and the program. Only
# that copy takes the RELOADER_* variables out of the environment.

_USAGE = """\
python -m reloader [options] -m module [args...]
       python -m reloader [options] path/to/script.py [args...]
       python -m reloader [options] path/to/dir_or_zip [args...]"""

_VALUE_OPTIONS = ("--check-time", "--watch", "--grace")

# A graceful restart under the wrapper
# ---------------------------------------------------------------------------
# The program runs on the main thread, the watcher on its own. On a change
# the watcher interrupts the main thread as Ctrl-C would: SIGINT sent to that
# thread (so a blocking call there wakes up). The wrapper's handler (below)
# raises KeyboardInterrupt there, or calls the program's own handler if it
# set one (uvicorn's shuts the server down). The program's finally blocks
# and its framework's shutdown run; the watcher waits up to --grace seconds
# for the program to return, and the main thread then restarts. A program
# that does not return in time is restarted by the watcher thread as it is.
# While the restart is under way, every SIGINT is the restart's: a Ctrl-C
# pressed then is taken for it, and one more after the restart ends it all.
#
# Signals under the wrapper
# ---------------------------------------------------------------------------
# Ctrl-C and SIGTERM must end the wrapper whatever the program does with
# them, and servers catch them: Flask's app.run() and Django's runserver
# catch KeyboardInterrupt and return; uvicorn and aiohttp install their own
# handlers (uvicorn raises the signal again once it has shut down; aiohttp's
# goes through asyncio's wakeup descriptor, then returns normally). So the
# wrapper's handler stays installed for the whole run and the program's
# handlers are chained behind it: main() replaces signal.signal() and
# signal.getsignal() for SIGINT and SIGTERM with versions that record what
# the program asks for and report it back, as if it were installed. The
# handler notes the exit status (130, 143), then calls the program's
# handler, or raises KeyboardInterrupt if it has none. When the program
# returns, however it does, the wrapper ends with that status. A signal
# that the program's handler, removed since, passes on (uvicorn) is the
# same press; any other is a second one, and ends everything at once. A
# process forked by the program gets Python's own functions and its
# handlers back.


def _interrupt_main_thread() -> None:
    import signal

    main = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and main is not None:
        # To that thread, so a sleep or a select there is interrupted.
        signal.pthread_kill(main, signal.SIGINT)
    else:
        import _thread

        _thread.interrupt_main()


class _Signals:
    """SIGINT, SIGTERM and SIGHUP under the wrapper; see "Signals under"."""

    def __init__(self) -> None:
        import signal

        # Any: main() replaces two of its functions, which mypy forbids.
        self.module: Any = signal
        self.real_signal = signal.signal
        self.real_getsignal = signal.getsignal
        self.defaults: dict[int, Any] = {
            signal.SIGINT: signal.default_int_handler,
            signal.SIGTERM: signal.SIG_DFL,
        }
        self.hangup: Optional[int] = getattr(signal, "SIGHUP", None)
        self.installed: set[int] = set()
        self.wanted: dict[int, Any] = {}  # the program's handlers
        self.ending = 0  # the exit status a signal asked for: 130, 143
        self.answered: Any = None  # the program's handler of the last signal
        self.restart_dispatched = False  # the program's handler got the restart's

    def install(self) -> None:
        """Install the handlers, from the main thread; else leave Python's."""
        signal = self.module
        for signum in [*self.defaults, self.hangup]:
            if signum is None:
                continue
            try:
                if self.real_getsignal(signum) is signal.SIG_IGN:
                    if signum != signal.SIGINT:
                        continue  # nohup: ignored it stays
                    # A background job: the user's SIGINT stays ignored (and
                    # the program sees it so), a restart's still interrupts.
                    self.defaults[signum] = signal.SIG_IGN
                self.real_signal(signum, self.handle)
            except (ValueError, OSError):
                return  # main() called from another thread: Python's defaults
            self.installed.add(signum)
        signal.signal = self.program_signal
        signal.getsignal = self.program_getsignal

    def can_interrupt(self) -> bool:
        return self.module.SIGINT in self.installed

    def ignore_for_exec(self, before: bool) -> None:
        """Around execv: a signal ignored at the start stays so after it.

        execv keeps an ignored signal ignored but resets a handled one; the
        handler is put back if execv failed.
        """
        for signum, default in self.defaults.items():
            if default is self.module.SIG_IGN and signum in self.installed:
                try:
                    self.real_signal(signum, default if before else self.handle)
                except (ValueError, OSError):
                    pass  # not the main thread: execv resets it to the default

    def program_signal(self, signalnum: int, handler: "Any") -> "Any":
        """signal.signal() for the program: its handler is chained to ours."""
        signum = int(signalnum)
        if signum not in self.installed or signum not in self.defaults:
            return self.real_signal(signalnum, handler)
        if not callable(handler) and handler not in (
            self.module.SIG_IGN,
            self.module.SIG_DFL,
        ):
            raise TypeError(
                "signal handler must be signal.SIG_IGN, signal.SIG_DFL, "
                "or a callable object"
            )
        previous = self.program_getsignal(signum)
        self.real_signal(signum, self.handle)  # raises where signal.signal would
        if handler is self.defaults[signum] or handler == self.handle:
            self.wanted.pop(signum, None)
        else:
            self.wanted[signum] = handler
        return previous

    def program_getsignal(self, signalnum: int) -> "Any":
        signum = int(signalnum)
        if signum not in self.installed or signum not in self.defaults:
            return self.real_getsignal(signalnum)
        return self.wanted.get(signum, self.defaults[signum])

    def handle(self, signum: int, frame: "Any") -> None:
        if signum == self.hangup:
            _log.info("hangup (SIGHUP); restarting")
            threading.Thread(
                target=_state.restart, name="reloader-hangup", daemon=True
            ).start()
            return
        program = self.wanted.get(signum)
        if signum == self.module.SIGINT and _state.interrupting and not self.ending:
            # See "A graceful restart under the wrapper".
            if program is not None:
                self.restart_dispatched = True
                self.call(program, signum, frame)
            elif _state.program_running and not self.restart_dispatched:
                raise KeyboardInterrupt
            return
        if program is None and self.defaults[signum] is self.module.SIG_IGN:
            return  # ignored when the wrapper started: see install()
        if self.ending and program == self.answered:
            self.end_at_once()  # a second press
        # Else the first, or the first passed on by the handler that got it
        # to the one it put back (uvicorn's, to asyncio.run()'s, to ours).
        self.ending = 128 + signum
        self.answered = program
        if program is None:
            raise KeyboardInterrupt
        self.call(program, signum, frame)

    def call(self, handler: "Any", signum: int, frame: "Any") -> None:
        if handler is self.module.SIG_IGN:
            return
        if handler is self.module.SIG_DFL:
            raise KeyboardInterrupt  # death, but after the program's cleanup
        handler(signum, frame)

    def end_at_once(self) -> "NoReturn":
        """A second Ctrl-C: kill the children, flush and exit, now."""
        try:
            _stop_children(grace=0)
            _flush_output()
        finally:
            os._exit(self.ending)

    def after_fork_in_child(self) -> None:
        """Python's functions and the program's handlers, in a forked child.

        A worker forked by the program (a multiprocessing pool) would
        otherwise take the wrapper's SIGTERM handling, with a traceback.
        """
        self.module.signal = self.real_signal
        self.module.getsignal = self.real_getsignal
        for signum in self.installed:
            program = self.wanted.get(signum, self.defaults.get(signum))
            try:
                self.real_signal(signum, program or self.module.SIG_DFL)
            except (ValueError, OSError):
                pass  # forked from a thread that is not the main one: as is


class _Wrapper:
    """``python -m reloader``: parse, run the program, watch, run again."""

    def __init__(self, args: "list[str]") -> None:
        self.args = args
        self.signals = _Signals()
        # The program's module, globals and exception: see run_program().
        self.kept: list[object] = []

    def main(self) -> int:
        try:
            return self.run()
        except KeyboardInterrupt:
            return self.exit(self.signals.ending or 130)

    def run(self) -> int:
        options, target = self.parse()
        _configure_logging(options.quiet)
        self.signals.install()
        _state.signals = self.signals
        if _state.argv is None:
            _state.argv = _command_line()
        for path in options.watch:
            watch(path)
        interval = _check_interval(options.check_time)
        _state.grace = options.grace
        _state.start(None, interval, owner="wrapper")
        status = self.run_program(*target)
        if self.signals.ending:
            return self.exit(self.signals.ending)
        if _state.interrupting:
            _state.restart_now()  # returns only if the restart failed
            self.signals.restart_dispatched = False
        if options.until_success and status == 0:
            _state.stop()
            return 0
        _log.info("waiting for a change")
        wait()

    def release_program(self) -> None:
        """Let the exit free what the program made, as Python's would.

        Python clears ``__main__`` early in its finalization, with no frame
        running: a ResourceWarning then names no file, and objects freed
        then still find the modules they need (a multiprocessing pool's
        ``__del__`` does). The same happens here, with C callables only
        (a function here would be the frame a warning names).
        """
        import atexit

        for namespace in self.namespaces():
            atexit.register(dict.clear, namespace)
        atexit.register(list.clear, self.kept)

    def namespaces(self) -> "list[dict[str, Any]]":
        """The program's globals: its module's, and what -m's functions use."""
        found: dict[int, dict[str, Any]] = {}
        for item in self.kept:
            namespace = getattr(item, "__dict__", item)
            if not isinstance(namespace, dict) or isinstance(item, BaseException):
                continue
            found[id(namespace)] = namespace
            for value in list(namespace.values()):
                # runpy returns a copy of a -m program's globals; its
                # functions hold the real ones.
                real = getattr(value, "__globals__", None)
                if isinstance(real, dict) and real.get("__name__") == "__main__":
                    found[id(real)] = real
        return list(found.values())

    def exit(self, status: int) -> int:
        """End the wrapper for a signal: end the run first, as an exit would.

        Non-daemon threads of the program still running get ``--grace``
        seconds while the interpreter waits for them, then the process ends.
        """
        with _state.lock:
            _state.restarting = True  # no restart from here on
        _state.stop()
        _end_run()
        self.release_program()
        if any(
            thread.is_alive() and not thread.daemon
            for thread in threading.enumerate()
            if thread is not threading.current_thread()
        ):
            timer = threading.Timer(_state.grace, self.signals.end_at_once)
            timer.daemon = True
            timer.start()
        return status

    def parse(self) -> "tuple[Any, tuple[str, str, list[str]]]":
        import argparse

        parser = argparse.ArgumentParser(
            prog="python -m reloader",
            usage=_USAGE,
            description="Run a Python program; run it again when its source changes.",
            allow_abbrev=False,
        )
        parser.add_argument(
            "--until-success",
            action="store_true",
            help="stop after the program exits with status 0",
        )
        parser.add_argument(
            "--check-time",
            type=float,
            default=500,
            metavar="MS",
            help="poll interval in milliseconds (default 500)",
        )
        parser.add_argument(
            "--watch",
            action="append",
            default=[],
            metavar="PATH",
            help="also watch PATH, a file or a folder (repeatable)",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=2.0,
            metavar="SECONDS",
            help="how long a restart waits for the program to shut down "
            "(default 2; 0: restart at once)",
        )
        parser.add_argument(
            "-q", "--quiet", action="store_true", help="log only errors"
        )
        parser.add_argument("--version", action="version", version=__version__)
        prefix, target = _split_command_line(self.args)
        options = parser.parse_args(prefix)
        if target is None:
            parser.error("nothing to run: give -m module or a path")
        if not target[1]:
            parser.error("argument -m: expected a module name")
        try:
            _check_interval(options.check_time)
        except ValueError as e:
            parser.error(str(e))
        if not 0 <= options.grace < float("inf"):
            parser.error(f"--grace must be 0 or more seconds, not {options.grace!r}")
        return options, target

    def run_program(self, mode: str, name: str, args: "list[str]") -> int:
        """Run the program as ``python`` would; return its exit status.

        When it ends on its own, its run ends (atexit handlers, children,
        output; see "Ending a run") before the report of how it ended. Not
        while non-daemon threads of it run: an exit would wait for them.
        """
        sys.argv = [name, *args]
        label = f"-m {name}" if mode == "module" else _relative(name)
        _state.program_returned.clear()
        _state.program_running = True
        try:
            status, report = self.call_program(mode, name, label)
        finally:
            _state.program_running = False
            _state.program_returned.set()
            # Its handlers went with it: a Ctrl-C from now on is the wrapper's.
            self.signals.wanted.clear()
        if self.signals.ending or _state.interrupting:
            return status  # the caller ends the run: an exit, a restart
        if any(
            thread.is_alive() and not thread.daemon
            for thread in threading.enumerate()
            if thread is not threading.current_thread()
        ):
            _flush_output()
        else:
            _end_run()
        report()
        return status

    def call_program(
        self, mode: str, name: str, label: str
    ) -> "tuple[int, Callable[[], None]]":
        """Run the program; return its status and how to report its end.

        What the program made is kept in ``self.kept`` (its module, its
        globals, the exception that ended it), so that nothing of it is
        collected in the wrapper's frames: a ResourceWarning for a file it
        left open would name a line of reloader.py. An exit collects them.
        """
        try:
            if mode == "module":
                self.kept.append(_run_module(name))
            else:
                _run_path(name, self.kept)
        except KeyboardInterrupt as e:
            if not _state.interrupting:
                raise  # Ctrl-C: main() ends the wrapper
            self.kept.append(e)  # the interruption of a graceful restart
            return 0, lambda: None
        except SystemExit as e:
            self.kept.append(e)
            status = _exit_status(e.code)
            return status, lambda: _log.info("%s exited with status %d", label, status)
        except _ProgramNotFound as e:
            message = str(e)
            return 1, lambda: _log.error("%s; watching for it to appear", message)
        except Exception as e:
            self.kept.append(e)
            self.watch_traceback(e)
            error = e
            return 1, lambda: _log.error(
                "%s raised %s",
                label,
                type(error).__name__,
                exc_info=(type(error), error, _program_traceback(error)),
            )
        return 0, lambda: _log.info("%s finished", label)

    def watch_traceback(self, error: "BaseException") -> None:
        filename = getattr(error, "filename", None)
        if isinstance(error, SyntaxError) and isinstance(filename, str):
            watch(filename)
        tb = error.__traceback__
        while tb is not None:
            path = tb.tb_frame.f_code.co_filename
            if os.path.isabs(path) and os.path.exists(path):
                watch(path)
            tb = tb.tb_next


def _split_command_line(
    args: "list[str]",
) -> "tuple[list[str], tuple[str, str, list[str]] | None]":
    """Split at the first positional or ``-m``: the rest is the program's."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m":
            if i + 1 == len(args):
                return args[:i], ("module", "", [])
            return args[:i], ("module", args[i + 1], args[i + 2 :])
        if arg.startswith("-m") and not arg.startswith("--"):
            return args[:i], ("module", arg[2:], args[i + 1 :])
        if arg == "--":
            if i + 1 == len(args):
                return args[:i], None
            return args[:i], ("path", args[i + 1], args[i + 2 :])
        if not arg.startswith("-") or arg == "-":
            return args[:i], ("path", arg, args[i + 1 :])
        i += 2 if arg in _VALUE_OPTIONS else 1
    return args, None


def _configure_logging(quiet: bool) -> None:
    _log.setLevel(logging.ERROR if quiet else logging.INFO)
    if logging.getLogger().handlers or _log.handlers:
        return
    # Our own handler, not the root's: a handler on the root logger would turn
    # the program's own logging.basicConfig() into a no-op.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[reloader] %(message)s"))
    _log.addHandler(handler)
    _log.propagate = False


class _ProgramNotFound(Exception):
    """The script, folder or module to run does not exist."""


def _run_module(name: str) -> "dict[str, Any]":
    import importlib.util
    import runpy

    # python -m puts the working directory first on sys.path.
    sys.path[0] = os.getcwd()
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        parts = name.split(".")
        if all(part.isidentifier() for part in parts):
            # Watch where it would appear first on sys.path, the working
            # directory: as a module file or as a package folder.
            where = os.path.join(os.getcwd(), *parts)
            watch(where + ".py")
            watch(where)
        raise _ProgramNotFound(f"no module named {name!r}")
    if spec.origin and os.path.isabs(spec.origin):
        watch(spec.origin)
    return runpy.run_module(name, run_name="__main__", alter_sys=True)


def _run_path(path: str, kept: "list[object]") -> None:
    """Run a script, folder or zip as ``python path`` does.

    The program's module is appended to ``kept``; see call_program().
    """
    watch(path)
    if not os.path.exists(path):
        raise _ProgramNotFound(f"can't open {path!r}: no such file or directory")
    if os.path.isdir(path) or _is_archive(path):
        module, code = _main_of_archive(path)
    else:
        module, code = _main_of_script(path)
    main = sys.modules["__main__"]
    sys.modules["__main__"] = module
    kept.append(module)
    try:
        exec(code, module.__dict__)
    finally:
        sys.modules["__main__"] = main


def _main_of_script(path: str) -> "tuple[Any, Any]":
    import importlib.machinery

    # Python 3.9+ joins the working directory to __file__ without normalizing
    # it, and puts the script's real folder first on sys.path.
    filename = os.path.join(os.getcwd(), path)
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, filename, "exec", dont_inherit=True)
    module = type(sys)("__main__")
    module.__file__ = filename
    module.__cached__ = None  # type: ignore[attr-defined]
    module.__loader__ = importlib.machinery.SourceFileLoader("__main__", filename)
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    return module, code


def _main_of_archive(path: str) -> "tuple[Any, Any]":
    import importlib.machinery
    import importlib.util

    folder = os.path.abspath(path)
    sys.path[0] = folder
    spec = importlib.machinery.PathFinder.find_spec("__main__", [folder])
    if spec is None or spec.loader is None:
        raise _ProgramNotFound(f"can't find '__main__' module in {path!r}")
    module = importlib.util.module_from_spec(spec)
    code = spec.loader.get_code("__main__")  # type: ignore[attr-defined]
    return module, code


def _is_archive(path: str) -> bool:
    import zipimport

    try:
        zipimport.zipimporter(path)
    except (zipimport.ZipImportError, OSError):
        return False
    return True


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    _write_stderr(f"{code}\n")  # as Python prints a SystemExit message
    return 1


def _program_traceback(error: "BaseException") -> "Any":
    """The traceback without the wrapper's own frames and runpy's."""
    import runpy

    skip = {os.path.normcase(__file__), os.path.normcase(runpy.__file__)}
    tb = error.__traceback__
    while tb is not None and (
        os.path.normcase(tb.tb_frame.f_code.co_filename) in skip
        or tb.tb_frame.f_code.co_filename.startswith("<frozen")
    ):
        tb = tb.tb_next
    return tb


_state = _State(own_environment=__name__ != "__main__")
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _state.after_fork_in_child())

if __name__ == "__main__":
    # See "Two copies of this module" above.
    import importlib

    _name = __spec__.name if __spec__ is not None else "reloader"
    sys.exit(importlib.import_module(_name).main())
