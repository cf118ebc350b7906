"""Restart a Python process when its source changes: one file, standard library only.

Two ways to use it::

    reloader app.py [args...]                # run app.py, run it again on every save
    reloader -m package [args...]            # the same for a module
    python -m reloader app.py [args...]      # the same command, also for a copy

    import reloader                          # inside a long-running program
    reloader.start()

``pip install python-reloader`` installs this module and the ``reloader``
command; or copy this one file into a project (it needs nothing else).

A daemon thread watches the file of every imported module, and every path
given to ``watch()``: woken by the kernel's notifications (inotify, kqueue)
on local file systems, polling every ``check_time`` milliseconds elsewhere.
When one changes, and the burst of changes has settled, the run ends as an
exit would (cleanup, child processes) and the process re-executes itself
with the same
command line (``os.execv``: the pid stays). When Tornado or asyncio runs a loop
in the thread that called ``start()``, the restart happens on that loop.
``listening_socket()`` keeps a server's port open through the restart, so
clients that connect meanwhile wait instead of being refused; under
``python -m reloader`` every listening socket the program binds is kept so,
without a changed line.

Limits: the restart is a re-execution, so any state that lives only in memory
is lost (reload hooks can save it). Polling costs one ``stat`` per watched
file per scan; notifications are trusted on local file systems only, which
are still polled now and then as a safety net. A changed ``.py`` file that
does not compile holds the restart until it does; other errors only show
when the new process imports the file,
and the ``python -m reloader`` wrapper covers those. Where ``execv`` is not
available (Windows, or macOS with threads running) the restart starts a new
process and waits for it instead, and a listening socket cannot be handed over.
Under the wrapper, a listening socket the program closes stays open (its
address taken, connections waiting) until the wrapper ends, or until the next
run has started without binding that address again.
On Python 3.9 a program run with ``-c`` cannot be re-executed. A program that
changes directory should import this module first: the restart runs from the
directory that was current then. Files are compared by modification time,
size, inode and inode change time; an edit within the same clock tick as the
last one (one-second file systems) is caught by comparing contents, for two
seconds after each change. The kqueue code (macOS, the BSDs) has not run on
those systems; Windows polls.

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
# The name is deleted at the end of the module (nothing public outside
# ``__all__``); mypy reports any use of it after that.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import ctypes
    import socket
    import subprocess
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, NoReturn, Optional, Protocol, Union

    class _TornadoLoop(Protocol):
        def add_callback(self, callback: Callable[[], object]) -> None: ...

    class _AsyncioLoop(Protocol):
        def call_soon_threadsafe(self, callback: Callable[[], object]) -> object: ...

    class _KEvent(Protocol):
        """What ``_Kqueue`` reads from a ``select.kevent`` the kernel returned."""

        @property
        def ident(self) -> int: ...
        @property
        def flags(self) -> int: ...
        @property
        def fflags(self) -> int: ...

    class _KqueueHandle(Protocol):
        """The part of ``select.kqueue`` used here."""

        def fileno(self) -> int: ...
        def close(self) -> None: ...
        def control(
            self,
            changelist: Optional[Iterable[_KEvent]],
            maxevents: int,
            timeout: Optional[float] = ...,
        ) -> list[_KEvent]: ...

    class _KqueueModule(Protocol):
        """The part of the ``select`` module used here, so a test can pass a fake."""

        KQ_FILTER_VNODE: int
        KQ_EV_ADD: int
        KQ_EV_CLEAR: int
        KQ_EV_ERROR: int
        KQ_NOTE_WRITE: int
        KQ_NOTE_DELETE: int
        KQ_NOTE_EXTEND: int
        KQ_NOTE_ATTRIB: int
        KQ_NOTE_RENAME: int
        KQ_NOTE_REVOKE: int

        def kqueue(self) -> _KqueueHandle: ...
        def kevent(
            self, ident: int, filter: int, flags: int, fflags: int
        ) -> _KEvent: ...

    _Loop = Union[_TornadoLoop, _AsyncioLoop]
    _Print = Union[tuple[int, int, int], None, object]

__all__ = [
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
    _state.watcher.run(interval, threading.Event(), _state.restarter(None))
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
    _state.watcher.targets.add_root(os.path.abspath(name))


def ignore(pattern: str) -> None:
    """Never count a change to a path that matches ``pattern``.

    ``pattern`` is an ``fnmatch`` glob (``*.log``, ``data/*``, ``build``),
    matched against each file's name and against its path relative to each
    watched folder (for imported modules, also to the start directory). A
    pattern that matches a folder's name leaves that folder out: it is not
    even listed. Applies to watched folders and imported modules alike, from
    the next scan on. Raises ``TypeError`` if ``pattern`` is not a ``str``,
    ``ValueError`` if it is empty.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"ignore() needs a str pattern, not {type(pattern).__name__}")
    if not pattern or "\0" in pattern:
        raise ValueError(
            f"ignore() needs a non-empty pattern without NUL, not {pattern!r}"
        )
    _state.watcher.targets.ignore(pattern)


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
    return _state.sockets.create_server(address, kwargs)


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the command line, ``reloader`` or ``python -m reloader``; see ``--help``.

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

# Environment variables that carry state through ``execv``; see _Handover
# and _Sockets.
_WATCH_ENV = "RELOADER_WATCH"
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
        handover = os.environ.get(_WATCH_ENV, "")
        if own_environment:
            os.environ.pop(_WATCH_ENV, None)
        self.watcher = _Watcher(self.cwd, handover)
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
                    args=(interval, self.stop_event, self.restarter(loop)),
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
        self.watcher.wake()
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
            self.sockets.restart_pending = True  # see _Sockets.keeps_path()
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
            self.sockets.restart_pending = True  # see unlink_hidden_at_exit()
        try:
            source = "" if self.argv is not None else _program_source()
            if source:
                # Before the hooks: they prepare a restart that cannot come.
                _log.error("cannot restart a program read from %s", source)
                return
            _run_hooks(hooks)
            # After the hooks, which may change what it is made of.
            handover = self.watcher.handover_value()
            argv = self.command_line()
            if _can_reexecute(argv, self.cwd):
                # Not before: a run ended for a restart that then fails would
                # go on without its atexit handlers and its children.
                _end_run()
            if self.signals is not None:
                self.signals.ignore_for_exec(True)
            try:
                _reexecute(argv, self.cwd, self.sockets, handover)
            finally:
                if self.signals is not None:
                    self.signals.ignore_for_exec(False)
        finally:
            with self.lock:
                self.restarting = False
                self.interrupting = False
                self.sockets.restart_pending = False

    def restarter(self, loop: "_Loop | None") -> "Callable[[dict[str, str]], None]":
        """What the watcher calls on a change: say so, restart on ``loop``."""

        def on_change(changed: "dict[str, str]") -> None:
            _announce(changed)
            _drop_cached_bytecode(changed)
            self.restart_on(loop)

        return on_change

    def restart_on(self, loop: "_Loop | None") -> None:
        if loop is None:
            self.restart()
            return
        asyncio_loop = getattr(loop, "asyncio_loop", loop)
        closed = getattr(asyncio_loop, "is_closed", None)
        running = getattr(asyncio_loop, "is_running", None)
        if (closed is not None and closed()) or (running is not None and not running()):
            # Closed, or stopped after run_until_complete(): nothing would run
            # a callback there, perhaps ever again.
            self.restart()
        elif hasattr(loop, "add_callback"):
            loop.add_callback(self.restart)
        else:
            loop.call_soon_threadsafe(self.restart)

    def command_line(self) -> list[str]:
        return list(self.argv) if self.argv is not None else _command_line()

    def after_fork_in_child(self) -> None:
        # Threads do not survive fork: forget the parent's watcher thread, and
        # renew the lock, which another thread may have held at the fork.
        self.lock = threading.Lock()
        self.control = threading.Lock()
        self.watcher.forget_news()
        self.watcher.targets.lock = threading.Lock()
        self.watcher.poll_lock = threading.Lock()
        self.sockets.after_fork_in_child()
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
# How the watcher is built
# ---------------------------------------------------------------------------
# Four parts, none of which knows what its caller does with its answer:
#
# * _Targets decides what to watch: the files of imported modules, the
#   watch()ed paths, the files under watched folders (walked without
#   recursion, so any depth, skipping what _Rules ignores).
# * _Prints keeps the fingerprints of the watched files and tells which
#   changed: the hot scan (see "Keeping the scan at the cost of its stats")
#   and the decision on first sight (see "Deciding on first sight").
# * A notification source says which paths the kernel saw change; see
#   "Notifications".
# * _Watcher runs the loop: it waits for the next poll or a notification,
#   lets a burst of changes settle, holds the restart while a changed .py
#   does not compile, keeps a program that rewrites a watched file at every
#   start from restarting for ever, and hands the changed paths to the
#   ``on_change`` callable its owner gave it.
#
# Deciding on first sight
# ---------------------------------------------------------------------------
# A file is compared with itself, each scan with what the last one saw. Its
# first sight has nothing to compare with, yet an edit made after the process
# started and before that first scan (while a restarted process still
# imports, say) must not be lost. So on first sight a file counts as changed
# when its mtime or its ctime lies after a reference time: an mtime can be
# set back (cp -p, tar x, git), a ctime cannot, and every write, utime() and
# rename sets it. The reference time is:
#
# * after a restart, the moment the old process began the scan that found
#   every file settled. The old process puts it in RELOADER_WATCH with its
#   pid, which execv keeps; the new one takes it only if the pid is its own
#   (its parent's, after the spawn fallback), so a child process the program
#   starts never inherits it.
# * on a first start, the process's start time where the system tells it
#   (Linux: /proc/self/stat, in clock ticks, rounded up; the boot clock is
#   read before the wall clock, so a pause between the two reads can only
#   move it later), so a file written before the launch never counts,
#   whatever the load; elsewhere, the time this module was imported.
#
# Timestamps are coarser than the clock: ext4 with small inodes and exFAT
# stamp whole seconds, FAT two, and the finest are taken from a clock that
# lags a tick behind time.time_ns(). A stamp t says only that the write came
# before t plus that granularity, so no margin can make a comparison with it
# safe near t; content can. A file whose stamps are that recent is decided
# by what it holds:
#
# * while a watched file's newest stamp is within _RACY_NS (plus its
#   granularity) of a scan, the scan also compares its content digest with
#   the last one: an edit in the same tick, of the same size, is caught;
# * a restart hands the digests of those files over to the new process,
#   which compares them on first sight, whatever the stamps say;
# * a file whose stamp is too close to the reference time to tell, with no
#   digest to decide, counts as changed after a restart (it may be an edit
#   made while the restart ran) and as unchanged on a first start (it was
#   most likely written just before the launch).
#
# Stamps in the future never count at first sight, so a file from a
# clock-skewed archive cannot cause a restart loop.

_SETTLE = 0.05
# Within this much of a file's newest stamp, an edit can leave its stamps,
# size and inode as they were: such files are compared by content.
_RACY_NS = 2_000_000_000
_RACY_MAX_BYTES = 1 << 20
_TICK_NS = 20_000_000  # the lag of the kernel's coarse clock, and then some
_HANDOVER_MAX_BYTES = 64 * 1024  # of digests in the environment (limit 128 KiB)
# The restart-loop guard: a file that alone caused this many restarts in a
# row, each time changed within _EARLY_NS of the start, no longer counts.
_LOOP_RESTARTS = 3
_EARLY_NS = 5_000_000_000

# Keeping the scan at the cost of its stats
# ---------------------------------------------------------------------------
# The floor is a Python loop calling os.stat on every file. Python code run
# per file on top of it costs 15-20 %: building a fingerprint tuple alone
# costs 10 %. So the pass runs in C, list(map(getter, map(os.stat, paths))),
# with a getter of one number that changes whenever the fingerprint can: the
# inode change time. Every write, truncate, utime(), chmod and rename sets it,
# and a file renamed over the path brings its own; within one tick of a
# coarse clock it may not move, and then the file is recent, so its content
# decides (see "Deciding on first sight"). Windows keeps the creation time in
# st_ctime, so there the getter is the fingerprint without it. The paths and
# their quick prints are two parallel lists because that is what runs at C
# speed; everything else known of a path is in one dict of _Seen records.
if sys.platform == "win32":
    _quick_print = operator.attrgetter("st_mtime_ns", "st_size", "st_ino")
else:
    _quick_print = operator.attrgetter("st_ctime_ns")


def _granularity(stamp: int) -> int:
    """How far after ``stamp`` the write it records may have happened, in ns."""
    if stamp % 1_000_000_000 == 0:
        return 2_000_000_000  # whole seconds: FAT rounds to two
    return _TICK_NS


def _newest_stamp(st: "os.stat_result") -> int:
    if sys.platform == "win32":
        return st.st_mtime_ns
    return max(st.st_mtime_ns, st.st_ctime_ns)


class _Handover:
    """What one run of the watcher tells the next through ``execv``.

    The reference time, the content digests of recently written files, the
    restart-loop counts, and the devices whose notifications proved
    incomplete (see "Notifications"); carried in RELOADER_WATCH as
    ``kind:pid:json``, where kind is ``exec`` (the pid is this process's) or
    ``spawn`` (the parent's).
    """

    def __init__(self, value: str) -> None:
        self.since = 0
        self.digests: dict[str, list[int]] = {}
        self.loops: dict[str, int] = {}
        self.distrusted: list[int] = []
        kind, _, rest = value.partition(":")
        pid, _, data = rest.partition(":")
        expected = os.getpid() if kind == "exec" else os.getppid()
        if kind not in ("exec", "spawn") or pid != str(expected):
            return  # none, or not ours: a child process of the program
        if data.isdigit():
            self.since = int(data)  # the reference time alone: see write()
            return
        import json

        try:
            parsed = json.loads(data)
            since, digests, loops = parsed["since"], parsed["digests"], parsed["loops"]
            if isinstance(since, int) and isinstance(digests, dict):
                self.since, self.digests = since, digests
            if isinstance(loops, dict):
                self.loops = loops
            distrusted = parsed.get("distrusted", [])
            if isinstance(distrusted, list):
                self.distrusted = [d for d in distrusted if isinstance(d, int)]
        except (ValueError, KeyError, TypeError):
            _log.debug("ignoring a malformed %s", _WATCH_ENV)

    @staticmethod
    def write(
        since: int,
        digests: "dict[str, list[int]]",
        loops: "dict[str, int]",
        distrusted: "Iterable[int]",
    ) -> str:
        """The part after kind and pid, which the restart puts before it.

        The reference time alone is written as a number: a restart with
        nothing else to tell imports no json (a millisecond of its time).
        """
        if not digests and not loops and not distrusted:
            return str(since)
        import json

        kept: dict[str, list[int]] = {}
        size = 0
        for path, digest in digests.items():
            size += len(path) + 30
            if size > _HANDOVER_MAX_BYTES:
                break  # the rest are decided by their stamps
            kept[path] = digest
        data = {
            "since": since,
            "digests": kept,
            "loops": loops,
            "distrusted": sorted(distrusted),
        }
        return json.dumps(data)


def _process_start_ns() -> int:
    """When this process started, on the wall clock; never earlier than that."""
    if sys.platform == "win32" or not hasattr(time, "CLOCK_BOOTTIME"):
        return time.time_ns()
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        start_ticks = int(fields[19]) + 1  # field 22; +1 rounds late
    except (OSError, ValueError, IndexError):
        return time.time_ns()  # no /proc: the import time is the best we know
    # Boot clock first: a pause before the wall clock is read moves the
    # result later, never earlier than the true start.
    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    now = time.time_ns()
    return now - max(0, boot - start_ticks * 1_000_000_000 // ticks_per_second)


# What is never a change
# ---------------------------------------------------------------------------
# Names, at any depth under a watched folder (a folder so named is not
# walked), each for its reason:
_IGNORED_NAMES = frozenset(
    {
        "4913",  # vim writes it to learn whether a folder is writable
        ".DS_Store",  # the macOS Finder's view settings
        # Byte code: a change there always comes with one to its source.
        "__pycache__",
        # Version control and tools: they rewrite their own files often, and
        # a checkout changes the sources, which are watched.
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".vscode",
        "node_modules",
    }
)
# Editors' scratch files: vim's swap files (.swp, .swo, .swx) and backups
# (~), emacs's auto-save (#x#) and lock files (.#x), JetBrains' safe-write
# copies; and byte code again.
_IGNORED_SUFFIXES = (
    ".swp",
    ".swo",
    ".swx",
    "~",
    "___jb_tmp___",
    "___jb_old___",
    ".pyc",
)
_IGNORED_PREFIXES = (".#",)
# A folder holding this file is a virtual environment: thousands of files
# that pip, not the user, changes.
_VENV_MARKER = "pyvenv.cfg"


class _Rules:
    """Which paths never count: the default names and ``ignore()`` patterns."""

    def __init__(self) -> None:
        self.patterns: list[str] = []
        self.match: Optional[Callable[[str], object]] = None
        self.version = 0  # bumped by add(): the listings must be filtered again

    def add(self, pattern: str) -> None:
        import fnmatch
        import re

        self.patterns.append(pattern)
        union = "|".join(fnmatch.translate(os.path.normcase(p)) for p in self.patterns)
        self.match = re.compile(union).match
        self.version += 1

    def ignores_name(self, name: str) -> bool:
        """The defaults, and the patterns, on a file or folder name."""
        if (
            name in _IGNORED_NAMES
            or name.endswith(_IGNORED_SUFFIXES)
            or name.startswith(_IGNORED_PREFIXES)
            or (len(name) > 1 and name[0] == name[-1] == "#")
        ):
            return True
        return self.match is not None and bool(self.match(os.path.normcase(name)))

    def ignores_path(self, path: str, bases: "Iterable[str]") -> bool:
        """The patterns, on ``path`` relative to each of ``bases`` holding it."""
        match = self.match
        if match is None:
            return False
        for base in bases:
            prefix = base.rstrip(os.sep) + os.sep
            if not path.startswith(prefix):
                continue
            relative = os.path.normcase(path[len(prefix) :])
            if match(relative):
                return True
            # A pattern that names a folder ignores what is under it.
            folders = relative.split(os.sep)[:-1]
            if any(
                match(folder) or match(os.sep.join(folders[: i + 1]))
                for i, folder in enumerate(folders)
            ):
                return True
        return False


class _Dir:
    """What a watched folder held when it was last listed."""

    __slots__ = ("dirs", "files", "print", "version")

    def __init__(self, fingerprint: "tuple[int, int, int]", version: int) -> None:
        self.print = fingerprint
        self.version = version  # of the rules it was filtered with
        self.files: list[str] = []
        self.dirs: list[str] = []


class _Targets:
    """What to watch: module files, ``watch()``ed paths, files under folders.

    ``refresh()`` brings the list up to date and says whether it changed;
    ``files`` is then every file to fingerprint, ``fresh`` the files that
    appeared in a folder listed before (new there, whatever their stamps).
    """

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self.lock = threading.Lock()
        self.rules = _Rules()
        self.roots: dict[str, None] = {}
        self.roots_changed = False
        self.dirs: dict[str, _Dir] = {}
        self.modules_key: Optional[tuple[int, object]] = None
        self.files: dict[str, None] = {}
        self.fresh: list[str] = []
        self.since = 0  # the reference time, for folders seen the first time
        self.reported: set[str] = set()

    def add_root(self, path: str) -> None:
        with self.lock:
            self.roots[path] = None
            self.roots_changed = True

    def ignore(self, pattern: str) -> None:
        with self.lock:
            self.rules.add(pattern)
            self.roots_changed = True

    def refresh(self, walk: bool = True) -> bool:
        """Bring ``files`` up to date; True if it changed.

        ``walk``: look for changes in the watched folders' listings too; new
        roots are walked whatever it says.
        """
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
        self.fresh = []
        # A root that is no folder (a file, or not there yet) is one of the
        # files, so only a new watch() walks it again: it is stat'ed once per
        # scan. Becoming a folder changes its print: a restart.
        if new_roots:
            walked = roots
        else:
            walked = [root for root in roots if root in self.dirs] if walk else []
        if not (self.walk(walked) or rebuild or new_roots):
            return False
        files: dict[str, None] = {}
        rules = self.rules
        bases = [self.cwd, *roots]
        for path in _module_paths(self.cwd):
            name = os.path.basename(path)
            if not (rules.ignores_name(name) or rules.ignores_path(path, bases)):
                files[path] = None
        for root in roots:
            if root not in self.dirs:
                files[root] = None  # asked for by name: watched whatever its name
        for folder in self.dirs.values():
            files.update(dict.fromkeys(folder.files))
        changed = files.keys() != self.files.keys()
        self.files = files
        return changed or bool(self.fresh)

    def walk(self, roots: "list[str]") -> bool:
        """Relist the watched folders that changed; True if a listing did.

        A stack, not recursion: a tree of any depth is walked.
        """
        now = time.time_ns()
        seen: set[tuple[int, int]] = set()
        live: set[str] = set()
        changed = False
        # (folder, the watched root it is under, new: appeared in a folder
        # listed before, so every file in it is new here)
        stack = [(root, root, False) for root in reversed(roots)]
        while stack:
            path, root, new = stack.pop()
            try:
                changed |= self.walk_one(path, root, new, now, seen, live, stack)
            except Exception as e:
                # One folder's trouble never blinds the watcher to the others.
                self.report_once(f"walk:{path}", "cannot watch %s: %s", path, e)
        for path in list(self.dirs):
            if path not in live and any(_is_under(path, root) for root in roots):
                del self.dirs[path]
                changed = True
        return changed

    def walk_one(
        self,
        path: str,
        root: str,
        new: bool,
        now: int,
        seen: "set[tuple[int, int]]",
        live: "set[str]",
        stack: "list[tuple[str, str, bool]]",
    ) -> bool:
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
            # First sight: a folder moved here since the reference time, its
            # ctime new but not its mtime (its entries are as they were),
            # brings files that are new here.
            new = st.st_mtime_ns <= self.since < st.st_ctime_ns <= now
        changed = False
        known: Optional[set[str]] = None  # the subfolders before a new listing
        if (
            folder is None
            or folder.print != fingerprint
            or folder.version != self.rules.version
            or now - st.st_mtime_ns < _RACY_NS + _granularity(st.st_mtime_ns)
        ):
            known = None if folder is None else set(folder.dirs)
            changed = self.list_dir(path, root, fingerprint, new=new)
            folder = self.dirs[path]
        for sub in reversed(folder.dirs):
            # A folder seen for the first time with its parent (the first
            # scan, a new watch()) holds files that were there before.
            fresh = new or (known is not None and sub not in known)
            stack.append((sub, root, fresh))
        return changed

    def list_dir(
        self, path: str, root: str, fingerprint: "tuple[int, int, int]", new: bool
    ) -> bool:
        folder = _Dir(fingerprint, self.rules.version)
        rules = self.rules
        bases = (root, self.cwd)
        try:
            with os.scandir(path) as entries:
                listed = list(entries)
        except OSError as e:
            # Unreadable: watch what it held before, if anything.
            self.report_once(f"list:{path}", "cannot list %s: %s", path, e)
            listed = []
        if path != root and any(entry.name == _VENV_MARKER for entry in listed):
            listed = []  # a virtual environment: see _VENV_MARKER
        for entry in listed:
            full = entry.path
            if rules.ignores_name(entry.name) or rules.ignores_path(full, bases):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue  # vanished while listing: its folder changes again
            (folder.dirs if is_dir else folder.files).append(full)
        old = self.dirs.get(path)
        self.dirs[path] = folder
        before = set() if old is None else set(old.files)
        if old is not None or new:
            # A new file in a watched folder is a change even if its stamps
            # are old (a mv keeps them).
            self.fresh += [file for file in folder.files if file not in before]
        return old is None or old.files != folder.files or old.dirs != folder.dirs

    def ignores(self, path: str) -> bool:
        """Is ``path``, in a watched folder, left out by the rules?"""
        rules = self.rules
        return rules.ignores_name(os.path.basename(path)) or rules.ignores_path(
            path, [self.cwd, *self.roots]
        )

    def report_once(self, key: str, message: str, *args: object) -> None:
        if key not in self.reported:
            self.reported.add(key)
            _log.warning(message, *args)


def _module_paths(cwd: str) -> "list[str]":
    """The files of all modules, in import order, ``.pyc`` mapped to source."""
    paths: dict[str, None] = {}
    # A copy: another thread may import while we walk. list() of a dict view
    # runs in C without releasing the GIL, so it sees one consistent state.
    for module in list(sys.modules.values()):
        try:
            path = _module_path(module, cwd)
        except Exception:
            continue  # a lazy module whose attributes raise: nothing to watch
        if path is not None:
            paths[path] = None
    return list(paths)


def _module_path(module: object, cwd: str) -> "str | None":
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
        path = os.path.join(cwd, path)
    return path


class _Seen:
    """What the scan knows of a path beyond its place in the hot lists.

    ``print``: its quick print when last seen, for a path out of the hot
    lists (absent now, or no longer watched); None for a path known not to
    have existed, whatever appears there is new. ``absent``: not there now.
    ``stamp``, ``digest``: while the file is recent (see "Deciding on first
    sight"), its newest stamp and the digest of its content.
    """

    __slots__ = ("absent", "digest", "print", "stamp")

    def __init__(self, print: object, absent: bool = False) -> None:
        self.print = print
        self.absent = absent
        self.stamp = 0
        self.digest: Optional[list[int]] = None


class _Hot:
    """One group of watched files, in the hot scan's two parallel lists.

    ``paths`` and ``quick`` (their quick prints; None: not seen yet) are
    lists because that is what runs at C speed; ``index`` (path to place)
    is built only when single files are checked, after a notification.
    """

    __slots__ = ("_index", "paths", "quick")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.quick: list[object] = []
        self._index: Optional[dict[str, int]] = None

    def set(self, paths: "list[str]", quick: "list[object]") -> None:
        self.paths, self.quick, self._index = paths, quick, None

    def index(self) -> "dict[str, int]":
        if self._index is None:
            self._index = {path: i for i, path in enumerate(self.paths)}
        return self._index


class _Prints:
    """The fingerprints of the watched files; tells which changed.

    The files are in two groups: ``polled``, stat'ed at every poll, and
    ``notified``, which a notification source covers: stat'ed when it names
    them (``check()``) and at the safety poll. ``scan()`` stats a whole group
    and returns the changed paths, each with ``created`` or ``modified``. A
    file is judged on first sight by the reference time and the digests
    handed over; see "Deciding on first sight".
    """

    def __init__(self) -> None:
        self.since = 0
        self.first_start = True
        self.digests: dict[str, list[int]] = {}  # handed over, until first sight
        self.polled = _Hot()
        self.notified = _Hot()
        self.seen: dict[str, _Seen] = {}
        self.recent: dict[str, None] = {}  # the paths whose _Seen has a digest
        self.first_sights: set[str] = set()  # of the last scan or check
        self.unseen: set[str] = set()  # notified files not stat'ed yet
        self.scan_count = 0

    def take(self, handover: _Handover) -> None:
        """Start from what the previous run handed over, or the process start."""
        self.first_start = handover.since == 0
        self.since = handover.since or _process_start_ns()
        self.digests = dict(handover.digests)

    def set_files(
        self,
        files: "dict[str, None]",
        fresh: "list[str]",
        notified: "set[str] | frozenset[str]" = frozenset(),
    ) -> None:
        """Watch exactly ``files``; those in ``fresh`` are new wherever seen.

        The files in ``notified`` go to the notified group, the rest to the
        polled one.
        """
        old: dict[str, object] = {}
        for group in (self.polled, self.notified):
            old.update(zip(group.paths, group.quick))
        for path, quick in old.items():
            if path not in files and quick is not None:
                # No longer watched: remember it, in case it comes back.
                record = self.seen.setdefault(path, _Seen(quick))
                record.print = quick
        for path in fresh:
            self.seen.setdefault(path, _Seen(None))
        lists: tuple[list[str], list[str]] = ([], [])
        for path in files:
            known = self.seen.get(path)
            if known is None or not known.absent:
                # Else not there: check_absent() looks for it each scan.
                lists[path in notified].append(path)
        for group, paths in zip((self.polled, self.notified), lists):
            group.set(paths, [old.get(path) for path in paths])
        # Not seen yet, and no notification will say so: a module imported
        # since the last scan may have been edited before it was watched.
        self.unseen = {p for p, q in zip(lists[1], self.notified.quick) if q is None}
        if len(self.seen) > len(files) + 10_000:
            for path in [p for p in self.seen if p not in files]:
                del self.seen[path]
                self.recent.pop(path, None)

    # -- one scan ---------------------------------------------------------

    def scan(self, everything: bool = True) -> "dict[str, str]":
        """Stat the polled files, and the notified ones if ``everything``.

        Returns the changed paths. The absent and the recent files are
        looked at too, whatever their group.
        """
        # Before the stats: a stamp after it is no older than the scan.
        now = time.time_ns()
        changed: dict[str, str] = {}
        self.first_sights = set()
        for group in (self.polled, self.notified) if everything else (self.polled,):
            try:
                # See "Keeping the scan at the cost of its stats".
                quick: list[object] = list(map(_quick_print, map(os.stat, group.paths)))
            except OSError:
                quick = self.stat_each(group)
            if quick != group.quick:
                self.compare(group, quick, now, changed)
        self.scan_count += 1
        absent = [path for path, record in self.seen.items() if record.absent]
        if absent:
            self.check_absent(absent, now, changed)
        if self.recent:
            self.check_recent(now, changed)
        return changed

    def check(self, paths: "Iterable[str]") -> "dict[str, str]":
        """Stat the notified files among ``paths``; return the changed ones."""
        now = time.time_ns()
        changed: dict[str, str] = {}
        self.first_sights = set()
        group = self.notified
        index = group.index()
        for path in paths:
            i = index.get(path)
            if i is None:
                continue  # not a notified file: polled, or absent
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone is no change: the next scan sets it aside
            self.judge(group, i, st, now, changed)
        if self.recent:
            self.check_recent(now, changed, only=paths)
        return changed

    def stat_each(self, group: _Hot) -> "list[object]":
        """The slow pass, when a file vanished: set it aside as absent."""
        current: list[object] = []
        paths, quick = [], []
        for path, old in zip(group.paths, group.quick):
            try:
                st = os.stat(path)
            except OSError:
                # Gone is not a change by itself: its last print is kept, so
                # only a different file coming back counts. Never seen: any
                # file that comes is a change.
                record = self.seen.setdefault(path, _Seen(old))
                if old is not None:
                    record.print = old
                record.absent = True
                continue
            current.append(_quick_print(st))
            paths.append(path)
            quick.append(old)
        group.set(paths, quick)
        return current

    def compare(
        self, group: _Hot, quick: "list[object]", now: int, changed: "dict[str, str]"
    ) -> None:
        """Take the new quick prints; add the paths that really changed."""
        old_quick = group.quick
        group.quick = quick
        for i, (new, old) in enumerate(zip(quick, old_quick)):
            if new == old:
                continue
            try:
                st = os.stat(group.paths[i])
            except OSError:
                continue  # gone since: the next scan sets it aside
            quick[i] = old  # judge() compares with it
            self.judge(group, i, st, now, changed)

    def judge(
        self,
        group: _Hot,
        i: int,
        st: "os.stat_result",
        now: int,
        changed: "dict[str, str]",
    ) -> None:
        """Take ``st`` as what the file at ``i`` is now; note it if it changed."""
        path, old = group.paths[i], group.quick[i]
        new = group.quick[i] = _quick_print(st)
        if new == old:
            return
        record = self.seen.get(path)
        if old is None:
            self.first_sights.add(path)
        if old is not None:
            how = "modified"  # see "Keeping the scan at the cost of its stats"
        elif record is None:
            how = "modified" if self.touched_since(path, st) else ""
        elif record.print is None:
            how = "created"  # appeared in a folder listed before
        else:
            how = "modified" if record.print != new else ""
        if how:
            changed[path] = how
        self.note_recent(path, st, now)

    def touched_since(self, path: str, st: "os.stat_result") -> bool:
        """First sight: written after the reference time?"""
        digest = self.digests.pop(path, None)
        if digest is not None:
            return _digest(path) != digest
        # The clock is read after the stat: a write that lands between the
        # scan's start and this stat is not from the future.
        now = time.time_ns()
        for stamp in (st.st_mtime_ns, st.st_ctime_ns):
            if self.since < stamp <= now:
                return True
            if not self.first_start and self.since < stamp + _granularity(stamp):
                return True  # too close to tell, nothing to compare with
        return False

    def note_recent(self, path: str, st: "os.stat_result", now: int) -> None:
        """Keep the digest of a file whose stamps are too recent to trust."""
        stamp = _newest_stamp(st)
        record = self.seen.get(path)
        if now - stamp < _RACY_NS + _granularity(stamp):
            if record is None:
                record = self.seen[path] = _Seen(_quick_print(st))
            record.stamp = stamp
            record.digest = _digest(path)
            self.recent[path] = None
        elif record is not None and not record.absent:
            # Nothing left to know beyond its place in the hot lists.
            del self.seen[path]
            self.recent.pop(path, None)

    def check_absent(
        self, absent: "list[str]", now: int, changed: "dict[str, str]"
    ) -> None:
        for path in absent:
            record = self.seen[path]
            try:
                st = os.stat(path)
            except OSError:
                continue  # still not there
            new = _quick_print(st)
            if record.print != new:
                changed[path] = "created" if record.print is None else "modified"
            del self.seen[path]
            self.recent.pop(path, None)
            # Polled from now on: it came back where nothing may notify.
            self.polled.set([*self.polled.paths, path], [*self.polled.quick, new])
            self.note_recent(path, st, now)

    def check_recent(
        self, now: int, changed: "dict[str, str]", only: "Iterable[str] | None" = None
    ) -> None:
        """Compare the contents of files written too recently to trust stat."""
        for path in list(self.recent) if only is None else self.recent.keys() & only:
            record = self.seen[path]
            if path not in changed and not record.absent:
                digest = _digest(path)
                if digest != record.digest:
                    record.digest = digest
                    changed[path] = "modified"
            # Read after ``now``: an edit after that read gets a stamp of its own.
            if now - record.stamp >= _RACY_NS + _granularity(record.stamp):
                del self.recent[path]
                record.digest = None
                if not record.absent:
                    del self.seen[path]

    def recent_digests(self) -> "dict[str, list[int]]":
        """The digests of the recent files, for the next run."""
        result = {}
        for path in self.recent:
            digest = self.seen[path].digest
            if digest is not None:
                result[path] = digest
        return result


def _digest(path: str) -> "list[int]":
    """The size and CRC-32 of a file's content (its first MiB); [-1] if unreadable."""
    import zlib

    try:
        with open(path, "rb") as f:
            data = f.read(_RACY_MAX_BYTES + 1)
    except OSError:
        return [-1]
    return [len(data), zlib.crc32(data)]


# Notifications
# ---------------------------------------------------------------------------
# Polling is the ground truth; notifications only wake the watcher early and
# narrow what it looks at. The source is chosen once, below: inotify on Linux,
# kqueue on macOS and the BSDs (through the standard library and ctypes
# only), none elsewhere (Windows polls). It is made in the watcher thread
# after the first scan, so neither ctypes nor its cost reaches
# ``import reloader``, and only where the poll-only switch (``--poll``,
# RELOADER_POLL=1) is off.
#
# What is trusted: files on local file systems (an allow-list read from
# /proc/self/mountinfo; on macOS, statfs) in folders the source watches are
# checked when a notification names them, and stat'ed all together only by
# the safety poll, every _SAFETY_POLL seconds. Every other file (network and
# virtual-machine file systems, where notifications may never come; folders
# the source could not watch, past a limit) is polled every check_time, as
# without notifications. The safety poll of many files is spread out so that
# it costs no more than _SAFETY_BUDGET of a core (2 000 files: every 10 s,
# 50 000 files: every 5 minutes), and with nothing to poll the watcher wakes
# every _IDLE_TICK only, to look for new modules (a notification about a .py
# file, or a file new in a watched folder, wakes it at once). If a safety
# poll finds a change that no
# notification reported, that mount is polled every check_time from then on,
# with one log line. If the source loses track (its queue overflowed, a
# watched folder was replaced), the next scan is a full one; if it fails,
# the watcher closes it and polls everything, with one log line.
#
# A burst: after a notification the watcher waits for _SETTLE of quiet (50
# ms is the shortest that does not split a 30-file checkout on a loaded
# machine), then decides on the files named. Notifications about nothing
# watched (a log written beside the modules) are read in batches: once more
# than _IDLE_READS such reads came within _SETTLE, the watcher sleeps _SETTLE
# before the next, so a busy writer costs a read per 50 ms, not one per
# write, while an editor's temporary file delays nothing.

_SAFETY_POLL = 10.0  # seconds, at the least
_SAFETY_BUDGET = 0.0003  # of a core: a larger set of files is polled less often
_IDLE_TICK = 2.0  # seconds between looks at sys.modules when nothing is polled
_FIRST_SCAN = 0.5  # seconds after start() at the latest
_IDLE_READS = 3  # reads naming nothing watched within _SETTLE, before batching
_POLL_ENV = "RELOADER_POLL"

# The inotify(7) constants, from <sys/inotify.h>; they are the same on every
# Linux architecture (IN_CLOEXEC and IN_NONBLOCK are O_CLOEXEC and O_NONBLOCK,
# which are not, so those are taken from os below).
_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_UNMOUNT = 0x2000
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x1000000

# What a folder's watch asks for. A watch on the *folder* sees every way a
# file in it can be saved: written in place (IN_MODIFY, IN_CLOSE_WRITE), a
# temporary file renamed over it (IN_MOVED_TO), vim's rename-away-and-write
# (IN_MOVED_FROM, IN_CREATE), delete then create, and a bare os.utime
# (IN_ATTRIB). A watch on the file itself would die with the old inode at the
# first rename-over. IN_CLOSE_WRITE alone would do for editors, but a writer
# that keeps the file open (a log) or writes through mmap only ever gives
# IN_MODIFY; the caller batches such noise, so it is kept.
_FOLDER_EVENTS = (
    _IN_CREATE
    | _IN_DELETE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CLOSE_WRITE
    | _IN_MODIFY
    | _IN_ATTRIB
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)

# After these the watch no longer stands for the folder at that path: the
# folder was deleted, moved away (the watch follows the inode, not the path),
# or its file system unmounted. Whatever happened there since is unknown.
_LOST_FOLDER = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT | _IN_IGNORED

# One read() takes at most this much, so a folder written to without pause
# cannot keep read() from returning; what is left keeps the descriptor
# readable, and the caller's select() comes straight back for it.
_READ_SIZE = 64 * 1024
_MAX_READS = 16


class _Inotify:
    """Linux: tells which watched folders had an entry change, through inotify (ctypes).

    One watch per folder; events name the folder's entry, so the caller gets
    full paths of the files that may have changed. Raises ``OSError`` when
    inotify cannot be had (no such function in the C library, ``ENOSYS``,
    ``EMFILE`` when the per-user instance limit is reached); the caller then
    polls.
    """

    def __init__(self) -> None:
        if sys.platform == "win32":
            import errno

            raise OSError(errno.ENOSYS, "no inotify on Windows")
        import ctypes  # 1.5-3 ms: only in the watcher thread, never at import
        import struct

        libc = _libc()
        init1 = libc.inotify_init1
        init1.argtypes = [ctypes.c_int]
        init1.restype = ctypes.c_int
        add_watch = libc.inotify_add_watch
        add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add_watch.restype = ctypes.c_int
        rm_watch = libc.inotify_rm_watch
        rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        rm_watch.restype = ctypes.c_int
        self._add_watch: Callable[[int, bytes, int], int] = add_watch
        self._rm_watch: Callable[[int, int], int] = rm_watch
        self._get_errno: Callable[[], int] = ctypes.get_errno
        # struct inotify_event { int wd; uint32_t mask, cookie, len; char name[]; }
        self._unpack: Callable[[bytes, int], tuple[int, int, int, int]]
        self._unpack = struct.Struct("iIII").unpack_from
        # Close-on-exec, so the restarted process (an execv) and any program
        # the user's code runs never inherit the queue; non-blocking, so
        # read() drains and returns.
        fd = init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, "inotify_init1: " + os.strerror(code))
        self._fd: int = fd
        self._wd: dict[str, int] = {}  # folder -> watch descriptor
        # A watch descriptor names an inode, so two paths to one folder (a
        # symlink and its target, a bind mount) share one: wd -> every
        # (folder, "folder/") it stands for.
        self._folders: dict[int, list[tuple[str, str]]] = {}
        self._wanted: frozenset[str] = frozenset()
        self._failed: set[str] = set()

    def fileno(self) -> int:
        """The inotify descriptor: readable when events are queued (-1 once closed)."""
        return self._fd

    def cover(
        self, files: "list[str]", folders: "set[str]"
    ) -> "tuple[set[str], set[str]]":
        """Watch the folders of ``files`` and ``folders``.

        Returns the files covered (their folder is watched) and the folders
        that could not be watched.
        """
        failed = self.sync({os.path.dirname(f) for f in files} | folders)
        return {f for f in files if os.path.dirname(f) not in failed}, failed

    def sync(self, folders: "Iterable[str]") -> "set[str]":
        """Watch exactly ``folders``; return those that could not be watched.

        A folder fails when it is gone, not a folder, not readable
        (``EACCES``), or when the per-user watch limit is reached
        (``ENOSPC``: every folder not yet watched fails then, without trying
        each). Failed folders are tried again when a later call names a
        different set; watches dropped by ``read()`` (a folder deleted or
        replaced) are re-added by the next call whatever it names. A call
        with the same set as the last costs set arithmetic and no system
        call. Paths are used as given: a symlink to a folder watches the
        folder it points to, so the caller passes real paths where the link
        itself may change.
        """
        wanted = frozenset(folders)
        for folder in self._wd.keys() - wanted:
            self._unwatch(folder)
        missing = wanted - self._wd.keys()
        if wanted == self._wanted:
            missing -= self._failed
        else:
            self._failed &= wanted
            self._wanted = wanted
        full = False
        for folder in missing:
            self._failed.discard(folder)
            if full:
                self._failed.add(folder)
                continue
            try:
                self._watch(folder)
            except OSError as e:
                # Safe to swallow: the folder is returned as not watched and
                # the caller polls its files, which is exactly as before.
                import errno

                self._failed.add(folder)
                full = e.errno == errno.ENOSPC
        return set(self._failed)

    def read(self) -> "set[str] | None":
        """Drain the queued events without blocking; the paths they name.

        A path is ``folder/name`` for an entry of a watched folder, the folder
        itself for an event on the folder. None means the source lost track
        and the caller must scan everything: the queue overflowed, or a
        watched folder was deleted, moved, replaced or unmounted (its watch
        is forgotten here, so the next ``sync()`` adds it again). Raises
        ``OSError`` if reading the descriptor fails other than by being empty.
        """
        paths: set[str] = set()
        lost = False
        for _ in range(_MAX_READS):
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            lost = self._parse(data, paths) or lost
            if len(data) < _READ_SIZE // 2:
                # A short read is the queue emptied (the kernel fills the
                # buffer with whole events): spare the EAGAIN round trip.
                break
        return None if lost else paths

    def close(self) -> None:
        """Close the descriptor; harmless when already closed.

        Closing the last reference to an inotify instance frees all its
        watches, so no ``inotify_rm_watch`` is needed (nor wanted, see
        ``forget()``).
        """
        fd, self._fd = self._fd, -1
        self._wd.clear()
        self._folders.clear()
        self._wanted = frozenset()
        self._failed.clear()
        if fd >= 0:
            os.close(fd)

    def forget(self) -> None:
        """Drop this process's reference, for a child forked after ``start()``.

        After ``fork()`` parent and child share one inotify instance (one
        queue, one set of watches): a child that read it would steal the
        parent's events, and one that called ``inotify_rm_watch`` would remove
        the parent's watches. Closing the descriptor in the child only drops
        the child's reference; the parent's instance lives on untouched. That
        is what ``close()`` does, so this is ``close()`` under the name that
        says it is safe after a fork.
        """
        self.close()

    def _watch(self, folder: str) -> None:
        wd = self._add_watch(self._fd, os.fsencode(folder), _FOLDER_EVENTS)
        if wd < 0:
            code = self._get_errno()
            raise OSError(code, os.strerror(code), folder)
        self._wd[folder] = wd
        prefix = folder if folder.endswith("/") else folder + "/"
        self._folders.setdefault(wd, []).append((folder, prefix))

    def _unwatch(self, folder: str) -> None:
        wd = self._wd.pop(folder)
        folders = self._folders[wd]
        folders[:] = [entry for entry in folders if entry[0] != folder]
        if folders:
            return  # another path still stands for this inode
        del self._folders[wd]
        # A failure (EINVAL) means the kernel dropped the watch already: the
        # folder went and its IN_IGNORED is still queued. Nothing is left to
        # remove either way, and the IN_IGNORED that follows is dropped by
        # _parse() as being about a watch no longer known.
        self._rm_watch(self._fd, wd)

    def _forget_wd(self, wd: int) -> None:
        """Forget a watch that no longer stands for its folder's path."""
        for folder, _prefix in self._folders.pop(wd, ()):
            del self._wd[folder]

    def _parse(self, data: bytes, paths: "set[str]") -> bool:
        """Add the paths named by the events in ``data``; True if track was lost."""
        lost = False
        offset, end, unpack_from = 0, len(data), self._unpack
        while offset + 16 <= end:  # 16: sizeof(struct inotify_event)
            wd, mask, _cookie, size = unpack_from(data, offset)
            start = offset + 16
            offset = start + size
            if mask & _IN_Q_OVERFLOW:
                lost = True
                continue
            folders = self._folders.get(wd)
            if folders is None:
                # Our own rm_watch's IN_IGNORED, the IN_IGNORED after a lost
                # folder's event, or events queued for a watch removed since:
                # about no folder watched now. (Watch descriptors are
                # allocated cyclically, so an old one is not soon reused.)
                continue
            if size:
                name = os.fsdecode(data[start:offset].split(b"\0", 1)[0])
                paths.update(prefix + name for _folder, prefix in folders)
            else:
                paths.update(folder for folder, _prefix in folders)
            if mask & _LOST_FOLDER:
                lost = True
                if mask & _IN_MOVE_SELF:
                    # A moved folder keeps its watch (it follows the inode),
                    # which would report the new place under the old name.
                    # Its failure can only mean the watch is gone already.
                    self._rm_watch(self._fd, wd)
                self._forget_wd(wd)
        return lost


def _libc() -> "ctypes.CDLL":
    """The C library, keeping ``errno``; raises ``OSError`` if it has no inotify."""
    import ctypes  # already imported by the caller: a dictionary lookup

    # CDLL(None) is the interpreter's own symbols, libc's among them wherever
    # Python is linked dynamically: no library path to guess, no subprocess.
    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "inotify_init1"):
        return libc
    import ctypes.util  # find_library runs ldconfig: only when needed

    name = ctypes.util.find_library("c")
    if name is not None:
        libc = ctypes.CDLL(name, use_errno=True)
        if hasattr(libc, "inotify_init1"):
            return libc
    import errno

    raise OSError(errno.ENOSYS, "no inotify_init1 in the C library")


# --- kqueue: macOS and the BSDs ---------------------------------------------


class _Kqueue:
    """macOS and the BSDs: tells which watched files and folders changed, by kqueue.

    kqueue watches open descriptors, so every watched path costs one: the
    caller gives the program's own files and folders (not the standard
    library, not site-packages), and past a cap well under the descriptor
    limit the rest is returned as not watched and polled. A folder's event
    says an entry was added, removed or renamed (the caller lists it); a
    file's says it was written, extended, touched, deleted or renamed over.

    ``select_module`` is for tests only: Linux has no kqueue, so the tests
    pass a fake ``select`` whose queue the test fills. Raises ``OSError``
    where there is no kqueue.
    """

    def __init__(
        self, select_module: "_KqueueModule | None" = None, limit: "int | None" = None
    ) -> None:
        if select_module is None:
            select_module = _select_with_kqueue()
        self._select = sel = select_module
        self._kq = sel.kqueue()
        self._limit = _descriptor_budget() if limit is None else limit
        self._events = (
            sel.KQ_NOTE_WRITE
            | sel.KQ_NOTE_DELETE
            | sel.KQ_NOTE_EXTEND
            | sel.KQ_NOTE_ATTRIB
            | sel.KQ_NOTE_RENAME
            | sel.KQ_NOTE_REVOKE
        )
        # After these the descriptor no longer stands for the path: the file
        # was deleted, another file renamed over it, or its volume revoked.
        self._gone = sel.KQ_NOTE_DELETE | sel.KQ_NOTE_RENAME | sel.KQ_NOTE_REVOKE
        self._fds: dict[str, int] = {}  # path -> open descriptor
        self._paths: dict[int, str] = {}  # descriptor -> path (the kevent ident)
        self._wanted: tuple[str, ...] = ()
        self._failed: set[str] = set()

    def fileno(self) -> int:
        """The kqueue descriptor: readable when events are queued."""
        return self._kq.fileno()

    def cover(
        self, files: "list[str]", folders: "set[str]"
    ) -> "tuple[set[str], set[str]]":
        """Watch ``folders`` and the program's own ``files``, up to the cap.

        Not the standard library's or site-packages' files: a descriptor
        each, they would use up the budget. Returns the files covered and
        the folders that could not be watched.
        """
        library = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
        own = [
            f
            for f in files
            if not f.startswith(library)
            and "site-packages" not in f
            and "dist-packages" not in f
        ]
        failed = self.sync([*folders, *own])
        return {f for f in own if f not in failed}, folders & failed

    def sync(self, paths: "Iterable[str]") -> "set[str]":
        """Watch exactly ``paths``, files and folders, in the order given, up to a cap.

        Returns the paths not watched: over the cap, gone, or not openable.
        Order matters only past the cap, where the first ones win, so the
        caller lists the files most likely to be edited first. Failed paths
        are tried again when a later call names a different list; a watch
        dropped by ``read()`` (a file deleted or renamed over) is re-added by
        the next call. A call with the same list as the last makes no system
        call.
        """
        wanted = tuple(dict.fromkeys(paths))
        keep = set(wanted)
        for path in [p for p in self._fds if p not in keep]:
            self._unwatch(path)
        if wanted != self._wanted:
            self._wanted = wanted
            self._failed.clear()
        changes = []
        for path in wanted:
            if path in self._fds or path in self._failed:
                continue
            if len(self._fds) >= self._limit:
                self._failed.add(path)
                continue
            try:
                fd = _open_for_events(path)
            except OSError:
                # Safe to swallow: returned as not watched, so polled.
                self._failed.add(path)
                continue
            self._fds[path] = fd
            self._paths[fd] = path
            flags = self._select.KQ_EV_ADD | self._select.KQ_EV_CLEAR
            changes.append(
                self._select.kevent(
                    fd, self._select.KQ_FILTER_VNODE, flags, self._events
                )
            )
        if changes:
            self._register(changes)
        return set(self._failed)

    def read(self) -> "set[str] | None":
        """Drain the queued events without blocking; the paths they name.

        A deleted or renamed-over path is named and its watch dropped (the
        next ``sync()`` watches whatever is there then). None means the
        kqueue itself failed and the caller must scan everything.
        """
        paths: set[str] = set()
        batch = max(len(self._fds), 1)
        while True:
            try:
                events = self._kq.control(None, batch, 0)
            except OSError:
                # Safe: None makes the caller scan everything.
                return None
            for event in events:
                path = self._paths.get(event.ident)
                if path is None:
                    continue  # queued before its watch was dropped
                paths.add(path)
                if event.flags & self._select.KQ_EV_ERROR or event.fflags & self._gone:
                    self._unwatch(path)
            if len(events) < batch:
                return paths

    def close(self) -> None:
        """Close the kqueue and every watched descriptor; harmless when closed."""
        for path in list(self._fds):
            self._unwatch(path)
        self._wanted = ()
        self._failed.clear()
        self._kq.close()

    def forget(self) -> None:
        """Release all in a child forked after ``start()``.

        A kqueue is not inherited across ``fork()`` (the child has no such
        descriptor, and recent CPython versions mark the object closed there,
        so closing it is harmless), but the watched files' descriptors are,
        and closing them in the child leaves the parent's copies open and
        its watches in place.
        """
        self.close()

    def _register(self, changes: "list[_KEvent]") -> None:
        try:
            self._kq.control(changes, 0, 0)
        except OSError:
            # A registration failed (kevent() stops at the first error):
            # register one by one and give up only the ones that fail, which
            # are then polled.
            for change in changes:
                try:
                    self._kq.control([change], 0, 0)
                except OSError:
                    path = self._paths.get(change.ident)
                    if path is not None:
                        self._unwatch(path)
                        self._failed.add(path)

    def _unwatch(self, path: str) -> None:
        """Stop watching ``path``: closing its descriptor also removes its kevent."""
        fd = self._fds.pop(path)
        del self._paths[fd]
        os.close(fd)


def _select_with_kqueue() -> "_KqueueModule":
    """The ``select`` module where it has kqueue; raises ``OSError`` elsewhere."""
    if sys.platform != "linux" and sys.platform != "win32":
        import select

        if hasattr(select, "kqueue"):
            return select
    import errno

    raise OSError(errno.ENOSYS, "no kqueue on this platform")


def _open_for_events(path: str) -> int:
    """A descriptor on ``path`` for kqueue; raises ``OSError``.

    ``O_EVTONLY`` (macOS) opens for notifications only, so the volume can
    still be ejected; ``O_NONBLOCK`` keeps a FIFO from blocking the open.
    """
    if sys.platform == "win32":
        import errno

        raise OSError(errno.ENOSYS, "no kqueue on Windows")
    evtonly = getattr(
        os, "O_EVTONLY", 0x8000 if sys.platform == "darwin" else os.O_RDONLY
    )
    return os.open(path, evtonly | os.O_NONBLOCK | os.O_CLOEXEC)


def _descriptor_budget() -> int:
    """How many descriptors kqueue may take: a quarter of the soft limit, at most 1024.

    macOS's default soft limit is 256, so 64 there: the program's own files
    first (the caller's order), the rest polled. The program keeps the other
    three quarters for its files, sockets and children.
    """
    if sys.platform == "win32":
        return 0
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(0, min(soft // 4, 1024))


# --- Which file systems notifications can be trusted on ---------------------

# Local file systems: every change to them goes through this kernel, so
# inotify hears of it. Not here, hence polled every check_time: network
# (nfs, nfs4, cifs, smb3, afs, ceph, ...), virtual-machine shares (9p as in
# WSL2's /mnt/c, vboxsf, virtiofs, vmhgfs) and every FUSE file system
# (fuse.sshfs, fuseblk, Docker Desktop's bind mounts, ...), where another
# machine or a user-space daemon can change files behind the kernel's back.
_LOCAL_FILE_SYSTEMS = frozenset(
    (
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "jfs", "reiserfs",
        "bcachefs", "nilfs2", "tmpfs", "ramfs", "overlay", "hfs", "hfsplus",
        "vfat", "msdos", "exfat", "ntfs3", "squashfs", "erofs", "iso9660",
    )
)  # fmt: skip


def _mount_table(path: str = "/proc/self/mountinfo") -> "list[tuple[str, str]]":
    """``(mount point, file system type)`` of every mount, longest mount point first.

    Read from ``/proc/self/mountinfo`` (this process's mount namespace). Among
    mounts stacked on one mount point the last mounted, the one visible,
    comes first. The type keeps FUSE's subtype (``fuse.sshfs``). Returns an
    empty list where the file cannot be read (no ``/proc``): every path is
    then untrusted.
    """
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []  # Safe: an empty table trusts nothing, so everything is polled.
    import re

    escape = re.compile(rb"\\([0-7]{3})")
    table = []
    for line in reversed(lines):
        # "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw"
        # Field 5 is the mount point; a variable number of optional fields
        # end at "-", which the type follows. Spaces, tabs, newlines and
        # backslashes in a mount point are escaped as \040 \011 \012 \134.
        fields = line.split(b" ")
        try:
            kind = fields[fields.index(b"-", 6) + 1]
        except (ValueError, IndexError):
            continue  # Safe: a malformed line trusts nothing.
        point = escape.sub(lambda m: bytes((int(m.group(1), 8),)), fields[4])
        table.append((os.fsdecode(point), os.fsdecode(kind)))
    table.sort(key=lambda entry: -len(entry[0]))  # stable: the visible mount first
    return table


def _mount_of(path: str, table: "list[tuple[str, str]]") -> "tuple[str, bool]":
    """The mount point holding ``path``'s real path, and whether it is local.

    ``table`` is ``_mount_table()``. Not local: network, virtual-machine and
    FUSE file systems, unknown types, and a path no mount holds ('').
    """
    real = os.path.realpath(path)
    for point, kind in table:
        if real == point or real.startswith(
            point if point.endswith("/") else point + "/"
        ):
            return point, kind in _LOCAL_FILE_SYSTEMS
    return "", False


# macOS has no /proc and os.statvfs() gives neither a file system's type nor
# its MNT_LOCAL flag, so the one stdlib-only way is statfs(2) through ctypes.
# struct statfs with 64-bit inodes (<sys/mount.h>, the only layout on arm64,
# "statfs$INODE64" on x86_64): f_bsize, f_iosize, five block and file counts,
# f_fsid, f_owner, f_type, f_flags, f_fssubtype, then the names.
_DARWIN_STATFS = "<Ii5Q2iIIII16s1024s1024sI7I"  # 2168 bytes
_MNT_LOCAL = 0x1000
_DARWIN_LOCAL_FILE_SYSTEMS = frozenset(("apfs", "hfs"))


def _trusted_darwin(path: str) -> bool:
    """macOS: whether notifications can be trusted for ``path``: on local APFS or HFS+.

    Never run on a Mac yet (it is type-checked and its parsing tested on
    Linux), so it fails closed: any error, or an answer whose mount point is
    not a parent of the path (a layout read wrong), is False, and the path is
    polled as it would be without notifications. Elsewhere it is False.
    """
    if sys.platform != "darwin":
        return False
    import ctypes

    real = os.path.realpath(path)
    libc = ctypes.CDLL(None, use_errno=True)
    statfs = getattr(libc, "statfs$INODE64", None) or getattr(libc, "statfs", None)
    if statfs is None:
        return False
    buffer = ctypes.create_string_buffer(2168)
    if statfs(os.fsencode(real), buffer) != 0:
        return False  # Safe: untrusted means polled.
    return _statfs_says_local(buffer.raw, real)


def _statfs_says_local(raw: bytes, real: str) -> bool:
    """Whether a macOS ``struct statfs`` for ``real`` is a local APFS or HFS+ volume."""
    import struct

    fields = struct.unpack_from(_DARWIN_STATFS, raw)
    flags, type_name, on_name = fields[11], fields[13], fields[14]
    kind = os.fsdecode(type_name.split(b"\0", 1)[0])
    point = os.fsdecode(on_name.split(b"\0", 1)[0])
    under = real == point or real.startswith(point.rstrip("/") + "/")
    return under and bool(flags & _MNT_LOCAL) and kind in _DARWIN_LOCAL_FILE_SYSTEMS


def _is_local(folder: str, table: "list[tuple[str, str]]") -> bool:
    """Can notifications be trusted for files in ``folder``?"""
    if sys.platform == "darwin":
        return _trusted_darwin(folder)
    return _mount_of(folder, table)[1]


# Choose the notification source once: inotify on Linux, kqueue on macOS and
# the BSDs, none elsewhere.
_NOTIFIER: "type[_Inotify | _Kqueue] | None"
if sys.platform.startswith("linux"):
    _NOTIFIER = _Inotify
elif sys.platform == "darwin" or "bsd" in sys.platform:
    _NOTIFIER = _Kqueue
else:
    _NOTIFIER = None


class _News:
    """The notification source as the watcher uses it.

    Which watched files it covers (``cover()``), waiting for it with the
    poll's timeout (``wait()``), the watched paths it named since the last
    look (``named``, ``lost``, ``relist``), and the mounts whose news proved
    incomplete (``heal()``). Raises ``OSError`` if the source cannot be made.
    """

    def __init__(
        self, kind: "type[_Inotify | _Kqueue]", distrusted: "set[int]"
    ) -> None:
        import selectors

        self.source = kind()
        try:
            # wake() writes here so that stop() ends a wait at once.
            self.wake_r, self.wake_w = os.pipe()
        except OSError:
            self.source.close()
            raise
        if sys.platform != "win32":  # no source there: keeps mypy content
            os.set_blocking(self.wake_w, False)
        # Not select(): it takes no descriptor above 1023, which a busy
        # server's may be.
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.source.fileno(), selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.closing = threading.Lock()  # wake() from stop() against close()
        self.closed = False
        self.table = _mount_table() if sys.platform.startswith("linux") else []
        self.local: dict[str, tuple[bool, int]] = {}  # folder: (trusted, device)
        self.distrusted = distrusted  # devices a safety poll caught out
        self.links: dict[str, str] = {}  # a symlinked file's real path: its path
        self.named: set[str] = set()
        self.named_since_poll: set[str] = set()
        self.lost = True  # the first scan with news is a full one: see _Watcher
        self.relist = False  # a watched folder's listing may have changed
        self.unknown = False  # a .py file not watched yet changed: see drain()
        self.relist_always = False  # some watched folder is not covered
        self.idle_reads: list[float] = []  # when reads named nothing watched

    def close(self, forked: bool = False) -> None:
        """Close the source and the wake-up pipe; ``forked``: in a child.

        In a child forked after ``start()`` the lock is not taken: another
        thread of the parent may have held it at the fork.
        """
        if forked:
            self.closing = threading.Lock()
        with self.closing:
            self.closed = True
            try:
                self.selector.close()
            except OSError:
                pass  # a kqueue is not inherited by a child: nothing to close
            if forked:
                self.source.forget()
            else:
                self.source.close()
            for fd in (self.wake_r, self.wake_w):
                os.close(fd)

    def wake(self) -> None:
        with self.closing:
            if self.closed:
                return  # a closed descriptor's number may be another file's now
            try:
                os.write(self.wake_w, b".")
            except OSError:
                pass  # full: a wake is pending anyway

    def cover(self, files: "dict[str, None]", folders: "list[str]") -> "set[str]":
        """Have the source watch what it can of ``files`` and ``folders``.

        Returns the files it covers: on a trusted file system, with their
        folder (kqueue: the file itself) watched.
        """
        trusted = [f for f in files if self.trusts(os.path.dirname(f))]
        wanted = {d for d in folders if self.trusts(d)}
        self.links = {}
        for path in trusted:
            if os.path.islink(path):
                # Events come from the folder of the file the link points to.
                real = os.path.realpath(path)
                self.links[real] = path
                wanted.add(os.path.dirname(real))
        covered, failed = self.source.cover(trusted, wanted)
        for real, path in self.links.items():
            if os.path.dirname(real) in failed:
                covered.discard(path)
        self.relist_always = any(d not in wanted or d in failed for d in folders)
        return covered

    def trusts(self, folder: str) -> bool:
        known = self.local.get(folder)
        if known is None:
            try:
                device = os.stat(folder).st_dev
            except OSError:
                device = -1  # not there: polled until it is
            known = self.local[folder] = (
                device >= 0 and _is_local(folder, self.table),
                device,
            )
        return known[0] and known[1] not in self.distrusted

    def wait(self, interval: float, stop: "threading.Event", targets: _Targets) -> bool:
        """Wait up to ``interval`` for news about ``targets``; True if stopped.

        Raises ``OSError`` if the source fails.
        """
        if self.lost or self.named or self.relist or self.unknown:
            return stop.is_set()  # news taken in but not looked at yet
        deadline = time.monotonic() + interval
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return stop.is_set()
            fd = self.source.fileno()
            ready = [key.fd for key, _ in self.selector.select(timeout)]
            if stop.is_set():
                return True
            if self.wake_r in ready:
                os.read(self.wake_r, 512)
            if fd in ready:
                if self.drain(targets):
                    return False
                # Nothing watched: a few such reads (an editor's temporary
                # file) are read at once, a stream of them (a log) in
                # batches; see "Notifications".
                now = time.monotonic()
                self.idle_reads = [t for t in self.idle_reads if now - t < _SETTLE]
                self.idle_reads.append(now)
                if len(self.idle_reads) > _IDLE_READS and stop.wait(_SETTLE):
                    return True

    def drain(self, targets: _Targets) -> bool:
        """Take what the source has queued; True if it names anything watched."""
        named = self.source.read()
        if named is None:
            self.lost = True
            return True
        found = False
        for path in named:
            path = self.links.get(path, path)
            if path in targets.files:
                self.named.add(path)
                found = True
            elif (
                path in targets.dirs or os.path.dirname(path) in targets.dirs
            ) and not targets.ignores(path):
                self.relist = found = True
            elif path.endswith(".py"):
                # Perhaps a module imported since the last look, not in the
                # list yet: the scan this wakes brings the list up to date.
                # Remembered, for a drain at the end of a scan (whose list
                # was made before the import) wakes nothing.
                self.unknown = found = True
        self.named_since_poll |= self.named
        return found

    def take(self) -> "set[str]":
        named, self.named, self.relist = self.named, set(), False
        self.unknown = False
        return named

    def heal(self, changed: "Iterable[str]", covered: "Iterable[str]") -> bool:
        """After a safety poll: distrust the mounts of changes none named.

        ``changed``: what the poll found changed, first sights left out;
        ``covered``: the files the source covers. Returns True if a mount
        is polled every check_time from now on.
        """
        unreported = set(changed).intersection(covered) - self.named_since_poll
        self.named_since_poll = set(self.named)
        healed = False
        for path in sorted(unreported):
            folder = os.path.dirname(path)
            device = self.local.get(folder, (False, -1))[1]
            if device in self.distrusted or device < 0:
                continue
            self.distrusted.add(device)
            self.local.clear()  # decided again against the new distrust
            point = _mount_of(folder, self.table)[0] if self.table else folder
            _log.warning(
                "%s changed and no notification said so: polling the files "
                "under %s every check_time from now on",
                _relative(path),
                point or folder,
            )
            healed = True
        return healed


class _Watcher:
    """The loop: wait, scan, let a burst settle, decide; then ``on_change``.

    ``on_change`` gets the changed paths, each with ``created`` or
    ``modified``, once they have settled, compile, and are not a program's
    own start-up writes; it is the owner's business what to do with them.
    """

    def __init__(self, cwd: str, handover: str) -> None:
        self.targets = _Targets(cwd)
        self.prints = _Prints()
        self.handover: Optional[str] = handover  # read at the first scan
        self.loops: dict[str, int] = {}  # the previous run's restart-loop counts
        self.next_loops: dict[str, int] = {}
        self.muted: set[str] = set()
        self.pending: dict[str, str] = {}
        self.unsettled = False  # changes seen, not yet settled and decided
        self.restart_since = 0  # the settled scan's time, for the next run
        self.poll_lock = threading.Lock()
        self.reported: set[str] = set()
        self.poll_only = os.environ.get(_POLL_ENV, "") not in ("", "0")
        self.news: Optional[_News] = None  # made in the thread; see "Notifications"
        self.news_failed = False
        self.distrusted: set[int] = set()  # devices, until news takes them
        self.covered: set[str] = set()
        self.next_safety_poll = 0.0
        self.modules_changed = 0.0  # when the list of files last changed

    @property
    def scan_count(self) -> int:
        """Scans so far; read by bench/run.py."""
        return self.prints.scan_count

    def run(
        self,
        interval: float,
        stop: "threading.Event",
        on_change: "Callable[[dict[str, str]], object]",
    ) -> None:
        """Poll until ``stop`` is set; call ``on_change`` on a change."""
        # Imported before the first scan, not during one, so that sys.modules
        # settles before the list of module files is first built.
        import zlib  # noqa: F401  (for _digest)

        settle = min(_SETTLE, interval)
        # The first scan comes soon whatever the interval: notifications,
        # which start after it, cover the files from then on.
        wait = min(interval, _FIRST_SCAN)
        try:
            while not self.wait(wait, stop):
                wait = interval
                try:
                    # One poll at a time: a wait() and a start() may overlap.
                    with self.poll_lock:
                        changed = self.poll(settle, stop)
                        if changed and stop.is_set():
                            self.pending.update(changed)
                            self.unsettled = True  # the next run restarts for them
                            changed = {}
                    if changed:
                        on_change(changed)
                except Exception as e:
                    self.report_once(
                        f"scan:{type(e).__name__}:{e}",
                        "scan or restart failed; the next scan runs as usual",
                        exc_info=True,
                    )
        finally:
            self.close_news()

    def wait(self, interval: float, stop: "threading.Event") -> bool:
        """Wait for the next poll, or news of a change; True if stopped."""
        news = self.news
        if news is None:
            return stop.wait(interval)
        prints = self.prints
        if not (
            prints.polled.paths
            or prints.recent
            or any(record.absent for record in prints.seen.values())
            or news.relist_always
            or time.monotonic() < self.modules_changed + _IDLE_TICK * 5
        ):
            # Nothing to poll: wake only to look at sys.modules now and then;
            # see "Notifications".
            interval = max(interval, _IDLE_TICK)
        interval = min(interval, max(0.0, self.next_safety_poll - time.monotonic()))
        try:
            return news.wait(interval, stop, self.targets)
        except (OSError, ValueError) as e:
            self.news_failed = True
            self.close_news()
            _log.warning("notifications failed (%s): polling every file", e)
            self.targets.modules_key = None  # files go back to the polled group
            return stop.is_set()

    def open_news(self) -> None:
        """Make the notification source, after the first scan; see there."""
        if _NOTIFIER is None or self.poll_only or self.news_failed:
            return
        try:
            self.news = _News(_NOTIFIER, self.distrusted)
        except OSError as e:
            self.news_failed = True
            _log.debug("no notifications (%s): polling every file", e)
            return
        self.set_files()

    def close_news(self) -> None:
        news, self.news = self.news, None
        if news is not None:
            news.close()
            self.covered = set()

    def wake(self) -> None:
        """End a wait() for news at once (stop() calls it)."""
        news = self.news
        if news is not None:
            news.wake()

    def forget_news(self) -> None:
        """In a child forked after start(): the source is the parent's."""
        news, self.news = self.news, None
        if news is not None:
            news.close(forked=True)

    def set_files(self) -> None:
        """Give the new list of files to the fingerprints, by group."""
        targets = self.targets
        if self.news is not None:
            self.covered = self.news.cover(targets.files, list(targets.dirs))
        self.prints.set_files(targets.files, targets.fresh, self.covered)

    def poll(self, settle: float, stop: "threading.Event") -> "dict[str, str]":
        """One scan; on a change, scan until the burst settles.

        Returns the changed paths when the process should restart, or an
        empty dict (also while a changed ``.py`` file does not compile).
        """
        since = time.time_ns()
        changed = self.scan()
        if not changed and not self.unsettled:
            return {}  # also while a syntax error holds the restart: nothing new
        self.unsettled = True
        while changed:
            for path, how in changed.items():
                self.pending.setdefault(path, how)
            if stop.wait(settle):
                return {}  # stopped: the next run settles what is pending
            since = time.time_ns()
            changed = self.scan()
        self.unsettled = False
        ready = {p: how for p, how in self.pending.items() if os.path.exists(p)}
        if not ready:
            self.pending.clear()
            return {}
        if any(self.does_not_compile(path) for path in ready):
            return {}
        self.pending.clear()
        self.restart_since = since
        self.next_loops = self.count_loops(ready)
        return ready

    def list_files(self) -> None:
        """List the watched folders now, before the first scan.

        A file that appears in one from then on is new there (``created``),
        however late the first scan comes. The wrapper calls it before the
        program runs: a program that ends at once must not leave the folders
        unlisted while the user already adds files.
        """
        with self.poll_lock:
            self.take_handover()
            self.refresh()

    def refresh(self, walk: bool = True, lost: bool = False) -> None:
        """Bring the list of files up to date; on a change, regroup them.

        ``lost``: the source lost track, so set_files() runs anyway, which
        also adds the watches it dropped.
        """
        if self.targets.refresh(walk=walk) or lost:
            self.modules_changed = time.monotonic()
            self.set_files()

    def take_handover(self) -> None:
        """Start from what the previous run handed over; see _Handover."""
        if self.handover is None:
            return
        handover = _Handover(self.handover)
        self.handover = None
        self.prints.take(handover)
        self.targets.since = self.prints.since
        self.loops = handover.loops
        self.muted = {p for p, n in self.loops.items() if n >= _LOOP_RESTARTS}
        self.distrusted = set(handover.distrusted)

    def scan(self) -> "dict[str, str]":
        """Bring the list of files up to date, stat them; return the changed."""
        self.take_handover()
        news = self.news
        if news is not None:
            news.drain(self.targets)  # what happened since the wake
        full = news is None or news.lost or time.monotonic() >= self.next_safety_poll
        relist = news is None or full or news.relist or news.relist_always
        lost = news is not None and news.lost
        self.refresh(walk=relist, lost=lost)
        if full:
            cpu = time.thread_time()
            if news is not None:
                news.lost = False
                news.take()  # the full scan looks at what they named
            changed = self.prints.scan(everything=True)
            self.prints.unseen = set()
            if news is not None:
                # A change the stats saw is queued by now; one that came after
                # them stays named for the next scan, which comes at once.
                news.drain(self.targets)
                # After a lost track, changes no notification named are
                # expected: only a scheduled safety poll proves news missing.
                first = self.prints.first_sights
                if (
                    not lost
                    and not news.lost
                    and news.heal([p for p in changed if p not in first], self.covered)
                ):
                    self.set_files()
            self.next_safety_poll = time.monotonic() + max(
                _SAFETY_POLL, (time.thread_time() - cpu) / _SAFETY_BUDGET
            )
        else:
            changed = self.prints.scan(everything=False)
            # Files not seen yet (new modules, files a relisting found) are
            # news too: no notification told of what happened before.
            named = news.take() | self.prints.unseen  # type: ignore[union-attr]
            self.prints.unseen = set()
            changed.update(self.prints.check(named))
        if news is None:
            self.open_news()
        for path in self.muted.intersection(changed):
            if not self.early(path):
                # Changed well after the start: the user's edit, not the
                # program's. It counts; the program's own writes at the next
                # start stay muted (count_loops() keeps the count).
                continue
            del changed[path]
            self.report_once(
                f"loop:{path}",
                "%s changed right after each of the last %d starts: not "
                "counting its changes at start any more (ignore() or --ignore "
                "leaves it out altogether)",
                _relative(path),
                _LOOP_RESTARTS,
                level=logging.WARNING,
            )
        return changed

    def early(self, path: str) -> bool:
        """Did ``path`` change within _EARLY_NS of this run's start?"""
        try:
            stamp = _newest_stamp(os.stat(path))
        except OSError:
            return False
        return stamp - self.prints.since <= _EARLY_NS

    def count_loops(self, ready: "dict[str, str]") -> "dict[str, int]":
        """The restart-loop counts for the next run; see _LOOP_RESTARTS.

        A restart counts when every file that caused it changed within
        _EARLY_NS of this run's start and is no Python source (the program's
        own code is the user's to edit, not a file it writes as it starts).
        """
        kept = {p: n for p, n in self.loops.items() if n >= _LOOP_RESTARTS}
        for path in ready:
            if path.endswith((".py", ".pyw")) or not self.early(path):
                return kept
        return {**kept, **{p: self.loops.get(p, 0) + 1 for p in ready}}

    def handover_value(self) -> str:
        """What the next run needs, for RELOADER_WATCH; see _Handover.

        Under the poll lock: the restart may run on a loop's thread while the
        watcher thread goes on scanning.
        """
        with self.poll_lock:
            since = self.restart_since or time.time_ns()
            loops = self.next_loops if self.restart_since else {}
            self.restart_since = 0
            digests = self.prints.recent_digests()
        return _Handover.write(since, digests, loops, self.distrusted)

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

    def report_once(
        self,
        key: str,
        message: str,
        *args: object,
        level: int = logging.ERROR,
        **kw: "Any",
    ) -> None:
        if key in self.reported:
            return
        if len(self.reported) > 1000:
            self.reported.clear()
        self.reported.add(key)
        _log.log(level, message, *args, **kw)


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _is_dir(mode: int) -> bool:
    return mode & 0o170000 == 0o040000  # stat.S_ISDIR without importing stat


def _relative(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except (ValueError, OSError):
        return path  # another drive (Windows), or the working directory is gone
    return path if relative.startswith(".." + os.sep) else relative


def _announce(changed: "dict[str, str]") -> None:
    """The one line per restart, which must never be lost; see "Logging"."""
    first, how = next(iter(changed.items()))
    if any(other != how for other in changed.values()):
        how = "changed"
    more = len(changed) - 1
    message = "%s " + how + "; restarting"
    args: tuple[object, ...] = (_relative(first),)
    if more:
        message = "%s and %d other file%s " + how + "; restarting"
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


def _reexecute(argv: "list[str]", cwd: str, sockets: "_Sockets", handover: str) -> None:
    """Re-execute ``argv`` from ``cwd``; return only if that failed.

    ``handover`` is what the watcher tells the next run; see _Handover.
    """
    _flush_output()
    _clear_alarms()
    _restore_echo()
    try:
        if sys.platform == "win32":
            _spawn_and_exit(argv, cwd, handover, sockets)
        else:
            _exec(argv, cwd, handover, sockets)
    finally:
        os.environ.pop(_WATCH_ENV, None)
        os.environ.pop(_SOCKETS_ENV, None)
        sockets.take_back()


def _exec(argv: "list[str]", cwd: str, handover: str, sockets: "_Sockets") -> None:
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
        os.environ[_WATCH_ENV] = f"exec:{os.getpid()}:{handover}"
        _flush_output()  # again: other threads may have printed meanwhile
        os.execv(argv[0], argv)
    except (OSError, ValueError, TypeError) as e:
        # ValueError, TypeError: an empty or None sys.executable (embedded).
        import errno

        if isinstance(e, OSError) and e.errno == getattr(errno, "ENOTSUP", None):
            # macOS refuses execv while other threads run.
            sockets.take_back()
            _spawn_and_exit(argv, cwd, handover, sockets)
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


def _drop_cached_bytecode(paths: "Iterable[str]") -> None:
    """Delete the ``__pycache__`` files of the changed ``.py`` files.

    Python takes a cached .pyc as current while the source's mtime, in whole
    seconds, and size are what it recorded: after an edit that keeps both
    (``cp -p``, ``os.utime`` back, a same-size edit in the second of the last
    import) the next run would import the old code. Without the file, the
    next import compiles the source. Best effort: a cache that cannot be
    deleted (read-only) stays.
    """
    from importlib.util import cache_from_source

    for path in paths:
        if not path.endswith(".py"):
            continue
        for optimization in ("", 1, 2):  # plain, -O, -OO
            try:
                os.unlink(cache_from_source(path, optimization=optimization))
            except (OSError, ValueError, NotImplementedError):
                pass  # none, not ours to delete, or no cache on this Python


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


def _spawn_and_exit(
    argv: "list[str]", cwd: str, handover: str, sockets: "_Sockets"
) -> None:
    """Run ``argv`` as a new process, wait for it, exit with its status.

    Used where execv cannot keep the process (Windows, macOS with threads):
    a console or a parent waiting on this process sees the new one's end.
    Returns only if the new process could not be started.
    """
    import subprocess

    os.environ[_WATCH_ENV] = f"spawn:{os.getpid()}:{handover}"
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
        sockets.unlink_hidden()
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
#
# Keeping a listening socket across restarts
# ---------------------------------------------------------------------------
# A socket survives execv if its descriptor is inheritable, so the port stays
# open, and connections made while the next run imports wait in its backlog.
# Two ways lead there, with one implementation (``_Sockets.bind`` and
# ``_Sockets.listen``): ``listening_socket()`` calls them itself, and under the
# wrapper ``socket.socket.bind`` and ``listen`` are replaced by them, so any
# server built on the socket module (socketserver, asyncio, Tornado, and the
# frameworks on those) keeps its socket without a changed line.
#
# On listen(), reloader takes a duplicate of the descriptor (its own, never
# inherited until the hand-over): the program may close its socket before the
# restart (a graceful shutdown does), and the duplicate keeps the socket
# alive. On bind() of the same address in the next run, the descriptor handed
# over is duplicated onto the program's socket (dup2), so the program's
# object, and its descriptor number, now are the kept socket, already bound
# and listening. The same happens within a run when a program binds again an
# address whose socket it closed. An address is the family, the address as
# given to bind() (so port 0 keeps the first run's port) and the options that
# bind() depends on (IPV6_V6ONLY, SO_REUSEPORT). A second bind() of an address
# whose kept socket the program still has open is a real bind(): it fails, or
# with SO_REUSEPORT gets a socket of its own, as without reloader.
#
# A Unix socket's path is where clients find it, and servers unlink the path
# before bind(). So reloader keeps a hard link to the socket's file (a hidden
# name beside it) from listen() on, and a bind() that adopts the socket puts
# the path back from it.


class _Kept:
    """A descriptor reloader holds for a listening socket of the program."""

    __slots__ = ("key", "owner", "sock")

    def __init__(self, key: str, sock: "socket.socket") -> None:
        self.key = key
        self.sock = sock  # reloader's duplicate
        self.owner: Callable[[], Optional[socket.socket]] = lambda: None

    def is_free(self) -> bool:
        """True if the program no longer has a socket open on it."""
        owner = self.owner()
        return owner is None or owner.fileno() < 0


# When the sockets handed over to a run that it has not bound again are
# closed: some seconds after its last listen(), long enough for a server that
# binds a second port a little later; and under the wrapper, if it listens on
# nothing, a minute after it started, long enough for a slow start (a Django
# project's, say), whose bind() then still adopts its socket.
_UNCLAIMED_AFTER_LISTEN = 10.0
_UNCLAIMED_AFTER_START = 60.0


class _Sockets:
    """The listening sockets kept open through ``execv``.

    The hand-over is an environment variable, RELOADER_SOCKETS, holding JSON:
    the pid (execv keeps it, so a child process of the program can tell the
    variable is not its own) and, per socket, the address key, the descriptor
    and the address it is bound to.
    """

    def __init__(self, own_environment: bool) -> None:
        self.lock = threading.Lock()
        self.hooked_pid = 0  # the process whose socket class is hooked
        self.kept: list[_Kept] = []
        # Handed over by the previous run, checked, and not bound again yet.
        self.offered: dict[str, list[socket.socket]] = {}
        self.keys: Any = None  # socket -> address key, weakly, from bind()
        self.timer: Optional[threading.Timer] = None
        self.hidden: set[str] = set()  # see _link_unix_path()
        self.restart_pending = False  # set by _State.restart()
        self.value = os.environ.get(_SOCKETS_ENV, "")
        if own_environment:
            os.environ.pop(_SOCKETS_ENV, None)

    def install(self) -> None:
        """Under the wrapper: make every bind() and listen() go through here."""
        import socket

        sockets = self

        def bind(sock: "socket.socket", address: "Any") -> None:
            sockets.bind(sock, address, hooked=True)

        def listen(sock: "socket.socket", *backlog: int) -> None:
            sockets.listen(sock, *backlog, hooked=True)

        real_unlink, real_remove = os.unlink, os.remove

        def unlink(path: "Any", *args: "Any", **kwargs: "Any") -> None:
            if not sockets.keeps_path(path):
                real_unlink(path, *args, **kwargs)

        def remove(path: "Any", *args: "Any", **kwargs: "Any") -> None:
            if not sockets.keeps_path(path):
                real_remove(path, *args, **kwargs)

        if sys.platform == "win32":
            return  # the restart spawns there: nothing is handed over
        self.hooked_pid = os.getpid()
        socket.socket.bind = bind  # type: ignore[assignment,unused-ignore]
        socket.socket.listen = listen  # type: ignore[assignment,unused-ignore]
        # asyncio (3.13+) unlinks a Unix server's path when the server
        # closes, which a graceful restart makes it do: during a restart
        # the path of a kept socket stays, where the next run's clients
        # look for it.
        os.unlink, os.remove = unlink, remove

    def keeps_path(self, path: "Any") -> bool:
        """Is ``path`` a kept Unix socket's, with a restart under way?"""
        if not self.restart_pending or not isinstance(path, str):
            return False
        # As bound: relative, or not.
        hidden = {_hidden_path(path), _hidden_path(os.path.abspath(path))}
        return not hidden.isdisjoint(self.hidden)

    def create_server(
        self, address: "Any", kwargs: "dict[str, Any]"
    ) -> "socket.socket":
        """``socket.create_server(address, **kwargs)``, through bind() here."""
        sock = _new_server_socket(**kwargs)
        try:
            try:
                self.bind(sock, address)
            except OSError as e:
                raise OSError(
                    e.errno, f"{e.strerror} (while attempting to bind on {address!r})"
                ) from None
            backlog = kwargs.get("backlog")
            self.listen(sock, *([] if backlog is None else [backlog]))
            return sock
        except OSError:
            sock.close()
            raise

    def bind(self, sock: "socket.socket", address: "Any", hooked: bool = False) -> None:
        """Bind ``sock`` to ``address``, or make it the socket kept for it."""
        import _socket

        key = None
        if not hooked or self.hooked_pid == os.getpid():
            key = _bind_key(sock, address)
        if key is not None:
            kept = self.claim(key, sock)
            if kept is not None and not _restore_unix_path(kept.sock):
                self.drop(kept)  # its path is gone: bind a new one there
                kept = None
            if kept is not None:
                _become(sock, kept)
                self.remember(sock, key)
                path = _unix_path(sock)
                self.note_hidden(None if path is None else _hidden_path(path))
                return
        try:
            _socket.socket.bind(sock, address)
        except OSError as e:
            import errno

            # An edited address (other options, say) on a port that a socket
            # handed over for the old one still holds.
            if key is None or e.errno != errno.EADDRINUSE or not self.close_unclaimed():
                raise
            _socket.socket.bind(sock, address)
        if key is not None:
            self.remember(sock, key)

    def listen(
        self, sock: "socket.socket", *backlog: int, hooked: bool = False
    ) -> None:
        """Listen, and from then on keep the socket for the next run."""
        import _socket

        _socket.socket.listen(sock, *backlog)
        if sys.platform == "win32":
            return  # the restart spawns there (and sockets are no descriptors)
        if hooked and self.hooked_pid != os.getpid():
            return  # a child process of the program keeps nothing
        with self.lock:
            key = self.keys.get(sock) if self.keys is not None else None
            adopted = any(kept.owner() is sock for kept in self.kept)
        if key is None:
            return  # not bound here: not ours to keep
        self.close_unclaimed_later(_UNCLAIMED_AFTER_LISTEN)  # it is serving
        if adopted:
            return  # kept already (adopted, or listen() again)
        try:
            kept = _Kept(key, _duplicate(sock))
        except OSError as e:  # out of descriptors, say: it listens all the same
            _log.warning("cannot keep %s across restarts: %s", key, e)
            return
        kept.owner = _weak(sock)
        with self.lock:
            self.kept.append(kept)
        self.note_hidden(_link_unix_path(sock))

    def note_hidden(self, hidden: "str | None") -> None:
        """Remember a hidden name (see _link_unix_path), to remove at exit."""
        if hidden is None:
            return
        with self.lock:
            if not self.hidden:  # the first in this run: execv forgets atexit's
                import atexit

                atexit.register(self.unlink_hidden_at_exit)
            self.hidden.add(hidden)

    def unlink_hidden_at_exit(self) -> None:
        """Remove the hidden names of Unix sockets when the process ends."""
        if not self.restart_pending:  # a restart ends the run by atexit too:
            self.unlink_hidden()  # the next run needs them

    def unlink_hidden(self) -> None:
        with self.lock:
            found, self.hidden = self.hidden, set()
        for hidden in found:
            _unlink(hidden)

    def drop(self, kept: _Kept) -> None:
        """Close a kept socket for good."""
        with self.lock:
            self.kept = [k for k in self.kept if k is not kept]
        path = _unix_path(kept.sock)
        if path is not None:
            self.hidden.discard(_hidden_path(path))
            _unlink(_hidden_path(path))
        kept.sock.close()

    def remember(self, sock: "socket.socket", key: str) -> None:
        import weakref

        with self.lock:
            if self.keys is None:
                self.keys = weakref.WeakKeyDictionary()
            self.keys[sock] = key

    def claim(self, key: str, sock: "socket.socket") -> "_Kept | None":
        """The kept socket for ``key`` that the program has no socket on.

        It is ``sock``'s from now on (under the lock: two threads binding
        the same address at once must not both get it).
        """
        with self.lock:
            self.load()
            offers = self.offered.get(key)
            found = None
            if offers:
                found = _Kept(key, offers.pop(0))
                self.kept.append(found)
            else:
                free = (k for k in self.kept if k.key == key and k.is_free())
                found = next(free, None)
            if found is not None:
                found.owner = _weak(sock)
            return found

    def load(self) -> None:
        """Read and check the hand-over the first time; hold the lock."""
        value, self.value = self.value, ""
        for key, fd, bound in self.parse(value):
            sock = _check_offer(key, fd, bound)
            if sock is not None:
                self.offered.setdefault(key, []).append(sock)

    def parse(self, value: str) -> "list[tuple[str, int, Any]]":
        import json

        if not value:
            return []
        try:
            data = json.loads(value)
            if data["pid"] != os.getpid():
                raise ValueError(f"written by process {data['pid']}, not this one")
            offers = []
            for key, fd, bound in data["sockets"]:
                if not isinstance(fd, int) or not 2 < fd < 1 << 30:
                    raise ValueError(f"{fd!r} is no descriptor to hand over")
                offers.append((str(key), fd, bound))
        except (ValueError, KeyError, TypeError) as e:
            _log.warning("ignoring %s=%r: %s", _SOCKETS_ENV, value, e)
            return []
        for _, fd, _ in offers:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # not open: _check_offer() will say so
        return offers

    def close_unclaimed_later(self, delay: float) -> None:
        """Close, ``delay`` seconds from now, what was handed over in vain."""
        with self.lock:
            self.load()
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if not any(self.offered.values()):
                return  # nothing to close: no thread
            self.timer = threading.Timer(delay, self.close_unclaimed)
            self.timer.daemon = True
            self.timer.name = "reloader-sockets"
            self.timer.start()

    def keep_unclaimed(self) -> None:
        """The run ended before binding again: the next run may."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def close_unclaimed(self) -> bool:
        """Close the sockets handed over that no bind() has claimed.

        Returns True if one was closed; a later bind() of its address binds
        afresh.
        """
        with self.lock:
            self.load()
            found = [sock for socks in self.offered.values() for sock in socks]
            self.offered = {}
        for sock in found:
            path = _unix_path(sock)
            if path is not None:
                self.hidden.discard(_hidden_path(path))
                _unlink(_hidden_path(path))
            sock.close()
        return bool(found)

    def hand_over(self) -> "set[int]":
        """Make the kept sockets inheritable and describe them for execv.

        The sockets handed over to this run that it never bound again (a run
        that failed at import, say) are passed on too, so the port stays open.
        """
        import json

        with self.lock:
            self.load()
            kept = [(k.key, k.sock) for k in self.kept]
            kept += [(key, s) for key, socks in self.offered.items() for s in socks]
        sockets = []
        for key, sock in kept:
            try:
                sock.set_inheritable(True)
                sockets.append([key, sock.fileno(), _jsonable(sock.getsockname())])
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
            socks = [kept.sock for kept in self.kept]
            socks += [sock for found in self.offered.values() for sock in found]
        for sock in socks:
            try:
                sock.set_inheritable(False)
            except OSError:
                pass  # already closed

    def after_fork_in_child(self) -> None:
        """A forked child holds copies of the parent's duplicates: close them."""
        self.lock = threading.Lock()
        self.timer = None
        self.hidden = set()  # the parent's, to remove when the parent ends
        self.value = ""  # the parent's hand-over, not this process's
        socks = [kept.sock for kept in self.kept]
        socks += [sock for found in self.offered.values() for sock in found]
        self.kept, self.offered = [], {}
        for sock in socks:
            sock.close()


def _new_server_socket(
    family: int = -1,
    backlog: "int | None" = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> "socket.socket":
    """The socket ``socket.create_server()`` makes, before it binds it.

    Raises ``TypeError`` for an argument it does not take, ``ValueError`` as
    it does for options the platform lacks.
    """
    import socket

    family = socket.AF_INET if family == -1 else family
    reuse = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port and reuse is None:
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not socket.has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != socket.AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name not in ("nt", "cygwin") and hasattr(socket, "SO_REUSEADDR"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            except OSError:
                pass  # as create_server(): bind() will tell
        if reuse_port and reuse is not None:
            sock.setsockopt(socket.SOL_SOCKET, reuse, 1)
        if socket.has_ipv6 and family == socket.AF_INET6:
            only = 0 if dualstack_ipv6 else 1
            if dualstack_ipv6 or hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, only)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_key(sock: "socket.socket", address: "Any") -> "str | None":
    """What makes two bind() calls ask for the same socket; None: not kept."""
    import json
    import socket

    families = (socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_UNIX", None))
    if sock.type != socket.SOCK_STREAM or sock.family not in families:
        return None
    options = []
    try:
        if sock.family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
            options.append(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        if hasattr(socket, "SO_REUSEPORT") and sock.family != getattr(
            socket, "AF_UNIX", None
        ):
            options.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))
    except OSError:
        return None  # not a socket we can read: bind() will tell
    # repr: an address bind() will refuse still makes a key; bind() tells.
    return json.dumps([int(sock.family), _jsonable(address), options], default=repr)


def _check_offer(key: str, fd: int, bound: "Any") -> "socket.socket | None":
    """The socket handed over as ``fd``, if it is the listening socket described."""
    import json
    import socket

    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        _log.warning("not adopting socket fd %d for %s: %s", fd, key, e)
        return None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        name = sock.getsockname()
        family = json.loads(key)[0]
    except (OSError, ValueError, TypeError, KeyError, IndexError) as e:
        listening, name, family = 0, e, None
    if (
        not listening
        or sock.type != socket.SOCK_STREAM
        or sock.family != family
        or _jsonable(name) != bound
    ):
        sock.detach()  # not ours to close: it may be another open file
        _log.warning(
            "not adopting socket fd %d for %s: not a listening socket bound there",
            fd,
            key,
        )
        return None
    return sock


def _duplicate(sock: "socket.socket") -> "socket.socket":
    """Reloader's own descriptor for the program's socket (not inheritable)."""
    import socket

    return socket.socket(sock.family, sock.type, sock.proto, os.dup(sock.fileno()))


def _become(sock: "socket.socket", kept: _Kept) -> None:
    """Make the program's ``sock`` the kept socket; its object stays the same."""
    fd = sock.fileno()
    os.dup2(kept.sock.fileno(), fd, inheritable=os.get_inheritable(fd))
    # Blocking or not is the open socket's flag, shared by every descriptor
    # on it: the previous run (asyncio, Tornado) may have left it
    # non-blocking, while this object holds its own idea (a timeout).
    sock.settimeout(sock.gettimeout())


def _weak(sock: "socket.socket") -> "Callable[[], Optional[socket.socket]]":
    import weakref

    return weakref.ref(sock)


def _unix_path(sock: "socket.socket") -> "str | None":
    """The file a Unix socket is bound to; None for others and abstract ones."""
    import socket

    if sock.family != getattr(socket, "AF_UNIX", None):
        return None
    try:
        path = sock.getsockname()
    except OSError:
        return None  # closed: nothing to link
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path if path and not path.startswith("\0") else None


def _hidden_path(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.reloader-{os.getpid()}")


def _link_unix_path(sock: "socket.socket") -> "str | None":
    """Keep a second name for a Unix socket's file, to put its path back.

    Returns that name, None for other sockets or if it cannot be made.
    """
    path = _unix_path(sock)
    if path is None:
        return None
    hidden = _hidden_path(path)
    try:
        if os.path.lexists(hidden):
            os.unlink(hidden)
        os.link(path, hidden)
    except OSError as e:
        _log.warning("cannot keep the path of %s across restarts: %s", path, e)
        return None
    return hidden


def _restore_unix_path(sock: "socket.socket") -> bool:
    """Put a kept Unix socket's path back if the program unlinked it.

    Returns False if the path is gone for good (with a warning); True for
    other sockets.
    """
    path = _unix_path(sock)
    if path is None:
        return True
    try:
        if not os.path.lexists(path):
            os.link(_hidden_path(path), path)
    except OSError as e:
        _log.warning("not adopting the socket of %s: %s", path, e)
        return False
    return True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # never made, or gone: nothing to clean


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

# argparse puts "usage: " (7 characters) before the first line only.
_USAGE = """\
%(prog)s [options] -m module [args...]
       %(prog)s [options] path/to/script.py [args...]
       %(prog)s [options] path/to/dir_or_zip [args...]"""

_EPILOG = """\
examples:
  # run app.py with its arguments; run it again after every save
  {prog} app.py --port 8000
  # run a module, with its own options
  {prog} -m flask --app app run
  # also watch a folder and a file that are not Python modules
  {prog} --watch templates --watch .env app.py
  # run the tests again after each change, until they pass
  {prog} --until-success -m pytest -x

What is watched: the file of every module the program imports, and each
--watch path (a folder: every file under it, new files included). A change
restarts the program; when the program ends on its own, the next change runs
it again. Never counted: editors' and tools' scratch files (*.swp, *.swo,
*.swx, *~, #*#, .#*, 4913, *___jb_tmp___, *___jb_old___, .DS_Store), byte
code (*.pyc, __pycache__), version-control and tool folders (.git, .hg, .svn,
.tox, .nox, .mypy_cache, .pytest_cache, .ruff_cache, .idea, .vscode,
node_modules), virtual environments (a folder holding pyvenv.cfg), and paths
matching --ignore. Messages go to standard error; standard output is the
program's. Ctrl-C stops; SIGHUP restarts.

More: the README at https://pypi.org/project/python-reloader/ and
python -c "import reloader; help(reloader)"."""

_VALUE_OPTIONS = ("--check-time", "--watch", "--ignore", "--grace")

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
            if not os.path.exists(path):
                _log.warning(
                    "--watch %s: no such file or folder; watching for it to appear",
                    path,
                )
            watch(path)
        for pattern in options.ignore:
            ignore(pattern)
        if options.poll:
            _state.watcher.poll_only = True
        interval = _check_interval(options.check_time)
        _state.grace = options.grace
        _state.watcher.list_files()
        _state.start(None, interval, owner="wrapper")
        # See "Keeping a listening socket across restarts".
        _state.sockets.install()
        _state.sockets.close_unclaimed_later(_UNCLAIMED_AFTER_START)
        status = self.run_program(*target)
        _state.sockets.keep_unclaimed()
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
        """The options and the program to run; exits 2 with a usage message."""
        parser = _parser(_prog())
        prefix, target = _split_command_line(self.args)
        options = parser.parse_args(prefix)
        if target is None:
            parser.error("nothing to run: give -m module or a path")
        if not target[1]:
            parser.error("argument -m: expected a module name")
        try:
            _check_interval(options.check_time)
        except ValueError:
            parser.error(
                "argument --check-time: must be a positive number of milliseconds,"
                f" not {options.check_time:g}"
            )
        if not 0 <= options.grace < float("inf"):
            parser.error(
                f"argument --grace: must be 0 or more seconds, not {options.grace:g}"
            )
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
            # A failure shows under -q too; a clean exit is routine.
            level = logging.INFO if status == 0 else logging.WARNING
            return status, lambda: _log.log(
                level, "%s exited with status %d", label, status
            )
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


def _prog() -> str:
    """The command as the user typed it, for the usage and help messages."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:  # python -m reloader, or a vendored python -m pkg.reloader
        return f"python -m {spec.name}"
    # The reloader command, or a script of the user's that calls main().
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if name.lower().endswith(".exe"):  # the command on Windows
        name = name[: -len(".exe")]
    return name or "reloader"


def _parser(prog: str) -> "argparse.ArgumentParser":
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog,
        usage=_USAGE,
        description="Run a Python program; run it again when its source changes.",
        epilog=_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--ignore",
        action="append",
        default=[],
        metavar="PATTERN",
        help="never count changes to paths matching PATTERN, a glob such as "
        "'*.log', 'data/*' or 'build' (repeatable)",
    )
    parser.add_argument(
        "--poll",
        action="store_true",
        help="poll every file every check_time, never use the system's change "
        "notifications (for network drives, Docker and VM shares)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="log only warnings, errors and runs that failed",
    )
    parser.add_argument(
        "--version", action="version", version=f"reloader {__version__}"
    )
    return parser


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
    # -q keeps warnings: a run that failed is reported at that level.
    _log.setLevel(logging.WARNING if quiet else logging.INFO)
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
    except ImportError as e:
        # Importing a parent package failed: a real error inside it, unless
        # the missing module is the one asked for or one of its parents.
        if not isinstance(e, ModuleNotFoundError) or not _names_part_of(e.name, name):
            raise
        spec = None
    except ValueError:
        spec = None  # a module with no __spec__ in sys.modules: as not found
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


def _names_part_of(missing: "str | None", name: str) -> bool:
    """Is ``missing`` ``name`` or one of its parent packages?"""
    return missing is not None and (name + ".").startswith(missing + ".")


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


# See "Import cost" at the top: the last use of TYPE_CHECKING is above.
del TYPE_CHECKING

_state = _State(own_environment=__name__ != "__main__")
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _state.after_fork_in_child())

if __name__ == "__main__":
    # See "Two copies of this module" above.
    import importlib

    _name = __spec__.name if __spec__ is not None else "reloader"
    sys.exit(importlib.import_module(_name).main())
