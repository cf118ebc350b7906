"""Benchmarks for reloader: what watching costs, and how fast a restart is.

Run from the repository root::

    python bench/run.py             # full run, about 8 minutes
    python bench/run.py --quick     # fewer samples, no missed-edit rows:
                                    # under 2 minutes
    python bench/run.py --peers     # add tornado, werkzeug, Django, gunicorn,
                                    # hupper, watchfiles and uvicorn --reload
                                    # (from bench/.venv if present)
    python bench/run.py --json results.json

It prints one table; nothing in it is asserted (the machine is shared, so the
exit status only says whether every measurement ran: 0 yes, 1 no). Every
figure is a ratio, a count or a median of several runs, never a lone
absolute time. Each measurement runs in a fresh subprocess, so ``sys.modules``
holds the stdlib start-up, this file's few imports and N throwaway modules
(``bench_mod_00000.py``, one line each, dated a day back) generated in a
temporary folder, which also holds the children's ``.pyc`` files
(``PYTHONPYCACHEPREFIX``): imports are warm and nothing is written elsewhere.

The *floor* is a bare ``for path in paths: os.stat(path)`` over the files the
watcher should watch: every module in ``sys.modules`` with a file, ``.pyc``
mapped back to its ``.py``, computed in the same process.

1. *Scan cost*, N = 200, 2 000, 10 000: CPU time of the real watcher thread
   (the thread named "reloader", read with ``time.pthread_getcpuclockid``)
   per counted scan at ``check_time=1``, over the floor's CPU per pass. Floor,
   watcher and the floor *paced* like the watcher (in a thread, waiting the
   same interval between passes: what the waits alone cost) alternate, the
   watcher stopped while the floors run; the figure is the median of the
   per-round ratios. Another process counts the ``os.stat``/``os.lstat``
   calls of the watcher thread per scan: one per watched file.
2. *Idle CPU*: ``start()`` at its default interval with N = 2 000, the
   watcher thread's CPU over 10 s, in % of one core; beside it, the floor
   paced at 500 ms.
3. *Import cost*: ``python -S -X importtime -c "import reloader"``: the
   modules it adds to ``python -S -c pass`` and the sum of their self times,
   beside ``import threading, logging``; the target row is the per-run
   difference. Another row lists any of asyncio, subprocess, socket,
   argparse or runpy among them. (``-S``: a ``.pth`` file may import anything
   at start-up and hide it from one side of the comparison.)
4. *Detection latency*: a child watches a module that the parent appends a
   line to at a random moment after the child said ready; from the end of
   the write to the first reload hook (which records ``time.time()``), over
   the interval, at ``check_time=100`` and at the default. The settle time,
   which the targets add, is ``reloader._SETTLE`` (seconds, at most the
   interval) or ``--settle``.
5. *Restart-to-ready*: a script that prints ``ready`` and calls
   ``reloader.restart()`` at once, 10 times; each gap between ready lines
   over the median time a bare start of the same script (exit after
   printing) takes from spawn to ready.
6. *Memory*: ``tracemalloc`` snapshots before ``start()`` and once the second
   scan is counted, N = 10 000; the growth of the blocks with a
   ``reloader.py`` frame on their stack, over the watched files.
7. *Idle CPU of the whole watcher* (``idlecpu``), N = 2 000 and 10 000
   (2 000 with ``--quick``): a program imports N modules and idles under
   each watcher; the CPU clock of the process that watches (for reloader,
   tornado and watchfiles.watch() the program's own, all threads; for the
   watchfiles command and uvicorn --reload their watcher process, not the
   program they run) over a window of idling, in % of one core, at each
   one's default interval. The watchers take turns, in rounds.
8. *Save -> restart begins* (``save``): the same program with N = 2 000
   under each watcher; the parent saves a module as editors do (a temporary
   file renamed over it) at a random moment 0.5 to 1 s after the program
   said ready; from the end of the rename to the moment the restart begins:
   reloader's and tornado's reload hooks, the SIGINT watchfiles sends, the
   SIGTERM uvicorn sends to its server worker.
9. *A watched tree* (``tree``): 50 000 files in 500 folders (10 000 in 100
   with ``--quick``), ``reloader.watch()``-ed (what ``--watch`` does): the
   idle CPU and the save -> restart of rows 7 and 8, a file of a different
   folder each save.
10. *Peers* (``--peers``): rows 1 to 3 for the reloaders of the peers that
   are installed. Their scans are called directly in a loop and timed with
   ``time.thread_time()``; their idle CPU is their own loop, run in threads
   at their own default interval. With ``--peers``, rows 7 to 9 also run
   watchfiles (its command line, and ``watchfiles.watch()`` in a thread of
   the program), uvicorn --reload and tornado beside reloader, with rows of
   reloader's median over watchfiles', per round.
11. *Refused connections* (``--only refused``, not in the default run): a
    server edited 10 times while a client requests it in a loop; per
    restart, the connections refused, and the requests that failed
    otherwise. reloader runs the unmodified server under ``python -m
    reloader``, beside ``flask run --reload``, ``uvicorn --reload`` and
    Django's ``runserver`` (from bench/.venv if present), whichever are
    installed.
12. *Missed edits* (``missed``; not in ``--quick`` unless ``--only`` names
    it): a program runs under each watcher (reloader; with ``--peers`` those
    of rows 7 to 9) and the parent edits the module it imports, 10 times
    (3 with ``--quick``) for each kind of edit: the same size with the
    modification time put back (``os.utime``, what ``cp -p``, ``tar x`` and
    ``touch -d`` do); ``shutil.copy2`` of a same-size file over it, both
    stamped with one fixed time (``SOURCE_DATE_EPOCH``); a save made as soon
    as a restarted run has imported the module, while it goes on importing
    for 0.3 s before its watcher starts (after a first save that restarts
    it). An edit is missed when no new run imports the module within 3 s;
    after a miss the program is started afresh, so that each edit is
    independent. The rows count the missed edits; the notes, the new runs
    that imported the old version from Python's byte-code cache.

Private names read from reloader, for benchmarking only: the scan counter
(``_state.scan_count`` or ``_state.watcher.scan_count``) and ``_SETTLE``.

Options ``--reloader PATH`` (a ``reloader.py`` to measure instead of the
repository's), ``--only SECTIONS`` and ``--settle MS`` are for developing the
benchmark (``--only idlecpu,save --peers`` runs those sections with the peers
beside reloader, without section 10); ``--child`` is how the benchmark runs
itself in a subprocess.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_PYTHON = os.path.join(HERE, ".venv", "bin", "python")
RESULT_PREFIX = "RELOADER-BENCH-RESULT "
SECTIONS = (
    "scan",
    "idle",
    "import",
    "latency",
    "restart",
    "memory",
    "idlecpu",
    "save",
    "tree",
    "peers",
    "refused",
    "missed",
)
# Run only when asked for: they need the peers, or take minutes.
OPTIONAL = ("peers", "refused")
# Left out of --quick unless --only names them: minutes of waiting for
# restarts that do not come, and counts that three trials would not make.
NOT_QUICK = ("missed",)
FORBIDDEN = ("asyncio", "subprocess", "socket", "argparse", "runpy", "ctypes")
DEFAULT_CHECK_TIME_MS = 500  # the spec's default for start()
SCAN_CHECK_TIME_MS = 1  # "a short interval" for the scan-cost row
MIN_SCANS = 40  # per timed window of the scan-cost row
SIZES = (200, 2000, 10000)


class BenchError(Exception):
    """A measurement could not be made; the message says why."""


# --------------------------------------------------------------------------
# Plans: how many samples each mode takes.


@dataclass(frozen=True)
class Plan:
    name: str
    scan_reps: int  # rounds of floor, watcher, paced floor per N
    scan_window: float  # seconds of each, at least MIN_SCANS scans
    idle_seconds: float
    idle_floor_seconds: float
    idle_runs: int
    import_runs: int
    latency_samples: dict[int | None, int]  # check_time (None: default) -> n
    restart_chains: int  # chains of RESTARTS restarts each
    bare_runs: int
    memory_runs: int
    peer_sizes: tuple[int, ...]
    peer_scan_reps: int
    peer_idle_seconds: float
    peer_idle_runs: int
    peer_import_runs: int
    # idlecpu, save, tree: reloader and the event-based peers side by side
    idlecpu_sizes: tuple[int, ...]
    idlecpu_seconds: float
    idlecpu_runs: int  # rounds: each watcher once per round
    save_rounds: int  # rounds: each watcher once per round
    save_per_round: int  # saves per watcher and round
    tree_dirs: int  # folders of TREE_FILES_PER_DIR files each
    tree_idle_seconds: float
    tree_idle_runs: int
    tree_saves: int
    missed_trials: int  # edits of each kind per watcher


QUICK = Plan(
    name="quick",
    scan_reps=3,
    scan_window=0.25,
    idle_seconds=10.0,
    idle_floor_seconds=5.0,
    idle_runs=1,
    import_runs=5,
    latency_samples={100: 8, None: 4},
    restart_chains=1,
    bare_runs=5,
    memory_runs=1,
    peer_sizes=(2000,),
    peer_scan_reps=3,
    peer_idle_seconds=3.0,
    peer_idle_runs=1,
    peer_import_runs=3,
    idlecpu_sizes=(2000,),
    idlecpu_seconds=5.0,
    idlecpu_runs=1,
    save_rounds=1,
    save_per_round=6,
    tree_dirs=100,  # 10 000 files
    tree_idle_seconds=5.0,
    tree_idle_runs=1,
    tree_saves=3,
    missed_trials=3,  # only with --only missed: --quick leaves it out
)
FULL = Plan(
    name="full",
    scan_reps=7,
    scan_window=1.0,
    idle_seconds=10.0,
    idle_floor_seconds=10.0,
    idle_runs=3,
    import_runs=15,
    latency_samples={100: 20, None: 20},
    restart_chains=3,
    bare_runs=15,
    memory_runs=3,
    peer_sizes=SIZES,
    peer_scan_reps=5,
    peer_idle_seconds=10.0,
    peer_idle_runs=3,
    peer_import_runs=9,
    idlecpu_sizes=(2000, 10000),
    idlecpu_seconds=10.0,
    idlecpu_runs=3,
    save_rounds=3,
    save_per_round=5,
    tree_dirs=500,  # 50 000 files
    tree_idle_seconds=10.0,
    tree_idle_runs=2,
    tree_saves=8,
    missed_trials=10,
)
RESTARTS = 10


# --------------------------------------------------------------------------
# What runs inside the child processes. Keep it to the stdlib modules already
# imported above: whatever a child imports is watched, and so in the floor.


def _import_modules(n: int) -> None:
    for i in range(n):
        __import__(f"bench_mod_{i:05d}")


def _watched_paths() -> list[str]:
    """The files the watcher should stat each scan, from ``sys.modules``."""
    from importlib.util import source_from_cache

    paths = set()
    for module in list(sys.modules.values()):  # a copy: imports may happen
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        if path.endswith(".pyc") and "__pycache__" in path:
            try:
                path = source_from_cache(path)
            except ValueError:  # not a PEP 3147 name: watch the .pyc itself
                pass
        while path and not os.path.isfile(path):  # inside a zip: the zip
            parent = os.path.dirname(path)
            path = "" if parent == path else parent
        if path:
            paths.add(path)
    return sorted(paths)


def _floor_scan(paths: list[str]) -> Callable[[], None]:
    def scan() -> None:
        for path in paths:
            os.stat(path)

    return scan


def _cpu_per_call(fn: Callable[[], None], seconds: float) -> float:
    """Call fn until it has used `seconds` of this thread's CPU; per call."""
    calls = 0
    start = time.thread_time()
    while True:
        fn()
        calls += 1
        used = time.thread_time() - start
        if used >= seconds:
            return used / calls


# The private hooks this file reads; they are for benchmarking only.
SCAN_COUNTERS = ("_state.scan_count", "_state.watcher.scan_count")
SETTLE_NAME = "_SETTLE"  # seconds; the watcher settles min(_SETTLE, interval)


def _reloader_state(reloader: Any) -> Any:
    """The object whose ``scan_count`` counts completed scans."""
    for dotted in SCAN_COUNTERS:
        obj = reloader
        try:
            for name in dotted.split(".")[:-1]:
                obj = getattr(obj, name)
            obj.scan_count  # noqa: B018  (probe it)
        except AttributeError:
            continue
        return obj
    raise BenchError(
        f"none of reloader.{', reloader.'.join(SCAN_COUNTERS)}: the benchmark "
        "needs one of these private hooks to count completed scans"
    )


def _next_scan(state: Any, seen: int, timeout: float = 60.0) -> int:
    """Wait until scan_count differs from `seen`; return the new value."""
    deadline = time.monotonic() + timeout
    while state.scan_count == seen:
        if time.monotonic() > deadline:
            raise BenchError(f"no scan completed within {timeout} s")
        time.sleep(0.001)
    return int(state.scan_count)


def _first_scans(state: Any, before: int) -> int:
    """After start(): wait until the new thread is past its first two scans.

    The first scan meets every file for the first time and may do more than
    later ones, and scan_count may count a scan before all its work is done
    (it does after the stat pass); the second scan's count is the first one
    that says the first scan's work is over.
    """
    count = _next_scan(state, before)
    if count == 0:  # scan_count was reset by start(); the scan is still running
        count = _next_scan(state, 0)
    return _next_scan(state, count)


def _watcher_thread() -> Any:
    import threading

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for thread in threading.enumerate():
            if thread.name == "reloader" and thread.ident is not None:
                return thread
        time.sleep(0.001)
    raise BenchError('no thread named "reloader" after start()')


def _thread_cpu(ident: int) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(ident))


def _watcher_per_scan(reloader: Any, check_time: int, window: float) -> float:
    """Start the watcher, divide its CPU by its scans over `window` s, stop it.

    At a 1 ms interval the thread barely pauses, so the clock cannot be read
    between two scans; it is read at a random point of one instead, at both
    ends, which errs by under one scan either way and by none on average.
    MIN_SCANS keeps that error to a few percent when scans are long.
    """
    state = _reloader_state(reloader)
    before = state.scan_count
    reloader.start(check_time=check_time)
    try:
        ident = _watcher_thread().ident
        _first_scans(state, before)  # not timed
        first, cpu0 = int(state.scan_count), _thread_cpu(ident)
        time.sleep(window)
        while state.scan_count - first < MIN_SCANS:
            time.sleep(0.01)
        last, cpu1 = int(state.scan_count), _thread_cpu(ident)
    finally:
        reloader.stop()
    return (cpu1 - cpu0) / (last - first)


def _paced_floor_per_scan(paths: list[str], interval: float, seconds: float) -> float:
    """The floor at the watcher's pace: in a thread, waiting between passes."""
    import threading

    result: list[float] = []
    pause = threading.Event()
    floor = _floor_scan(paths)

    def run() -> None:
        passes = 0
        start = time.thread_time()
        while True:
            floor()
            passes += 1
            used = time.thread_time() - start
            if used >= seconds and passes >= MIN_SCANS:
                result.append(used / passes)
                return
            pause.wait(interval)

    thread = threading.Thread(target=run, name="paced-floor")
    thread.start()
    thread.join()
    return result[0]


def child_scan(args: dict[str, Any]) -> dict[str, Any]:
    # The cost of a poll, where polling runs (network and VM file systems,
    # --poll): notifications would leave most scans with nothing to stat.
    os.environ["RELOADER_POLL"] = "1"
    _import_modules(args["n"])
    import reloader

    state = _reloader_state(reloader)
    before = state.scan_count
    check_time = args["check_time"]
    reloader.start(check_time=check_time)
    _first_scans(state, before)  # imports start() may do are now in sys.modules
    reloader.stop()
    paths = _watched_paths()
    floor = _floor_scan(paths)
    window = args["window"]
    floors, paced, watchers = [], [], []
    for _ in range(args["reps"]):
        floors.append(_cpu_per_call(floor, window))
        watchers.append(_watcher_per_scan(reloader, check_time, window))
        paced.append(_paced_floor_per_scan(paths, check_time / 1000, window))
    return {"files": len(paths), "floor": floors, "paced": paced, "watcher": watchers}


class _CallCounter:
    """Counts calls of some os functions, per thread."""

    def __init__(self, names: tuple[str, ...]) -> None:
        import threading

        self.counts: dict[tuple[str, int], int] = {}
        self._get_ident = threading.get_ident
        self._saved = {name: getattr(os, name) for name in names}
        for name, real in self._saved.items():
            setattr(os, name, self._wrap(name, real))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def counting(*args: Any, **kwargs: Any) -> Any:
            key = (name, self._get_ident())
            self.counts[key] = self.counts.get(key, 0) + 1
            return real(*args, **kwargs)

        return counting

    def total(self, ident: int, names: tuple[str, ...]) -> int:
        return sum(self.counts.get((name, ident), 0) for name in names)

    def restore(self) -> None:
        for name, real in self._saved.items():
            setattr(os, name, real)


STAT_NAMES = ("stat", "lstat")
OTHER_FS_NAMES = ("scandir", "listdir")


def child_stats(args: dict[str, Any]) -> dict[str, Any]:
    # Wrap before the import, in case reloader binds os.stat to a name.
    counter = _CallCounter(STAT_NAMES + OTHER_FS_NAMES)
    os.environ["RELOADER_POLL"] = "1"  # the polling scan, as in child_scan
    _import_modules(args["n"])
    import reloader

    state = _reloader_state(reloader)
    before = state.scan_count
    reloader.start(check_time=100)  # idle between scans: reads are exact
    try:
        ident = _watcher_thread().ident
        count = _first_scans(state, before)
        stats0 = counter.total(ident, STAT_NAMES)
        other0 = counter.total(ident, OTHER_FS_NAMES)
        last = count
        for _ in range(3):
            last = _next_scan(state, last)
        stats1 = counter.total(ident, STAT_NAMES)
        other1 = counter.total(ident, OTHER_FS_NAMES)
    finally:
        reloader.stop()
        counter.restore()
    scans = last - count
    return {
        "files": len(_watched_paths()),
        "stats_per_scan": (stats1 - stats0) / scans,
        "other_per_scan": (other1 - other0) / scans,
    }


def _paced_floor_pct(paths: list[str], interval: float, seconds: float) -> float:
    """% of a core the floor takes in a thread, one pass every `interval` s."""
    import threading

    result: list[float] = []
    pause = threading.Event()
    floor = _floor_scan(paths)

    def run() -> None:
        cpu0, wall0 = time.thread_time(), time.monotonic()
        while True:
            floor()
            if time.monotonic() - wall0 >= seconds or pause.wait(interval):
                break
        result.append(100 * (time.thread_time() - cpu0) / (time.monotonic() - wall0))

    thread = threading.Thread(target=run, name="paced-floor")
    thread.start()
    thread.join()
    return result[0]


def child_idle(args: dict[str, Any]) -> dict[str, Any]:
    _import_modules(args["n"])
    import reloader

    state = _reloader_state(reloader)
    before = state.scan_count
    reloader.start()  # the default check_time is what is measured
    try:
        ident = _watcher_thread().ident
        count = _first_scans(state, before)
        cpu0, wall0 = _thread_cpu(ident), time.monotonic()
        time.sleep(args["seconds"])
        cpu1, wall1, last = _thread_cpu(ident), time.monotonic(), state.scan_count
    finally:
        reloader.stop()
    wall = wall1 - wall0
    scans = last - count
    paths = _watched_paths()
    pace = DEFAULT_CHECK_TIME_MS / 1000
    return {
        "files": len(paths),
        "cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "scans_per_s": scans / wall,
        "floor_pct": _paced_floor_pct(paths, pace, args["floor_seconds"]),
    }


def child_memory(args: dict[str, Any]) -> dict[str, Any]:
    import tracemalloc

    _import_modules(args["n"])
    import reloader

    state = _reloader_state(reloader)
    before_count = state.scan_count
    tracemalloc.start(25)
    before = tracemalloc.take_snapshot()
    reloader.start(check_time=1000)  # the snapshot is taken between scans
    try:
        _first_scans(state, before_count)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        reloader.stop()
    mine = [tracemalloc.Filter(True, reloader.__file__, all_frames=True)]
    diff = after.filter_traces(mine).compare_to(before.filter_traces(mine), "lineno")
    files = len(_watched_paths())
    total = sum(stat.size_diff for stat in diff)
    top = [[str(stat.traceback), stat.size_diff] for stat in diff[:5]]
    return {"files": files, "bytes": total, "per_file": total / files, "top": top}


# Peers: one scan of each peer's polling reloader, as it does it, over the
# modules imported in this process. Each returns a callable doing one scan.


def _scan_tornado() -> Callable[[], None]:
    from tornado import autoreload

    modify_times: dict[str, float] = {}
    return lambda: autoreload._reload_on_update(modify_times)


def _scan_werkzeug() -> Callable[[], None]:
    from werkzeug._reloader import StatReloaderLoop

    loop = StatReloaderLoop()
    loop.__enter__()  # the first run_step, which fills its mtimes
    return loop.run_step


def _scan_django() -> Callable[[], None]:
    from django.utils.autoreload import StatReloader

    reloader = StatReloader()
    reloader.SLEEP_TIME = 0  # tick() sleeps between passes; not here
    ticker = reloader.tick()
    return lambda: next(ticker)


def _scan_gunicorn() -> Callable[[], None]:
    from gunicorn.reloader import Reloader

    reloader = Reloader()
    mtimes: dict[str, float] = {}

    def scan() -> None:  # the body of Reloader.run's endless loop, verbatim
        for filename in reloader.get_files():
            try:
                mtime = os.stat(filename).st_mtime
            except OSError:
                continue
            old_time = mtimes.get(filename)
            if old_time is None:
                mtimes[filename] = mtime
                continue
            elif mtime > old_time:
                raise BenchError(f"{filename} changed during the benchmark")

    return scan


def _hupper_parts() -> tuple[Any, Any]:
    # hupper splits the work: in the worker process a thread collects module
    # paths (leaving out the stdlib and site-packages) and sends new ones to
    # the monitor, in the parent process, which stats them. Both once a second.
    from hupper.polling import PollingFileMonitor
    from hupper.worker import WatchSysModules

    monitor = PollingFileMonitor(callback=lambda path: None)

    def send(paths: list[str]) -> None:
        for path in paths:
            monitor.add_path(path)

    return WatchSysModules(callback=send), monitor


def _scan_hupper() -> Callable[[], None]:
    modules, monitor = _hupper_parts()

    def scan() -> None:
        modules.update_paths()
        monitor.check_reload(list(monitor.paths))

    return scan


PEER_SCANS: dict[str, Callable[[], Callable[[], None]]] = {
    "tornado": _scan_tornado,
    "werkzeug": _scan_werkzeug,
    "django": _scan_django,
    "gunicorn": _scan_gunicorn,
    "hupper": _scan_hupper,
}
PEER_IMPORTS = {  # what a user imports to get the reloader
    "tornado": "tornado.autoreload",
    "werkzeug": "werkzeug._reloader",
    "django": "django.utils.autoreload",
    "gunicorn": "gunicorn.reloader",
    "hupper": "hupper",
}
PEER_DISTS = {
    "tornado": "tornado",
    "werkzeug": "Werkzeug",
    "django": "Django",
    "gunicorn": "gunicorn",
    "hupper": "hupper",
}
# The peers of the idlecpu, save and tree sections, which run whole programs
# (not a scan in a loop): the event-based watchers and tornado beside them.
WATCHER_PEER_DISTS = {"watchfiles": "watchfiles", "uvicorn": "uvicorn"}


def child_peer_scan(args: dict[str, Any]) -> dict[str, Any]:
    _import_modules(args["n"])
    scan = PEER_SCANS[args["peer"]]()
    scan()
    scan()  # the first scans fill caches and mtimes
    paths = _watched_paths()
    floor = _floor_scan(paths)
    floors, peers = [], []
    for _ in range(args["reps"]):
        floors.append(_cpu_per_call(floor, args["window"]))
        peers.append(_cpu_per_call(scan, args["window"]))
    import threading

    counter = _CallCounter(STAT_NAMES)
    try:
        for _ in range(3):
            scan()
    finally:
        counter.restore()
    stats = counter.total(threading.get_ident(), STAT_NAMES) / 3
    return {
        "files": len(paths),
        "floor": floors,
        "peer": peers,
        "stats_per_scan": stats,
    }


def _idle_tornado(threads: list[Any]) -> float:
    import asyncio
    import threading

    from tornado import autoreload, ioloop

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        autoreload.start()
        ioloop.IOLoop.current().start()

    threads.append(threading.Thread(target=run, daemon=True))
    return 0.5  # autoreload.start's default check_time


def _idle_werkzeug(threads: list[Any]) -> float:
    import threading

    from werkzeug._reloader import StatReloaderLoop

    def run() -> None:
        with StatReloaderLoop() as loop:
            loop.run()

    threads.append(threading.Thread(target=run, daemon=True))
    return 1.0


def _idle_django(threads: list[Any]) -> float:
    import threading

    from django.utils.autoreload import StatReloader

    threads.append(threading.Thread(target=StatReloader().run_loop, daemon=True))
    return float(StatReloader.SLEEP_TIME)


def _idle_gunicorn(threads: list[Any]) -> float:
    from gunicorn.reloader import Reloader

    threads.append(Reloader())  # a daemon thread
    return 1.0


def _idle_hupper(threads: list[Any]) -> float:
    threads.extend(_hupper_parts())
    return 1.0


PEER_IDLES: dict[str, Callable[[list[Any]], float]] = {
    "tornado": _idle_tornado,
    "werkzeug": _idle_werkzeug,
    "django": _idle_django,
    "gunicorn": _idle_gunicorn,
    "hupper": _idle_hupper,
}


def child_peer_idle(args: dict[str, Any]) -> dict[str, Any]:
    _import_modules(args["n"])
    threads: list[Any] = []
    interval = PEER_IDLES[args["peer"]](threads)
    for thread in threads:
        thread.daemon = True  # this process ends without stopping them
        thread.start()
    time.sleep(2 * interval + 0.2)  # past the first, baseline, scans
    idents = [thread.ident for thread in threads]
    cpu0, wall0 = sum(map(_thread_cpu, idents)), time.monotonic()
    time.sleep(args["seconds"])
    cpu1, wall1 = sum(map(_thread_cpu, idents)), time.monotonic()
    return {"cpu_pct": 100 * (cpu1 - cpu0) / (wall1 - wall0), "interval": interval}


def child_probe(args: dict[str, Any]) -> dict[str, Any]:
    import sysconfig
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for peer, dist in PEER_DISTS.items():
        try:
            versions[peer] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[peer] = None
    watchers: dict[str, str | None] = {}
    for peer, dist in WATCHER_PEER_DISTS.items():
        try:
            watchers[peer] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            watchers[peer] = None
    return {
        "versions": versions,
        "watchers": watchers,
        "python": sys.version.split()[0],
        "purelib": sysconfig.get_paths()["purelib"],
    }


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "scan": child_scan,
    "stats": child_stats,
    "idle": child_idle,
    "memory": child_memory,
    "peer-scan": child_peer_scan,
    "peer-idle": child_peer_idle,
    "probe": child_probe,
}


def child_main(mode: str, raw_args: str) -> None:
    args = json.loads(raw_args)
    if "moddir" in args:
        sys.path[0] = args["moddir"]  # not bench/: werkzeug walks sys.path
    result = CHILDREN[mode](args)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    # Peer threads may not be daemons and reloaders may hold locks; this
    # process has said all it had to say.
    os._exit(0)


# --------------------------------------------------------------------------
# The scripts for latency and restart-to-ready, run as they would be by hand.

LATENCY_SCRIPT = """\
import os
import sys
import time

import reloader

import bench_latency_target  # noqa: F401  (the module the parent edits)

HOOK_FILE = os.environ["RELOADER_BENCH_HOOK_FILE"]


def record():
    with open(HOOK_FILE, "a") as f:
        f.write(f"{time.time():.6f}\\n")


reloader.add_reload_hook(record)
if sys.argv[1] == "default":
    reloader.start()
else:
    reloader.start(check_time=int(sys.argv[1]))
deadline = time.monotonic() + 30
state = reloader._state
state = state if hasattr(state, "scan_count") else state.watcher
while state.scan_count < 1 and time.monotonic() < deadline:
    time.sleep(0.001)  # edits before the first scan may be its baseline
settle = getattr(reloader, "_SETTLE", "")
print(f"ready {time.time():.6f} settle={settle}", flush=True)
while True:
    time.sleep(3600)
"""

RESTART_SCRIPT = """\
import os
import sys
import time

import reloader

run = int(os.environ.get("RELOADER_BENCH_RUN", "0"))
print(f"ready {run} {time.time():.6f}", flush=True)
if sys.argv[1] == "chain" and run < int(sys.argv[2]):
    os.environ["RELOADER_BENCH_RUN"] = str(run + 1)
    reloader.restart()
"""

# The program of the idlecpu, save and tree sections, run under each watcher
# as a user would run it: it imports N modules and a module the parent saves,
# then idles; it writes "ready" to the events file once the watcher it runs
# is watching, and "restart" the moment its watcher starts a restart: in
# reloader's and tornado's reload hooks, or on the signal that watchfiles
# (SIGINT) and uvicorn --reload (SIGTERM) send to end the program. In the
# missed section it also writes "imported-VALUE", the version of the saved
# module it imported, then goes on importing for RELOADER_BENCH_IMPORTING s.
APP_SCRIPT = """\
import os
import signal
import sys
import time

EVENTS = os.environ["RELOADER_BENCH_EVENTS"]


def record(what):
    with open(EVENTS, "a") as f:
        f.write(f"{what} {os.getpid()} {time.time():.6f}\\n")


for i in range(int(os.environ["RELOADER_BENCH_N"])):
    __import__(f"bench_mod_{i:05d}")
import bench_save_target  # noqa: F401,E402  (the module the parent saves)

IMPORTING = os.environ.get("RELOADER_BENCH_IMPORTING")
if IMPORTING:  # the missed section: the version imported, then imports go on
    record(f"imported-{bench_save_target.VALUE}")
    time.sleep(float(IMPORTING))

TREE = os.environ.get("RELOADER_BENCH_TREE")
mode = sys.argv[1]
if mode == "reloader":
    import reloader

    reloader.add_reload_hook(lambda: record("restart"))
    if TREE:
        reloader.watch(TREE)
    reloader.start()
    state = reloader._state
    state = state if hasattr(state, "scan_count") else state.watcher
    deadline = time.monotonic() + 120
    while state.scan_count < 1 and time.monotonic() < deadline:
        time.sleep(0.001)  # edits before the first scan may be its baseline
    record("ready")
    while True:
        time.sleep(3600)
elif mode == "tornado":
    import asyncio

    from tornado import autoreload

    autoreload.add_reload_hook(lambda: record("restart"))
    if TREE:
        for root, _, names in os.walk(TREE):
            for name in names:
                autoreload.watch(os.path.join(root, name))

    async def main():
        autoreload.start()  # its first check, at 500 ms, is its baseline
        asyncio.get_running_loop().call_later(0.55, record, "ready")
        await asyncio.Event().wait()

    asyncio.run(main())
elif mode == "watchfiles":  # watchfiles.watch() in the program, defaults
    import threading

    import watchfiles

    def watching():
        for _changes in watchfiles.watch(os.environ["RELOADER_BENCH_WATCHED"]):
            record("restart")
            os.execv(sys.executable, [sys.executable, *sys.argv])

    threading.Thread(target=watching, daemon=True).start()
    record("ready")
    while True:
        time.sleep(3600)
else:  # run by a watcher process, which signals it to end

    def stopped(signum, frame):
        record("restart")
        os._exit(0)

    signal.signal(signal.SIGINT, stopped)
    signal.signal(signal.SIGTERM, stopped)
    record("ready")
    while True:
        time.sleep(3600)
"""

# The same program as an ASGI application for uvicorn --reload, which imports
# it in a worker process after installing its own signal handlers.
ASGI_SCRIPT = """\
import os
import signal
import time

EVENTS = os.environ["RELOADER_BENCH_EVENTS"]


def record(what):
    with open(EVENTS, "a") as f:
        f.write(f"{what} {os.getpid()} {time.time():.6f}\\n")


for i in range(int(os.environ["RELOADER_BENCH_N"])):
    __import__(f"bench_mod_{i:05d}")
import bench_save_target  # noqa: F401,E402  (the module the parent saves)

IMPORTING = os.environ.get("RELOADER_BENCH_IMPORTING")
if IMPORTING:  # the missed section: the version imported, then imports go on
    record(f"imported-{bench_save_target.VALUE}")
    time.sleep(float(IMPORTING))

uvicorn_handler = signal.getsignal(signal.SIGTERM)


def stopping(signum, frame):
    record("restart")
    if callable(uvicorn_handler):
        uvicorn_handler(signum, frame)


signal.signal(signal.SIGTERM, stopping)
record("ready")


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""


# --------------------------------------------------------------------------
# The parent: rows, subprocesses, the table.


@dataclass
class Row:
    section: str
    name: str
    samples: list[float] = field(default_factory=list)
    digits: int = 2
    target: str = ""
    ok: bool | None = None  # None: no target, or no figure
    text: str = ""  # the figure, when it is not a number
    note: str = ""

    def stats(self) -> tuple[float, ...]:
        """(min, median, max) of the samples; () when there are none."""
        if not self.samples:
            return ()
        samples = self.samples
        return min(samples), statistics.median(samples), max(samples)

    def cells(self) -> list[str]:
        if not self.samples:
            return ["", self.text, ""]
        return [f"{value:.{self.digits}f}" for value in self.stats()]


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


class Bench:
    """Shared state of one benchmark run: paths, environment, subprocesses."""

    def __init__(self, plan: Plan, reloader_path: str, settle_ms: float | None) -> None:
        import tempfile

        self.plan = plan
        self.reloader_path = reloader_path
        self.settle_ms = settle_ms
        self.tmp = tempfile.mkdtemp(prefix="reloader-bench-")
        self.pycache = os.path.join(self.tmp, "pycache")
        self.rows: list[Row] = []
        self.errors = 0
        self.details: dict[str, Any] = {}
        self.peers = False  # --peers: the peers' rows beside reloader's

    def env(self, pythonpath: str | None = None) -> dict[str, str]:
        """The environment of every child: this one, less what would skew it."""
        env = dict(os.environ)
        for var in (
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "PYTHONPROFILEIMPORTTIME",
            "PYTHONTRACEMALLOC",
            # Warm imports read a .pyc, as a user's second run does; the
            # prefix keeps the repository and the stdlib free of new files.
            "PYTHONDONTWRITEBYTECODE",
        ):
            env.pop(var, None)
        env["PYTHONPYCACHEPREFIX"] = self.pycache
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        return env

    @property
    def reloader_dir(self) -> str:
        return os.path.dirname(self.reloader_path)

    def moddir(self, n: int) -> str:
        path = os.path.join(self.tmp, f"mods-{n}")
        if not os.path.isdir(path):
            os.mkdir(path)
            # Written a day ago, as a project's files mostly are: a watcher
            # may treat files written in the last seconds specially.
            past = time.time() - 86400
            for i in range(n):
                module = os.path.join(path, f"bench_mod_{i:05d}.py")
                with open(module, "w") as f:
                    f.write(f"VALUE = {i}\n")
                os.utime(module, (past, past))
            # The utime() above moved every inode change time to now, which
            # no call can set back: wait until it is older than the window
            # (2 s) in which a watcher rightly compares contents.
            last = os.path.join(path, f"bench_mod_{n - 1:05d}.py") if n else path
            while time.time_ns() - os.stat(last).st_ctime_ns < 3 * 10**9:
                time.sleep(0.1)
        return path

    def child(
        self,
        mode: str,
        args: dict[str, Any],
        python: str = sys.executable,
        timeout: float = 600,
    ) -> dict[str, Any]:
        import subprocess

        cmd = [python, os.path.abspath(__file__), "--child", mode, json.dumps(args)]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,  # the exit code is looked at below
            cwd=self.tmp,
            env=self.env(self.reloader_dir if python == sys.executable else None),
            timeout=timeout,
        )
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])  # type: ignore[no-any-return]
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise BenchError(
            f"child {mode} exited {proc.returncode} without a result:\n{tail}"
        )

    def add(self, section: str, name: str, samples: list[float], **kw: Any) -> None:
        self.rows.append(Row(section, name, samples, **kw))

    def run_section(self, name: str) -> None:
        start = time.monotonic()
        _progress(f"{name} ...")
        try:
            SECTION_FUNCS[name](self)
        except Exception as exc:  # the boundary: one section fails, the rest runs
            self.errors += 1
            self.add(name, f"{name}: ERROR", [], text="error", ok=False, note=str(exc))
            _progress(f"{name} failed: {exc}")
        _progress(f"{name} done in {time.monotonic() - start:.1f} s")

    def cleanup(self) -> None:
        import shutil

        _progress(f"removing {self.tmp}")
        shutil.rmtree(self.tmp, ignore_errors=True)


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:5.1f} s] {message}", file=sys.stderr, flush=True)


# Section 1: scan cost and stat calls.


def section_scan(bench: Bench) -> None:
    plan = bench.plan
    for n in SIZES:
        args = {"n": n, "moddir": bench.moddir(n)}
        timing = {"reps": plan.scan_reps, "window": plan.scan_window}
        res = bench.child("scan", {**args, **timing, "check_time": SCAN_CHECK_TIME_MS})
        ratios = [w / f for w, f in zip(res["watcher"], res["floor"])]
        paced = _median([p / f for p, f in zip(res["paced"], res["floor"])])
        floor, watcher = _us(_median(res["floor"])), _us(_median(res["watcher"]))
        limit = 1.30 if n < 1000 else 1.10
        bench.add(
            "scan",
            f"scan CPU / stat floor, N={n}",
            ratios,
            target=f"<= {limit:.2f}",
            ok=_at_most(_median(ratios), limit),
            note=f"{res['files']} files; per scan: floor {floor}, watcher {watcher} "
            f"at check_time={SCAN_CHECK_TIME_MS}; the floor paced the same way: "
            f"{paced:.2f} x floor",
        )
        stats = bench.child("stats", args)
        calls, files, other = stats["stats_per_scan"], stats["files"], ""
        if stats["other_per_scan"]:
            other = f", {stats['other_per_scan']:.0f} scandir/listdir"
        bench.add(
            "scan",
            f"stat calls per watched file, N={n}",
            [calls / files],
            digits=4,
            target="== 1",
            ok=round(calls) == files,
            note=f"{calls:.1f} stat/lstat per scan, {files} files{other}",
        )


# Section 2: idle CPU.


def section_idle(bench: Bench) -> None:
    plan, n = bench.plan, 2000
    args = {
        "n": n,
        "moddir": bench.moddir(n),
        "seconds": plan.idle_seconds,
        "floor_seconds": plan.idle_floor_seconds,
    }
    results = [bench.child("idle", args) for _ in range(plan.idle_runs)]
    pcts = [r["cpu_pct"] for r in results]
    rate = _median([r["scans_per_s"] for r in results])
    floor = _median([r["floor_pct"] for r in results])
    bench.add(
        "idle",
        f"idle CPU, % of a core, default interval, N={n}",
        pcts,
        target="<= 0.70",
        ok=_at_most(_median(pcts), 0.70),
        note=f"{results[0]['files']} files; {plan.idle_seconds:g} s windows; "
        f"{rate:.2f} scans/s; the floor, paced the same way: {floor:.2f} %",
    )


# Section 3: import cost.


def _importtime(bench: Bench, python: str, code: str, path: str) -> dict[str, int]:
    """Module name -> self time in us, from ``python -S -X importtime -c code``.

    ``-S``: a site-packages ``.pth`` file may import anything at start-up
    (threading, say), which would hide it from one side of a comparison; so
    nothing is imported but what the interpreter needs, and `path` (the
    reloader's folder, a venv's site-packages) goes on PYTHONPATH.
    """
    import subprocess

    proc = subprocess.run(
        [python, "-S", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=False,  # the exit code is looked at below
        cwd=bench.tmp,
        env=bench.env(path),
        timeout=120,
    )
    if proc.returncode != 0:
        raise BenchError(f"{code!r} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    modules = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            modules[parts[2].strip()] = int(parts[0])
    return modules


def _import_costs(
    bench: Bench,
    python: str,
    codes: dict[str, str],
    runs: int,
    path: str,
    own: list[float] | None = None,
) -> tuple[dict[str, list[float]], dict[str, set[str]]]:
    """Per code: the ms its added modules took in each run, and those modules.

    `own`, if given, gets the self time (ms) of the module named ``reloader``
    in each run of the code keyed ``reloader``.
    """
    times: dict[str, list[float]] = {key: [] for key in codes}
    added: dict[str, set[str]] = {key: set() for key in codes}
    for code in codes.values():  # warm the .pyc cache
        _importtime(bench, python, code, path)
    for _ in range(runs):
        bare = set(_importtime(bench, python, "pass", path))
        for key, code in codes.items():
            modules = _importtime(bench, python, code, path)
            new = {name: us for name, us in modules.items() if name not in bare}
            times[key].append(sum(new.values()) / 1000)
            added[key] |= set(new)
            if own is not None and key == "reloader":
                own.append(modules.get("reloader", 0) / 1000)
    return times, added


RELOADER_IMPORTS = {"reloader": "import reloader", "base": "import threading, logging"}


def _reloader_import_rows(bench: Bench, section: str, times: Any, added: Any) -> None:
    mine, base = times["reloader"], times["base"]
    diffs = [r - b for r, b in zip(mine, base)]
    extra = ", ".join(sorted(added["reloader"] - added["base"] - {"reloader"}))
    count = len(added["reloader"])
    note = f"{count} modules added to a bare start"
    bench.add(section, "import reloader, ms", mine, note=note)
    note = f"{len(added['base'])} modules"
    bench.add(section, "import threading, logging, ms", base, note=note)
    bench.add(
        section,
        "import reloader - (threading+logging), ms",
        diffs,
        target="<= 1.00",
        ok=_at_most(_median(diffs), 1.0),
        note=f"beyond threading and logging: {extra or 'nothing'}",
    )


def section_import(bench: Bench) -> None:
    runs = bench.plan.import_runs
    own: list[float] = []
    times, added = _import_costs(
        bench, sys.executable, RELOADER_IMPORTS, runs, bench.reloader_dir, own
    )
    _reloader_import_rows(bench, "import", times, added)
    bench.add(
        "import",
        "import reloader: its own module, ms",
        own,
        target="<= 3.00",
        ok=_at_most(_median(own), 3.0),
        note="the self time of the module reloader alone, from a cached .pyc",
    )
    bad = ", ".join(sorted(set(FORBIDDEN) & added["reloader"]))
    name = "import reloader pulls in " + "/".join(FORBIDDEN)
    bench.add("import", name, [], text=bad or "none", target="none", ok=not bad)
    bench.details["import_added"] = sorted(added["reloader"])


# Section 4: detection latency.


def _wait_lines(
    path: str, prefix: str, count: int, proc: Any, timeout: float = 30
) -> list[str]:
    """The lines of `path` starting with `prefix`, once there are `count`."""
    deadline = time.monotonic() + timeout
    while True:
        with open(path) as f:
            complete = f.read().split("\n")[:-1]  # not a line being written
        lines = [line for line in complete if line.startswith(prefix)]
        if len(lines) >= count:
            return lines
        if proc.poll() is not None or time.monotonic() > deadline:
            with open(path) as f:
                log = f.read()[-3000:]
            raise BenchError(
                f"waited for {count} {prefix!r} lines; exit code {proc.poll()}; "
                f"{' '.join(proc.args)}; log:\n{log}"
            )
        time.sleep(0.005)


def _spawn(bench: Bench, args: list[str], log: str, env: dict[str, str]) -> Any:
    import subprocess

    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=bench.tmp,
            env=env,
            start_new_session=True,
        )


def _kill(proc: Any) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended on its own meanwhile
            pass
    proc.wait(timeout=30)


def _latencies(
    bench: Bench, check_time: int | None, samples: int
) -> tuple[list[float], str]:
    """Seconds from each edit to the reload hook; the settle time reported."""
    import random

    folder = os.path.join(bench.tmp, f"latency-{check_time or 'default'}")
    os.makedirs(folder, exist_ok=True)
    script, target = (
        os.path.join(folder, name)
        for name in ("latency_child.py", "bench_latency_target.py")
    )
    hooks, log = os.path.join(folder, "hooks.txt"), os.path.join(folder, "log.txt")
    with open(script, "w") as f:
        f.write(LATENCY_SCRIPT)
    with open(target, "w") as f:
        f.write("VALUE = 0\n")
    open(hooks, "w").close()
    env = bench.env(bench.reloader_dir + os.pathsep + folder)
    env["RELOADER_BENCH_HOOK_FILE"] = hooks
    interval = (check_time or DEFAULT_CHECK_TIME_MS) / 1000
    proc = _spawn(bench, [script, str(check_time or "default")], log, env)
    latencies: list[float] = []
    settle = ""
    try:
        for i in range(samples):
            ready = _wait_lines(log, "ready", i + 1, proc)
            settle = ready[-1].partition("settle=")[2]
            time.sleep(random.uniform(0, interval))
            with open(target, "a") as f:
                f.write(f"# edit {i}\n")  # the size changes too
            written = time.time()
            hook = _wait_lines(hooks, "", i + 1, proc)
            latencies.append(float(hook[i]) - written)
    finally:
        _kill(proc)
    return latencies, settle


def section_latency(bench: Bench) -> None:
    for check_time, samples in bench.plan.latency_samples.items():
        latencies, reported = _latencies(bench, check_time, samples)
        interval = (check_time or DEFAULT_CHECK_TIME_MS) / 1000
        if bench.settle_ms is not None:
            settle, source = bench.settle_ms / 1000, "--settle"
        elif reported:
            settle = min(float(reported), interval)
            source = f"reloader.{SETTLE_NAME}, at most the interval"
        else:
            settle, source = 0.0, "unknown, 0 assumed"
        fractions = [latency / interval for latency in latencies]
        label = f"check_time={check_time}" if check_time else "default check_time"
        note = (
            f"{samples} samples; {_ms(min(latencies))} / {_ms(_median(latencies))} / "
            f"{_ms(max(latencies))}; settle {settle * 1000:.0f} ms ({source})"
        )
        target, ok = "", None
        if check_time == 100:
            med_limit, max_limit = 0.6 + settle / interval, 1.1 + settle / interval
            target = f"med <= {med_limit:.2f}, max <= {max_limit:.2f}"
            ok = _median(fractions) <= med_limit and max(fractions) <= max_limit
        name = f"detection latency / interval, {label}"
        bench.add("latency", name, fractions, target=target, ok=ok, note=note)


# Section 5: restart-to-ready.


def _restart_chain(bench: Bench, script: str, index: int) -> list[float]:
    log = os.path.join(bench.tmp, f"restart-{index}.txt")
    env = bench.env(bench.reloader_dir)
    env.pop("RELOADER_BENCH_RUN", None)
    proc = _spawn(bench, [script, "chain", str(RESTARTS)], log, env)
    try:
        lines = _wait_lines(log, "ready", RESTARTS + 1, proc)
        proc.wait(timeout=30)
    finally:
        _kill(proc)
    stamps = [float(line.split()[2]) for line in lines]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _bare_start(bench: Bench, script: str) -> float:
    import subprocess

    start = time.time()
    proc = subprocess.run(
        [sys.executable, script, "bare"],
        capture_output=True,
        text=True,
        check=False,  # the output is looked at below
        cwd=bench.tmp,
        env=bench.env(bench.reloader_dir),
        timeout=60,
    )
    if not proc.stdout.startswith("ready"):
        raise BenchError(f"bare start printed {proc.stdout!r}, {proc.stderr[-2000:]}")
    return float(proc.stdout.split()[2]) - start


def section_restart(bench: Bench) -> None:
    script = os.path.join(bench.tmp, "restart_child.py")
    with open(script, "w") as f:
        f.write(RESTART_SCRIPT)
    _bare_start(bench, script)  # warm the .pyc cache
    gaps: list[float] = []
    bares: list[float] = []
    for index in range(bench.plan.restart_chains):
        bares.extend(_bare_start(bench, script) for _ in range(bench.plan.bare_runs))
        gaps.extend(_restart_chain(bench, script, index))
    bare = _median(bares)
    ratios = [gap / bare for gap in gaps]
    bench.add(
        "restart",
        "restart-to-ready / bare start",
        ratios,
        target="<= 1.05",
        ok=_at_most(_median(ratios), 1.05),
        note=f"{len(gaps)} restarts, median {_ms(_median(gaps))}; bare start "
        f"(spawn to ready) median {_ms(bare)} over {len(bares)}",
    )


# Section 6: memory.


def section_memory(bench: Bench) -> None:
    n = 10000
    results = [
        bench.child("memory", {"n": n, "moddir": bench.moddir(n)})
        for _ in range(bench.plan.memory_runs)
    ]
    per_file = [r["per_file"] for r in results]
    bench.add(
        "memory",
        f"watcher memory, bytes per watched file, N={n}",
        per_file,
        digits=0,
        target="<= 250",
        ok=_at_most(_median(per_file), 250),
        note=f"{results[0]['bytes']} bytes over {results[0]['files']} files",
    )
    bench.details["memory_top"] = results[0]["top"]


# Sections 7 to 9: idle CPU, save -> restart and a watched tree, with
# reloader and the peers that are whole programs (watchfiles, uvicorn
# --reload, tornado.autoreload) run side by side: the same program, the same
# files, one after the other in rounds.

SAVE_N = 2000  # modules the program of the save section imports
TREE_FILES_PER_DIR = 100
IDLE_GRACE = 2.0  # s after "ready" before an idle window: past the first scans
FIRST_SAVE_GRACE = 2.0  # s after a watcher starts before its first save
READY_TIMEOUT = 120.0  # s: a start with 10 000 modules or a tree, under load
RESTART_TIMEOUT = 60.0  # s: polling a tree of 50 000 files takes seconds


@dataclass(frozen=True)
class Watcher:
    """One way of running the program: reloader, or a peer watching it."""

    kind: str  # reloader, watchfiles, watchfiles.watch, uvicorn, tornado
    python: str
    version: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.version}".strip()


HOW_MEASURED = {
    "reloader": "the program's process (its main thread sleeps)",
    "tornado": "the program's process (its IOLoop waits)",
    "watchfiles": "the watchfiles process, not the program it runs",
    "watchfiles.watch": "the program's process (a thread in watch(), the main "
    "thread sleeps)",
    "uvicorn": "the reloader process of uvicorn --reload, not its server worker",
}


def _watchers(bench: Bench, section: str) -> list[Watcher]:
    """reloader, then the peers installed when --peers was given."""
    watchers = [Watcher("reloader", sys.executable)]
    if not bench.peers:
        return watchers
    if "watchers" not in bench.details:
        python = VENV_PYTHON if os.path.exists(VENV_PYTHON) else sys.executable
        probe = bench.child("probe", {}, python=python)
        found = {**probe["watchers"], "tornado": probe["versions"]["tornado"]}
        bench.details["watchers"] = {"python": python, "versions": found}
        missing = ", ".join(sorted(peer for peer, v in found.items() if not v))
        if missing:
            note = f"in {python}; see bench/README.md"
            bench.add(section, "peers not installed", [], text=missing, note=note)
    python = bench.details["watchers"]["python"]
    versions = bench.details["watchers"]["versions"]
    for kind in ("watchfiles", "watchfiles.watch", "uvicorn", "tornado"):
        version = versions[kind.partition(".")[0]]
        if version:
            watchers.append(Watcher(kind, python, version))
    return watchers


def _project(bench: Bench, n: int) -> str:
    """The folder of N modules, with the program and the module saved."""
    folder = bench.moddir(n)
    for name, text in (("bench_app.py", APP_SCRIPT), ("bench_asgi.py", ASGI_SCRIPT)):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    target = os.path.join(folder, "bench_save_target.py")
    with open(target, "w") as f:
        f.write("VALUE = 0\n")
    past = time.time() - 86400
    os.utime(target, (past, past))
    return folder


def _save(path: str, index: int) -> float:
    """Save `path` as editors do, a temporary file renamed over it; the time."""
    _save_text(path, f"VALUE = {index}\n# saved {index} times\n")
    return time.time()


def _save_text(path: str, text: str) -> None:
    """Save `text` to `path` as editors do: a temporary file renamed over it."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.bench-tmp")
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


class _Program:
    """The program running under one watcher; its events file and its log."""

    count = 0

    def __init__(
        self,
        bench: Bench,
        watcher: Watcher,
        folder: str,
        n: int,
        tree: str = "",
        importing: str = "",
    ) -> None:
        import subprocess

        _Program.count += 1
        runs = os.path.join(bench.tmp, "runs")
        os.makedirs(runs, exist_ok=True)
        stem = os.path.join(runs, f"{watcher.kind}-{_Program.count}")
        self.events, self.log = stem + ".events", stem + ".log"
        open(self.events, "w").close()
        app = os.path.join(folder, "bench_app.py")
        watched = tree or folder
        pythonpath = None
        if watcher.kind == "reloader":
            cmd = [watcher.python, app, "reloader"]
            pythonpath = bench.reloader_dir
        elif watcher.kind == "tornado":
            cmd = [watcher.python, app, "tornado"]
        elif watcher.kind == "watchfiles.watch":
            cmd = [watcher.python, app, "watchfiles"]
        elif watcher.kind == "watchfiles":
            # What `watchfiles --filter python 'python app.py' folder` does.
            program = f"{watcher.python} {app} plain"
            cmd = [watcher.python, "-m", "watchfiles", "--filter", "python"]
            cmd += ["--target-type", "command", program, watched]
        else:  # uvicorn --reload: WatchFilesReload when watchfiles is there
            cmd = [watcher.python, "-m", "uvicorn", "bench_asgi:app", "--reload"]
            cmd += ["--reload-dir", watched, "--port", "0", "--lifespan", "off"]
        env = bench.env(pythonpath)
        env["RELOADER_BENCH_EVENTS"] = self.events
        env["RELOADER_BENCH_N"] = str(n)
        env["RELOADER_BENCH_WATCHED"] = watched
        if tree:
            env["RELOADER_BENCH_TREE"] = tree
        if importing:
            env["RELOADER_BENCH_IMPORTING"] = importing
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=env,
                start_new_session=True,  # _kill ends the whole group
            )

    def times(self, what: str, count: int, timeout: float) -> list[float]:
        """The times of the first `count` `what` events, once there are."""
        try:
            lines = _wait_lines(self.events, what, count, self.proc, timeout)
        except BenchError as exc:
            with open(self.log, errors="replace") as f:
                log = f.read()[-2000:]
            raise BenchError(f"{exc}\nthe program's output:\n{log}") from None
        return [float(line.split()[2]) for line in lines]

    def seen(self, what: str) -> int:
        with open(self.events) as f:
            return sum(line.startswith(what) for line in f.read().split("\n")[:-1])

    def watching(self) -> bool:
        """Did the last run that imported the saved module say ready since?"""
        with open(self.events) as f:
            whats = [line.split()[0] for line in f.read().split("\n")[:-1]]
        imported = [i for i, what in enumerate(whats) if what.startswith("imported-")]
        return bool(imported) and "ready" in whats[imported[-1] :]

    def uvicorn_reloader(self) -> str:
        """The reloader uvicorn says it uses, from its log."""
        with open(self.log, errors="replace") as f:
            found = f.read().partition("using ")[2].split()
        return found[0] if found else "?"

    def close(self) -> None:
        _kill(self.proc)


def _process_cpu(pid: int) -> float:
    """CPU seconds of process `pid`, every thread, ended ones included.

    The process CPU clock of another process (what ``clock_getcpuclockid``
    gives in C), read to the nanosecond; /proc/PID/stat counts 10 ms ticks,
    too coarse for a watcher that idles at 0.1 % of a core.
    """
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:  # not Linux, or the clock is refused: ticks will do
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_pct(
    bench: Bench, watcher: Watcher, folder: str, n: int, seconds: float, tree: str = ""
) -> tuple[float, str]:
    """% of a core the watcher takes over `seconds` of idling; how read."""
    program = _Program(bench, watcher, folder, n, tree)
    try:
        program.times("ready", 1, READY_TIMEOUT)
        time.sleep(IDLE_GRACE)
        pid = program.proc.pid
        cpu0, wall0 = _process_cpu(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = _process_cpu(pid), time.monotonic()
        if program.proc.poll() is not None or program.seen("restart"):
            raise BenchError(f"{watcher.label} restarted or ended while idle")
        how = HOW_MEASURED[watcher.kind]
        if watcher.kind == "uvicorn":
            how += f", using {program.uvicorn_reloader()}"
    finally:
        program.close()
    return 100 * (cpu1 - cpu0) / (wall1 - wall0), how


def _save_latencies(
    bench: Bench,
    watcher: Watcher,
    folder: str,
    n: int,
    targets: list[str],
    samples: int,
    tree: str = "",
) -> list[float]:
    """Seconds from each save (its rename) to the restart beginning."""
    import random

    program = _Program(bench, watcher, folder, n, tree)
    latencies: list[float] = []
    try:
        for i in range(samples):
            program.times("ready", i + 1, READY_TIMEOUT)
            # A save at a random moment of the interval, half a second at
            # least after the program said ready: every watcher is set up.
            pause = random.uniform(0.5, 1.0) + (FIRST_SAVE_GRACE if i == 0 else 0)
            time.sleep(pause)
            if program.seen("restart") != i:
                raise BenchError(f"{watcher.label} restarted with no save")
            written = _save(targets[i % len(targets)], i)
            restarts = program.times("restart", i + 1, RESTART_TIMEOUT)
            latencies.append(restarts[i] - written)
    finally:
        program.close()
    return latencies


def _flat(rounds: list[list[float]]) -> list[float]:
    return [value for samples in rounds for value in samples]


def _ratio_rows(
    bench: Bench, section: str, name: str, rounds: dict[str, list[list[float]]]
) -> None:
    """reloader over each watchfiles: the ratio of their medians in each round.

    A round runs each watcher once, one after the other: the ratio of one
    round compares runs made minutes apart at most, under the same load.
    """
    for peer in ("watchfiles", "watchfiles.watch"):
        if peer not in rounds:
            continue
        ratios = [
            _median(mine) / _median(theirs) if _median(theirs) else float("inf")
            for mine, theirs in zip(rounds["reloader"], rounds[peer])
        ]
        bench.add(
            section,
            f"{name}: reloader / {peer}",
            ratios,
            target="<= 1.00",
            ok=_median(ratios) <= 1.0,
            note=f"per round, median over median; {len(ratios)} round(s)",
        )


IDLECPU_TARGETS = {2000: 0.15, 10000: 0.40}


def section_idlecpu(bench: Bench) -> None:
    plan = bench.plan
    watchers = _watchers(bench, "idlecpu")
    for n in plan.idlecpu_sizes:
        folder = _project(bench, n)
        rounds: dict[str, list[list[float]]] = {w.kind: [] for w in watchers}
        hows: dict[str, str] = {}
        for _ in range(plan.idlecpu_runs):  # rounds: every watcher once
            for watcher in watchers:
                pct, hows[watcher.kind] = _idle_pct(
                    bench, watcher, folder, n, plan.idlecpu_seconds
                )
                rounds[watcher.kind].append([pct])
        pcts = {kind: _flat(samples) for kind, samples in rounds.items()}
        for watcher in watchers:
            limit = IDLECPU_TARGETS.get(n) if watcher.kind == "reloader" else None
            bench.add(
                "idlecpu",
                f"idle CPU %, N={n}: {watcher.label}",
                pcts[watcher.kind],
                target="" if limit is None else f"<= {limit:.2f}",
                ok=None if limit is None else _median(pcts[watcher.kind]) <= limit,
                note=f"{plan.idlecpu_runs} x {plan.idlecpu_seconds:g} s; "
                f"{hows[watcher.kind]}",
            )
        _ratio_rows(bench, "idlecpu", f"idle CPU, N={n}", rounds)


def section_save(bench: Bench) -> None:
    plan, n = bench.plan, SAVE_N
    watchers = _watchers(bench, "save")
    folder = _project(bench, n)
    target = os.path.join(folder, "bench_save_target.py")
    rounds: dict[str, list[list[float]]] = {w.kind: [] for w in watchers}
    for _ in range(plan.save_rounds):  # rounds: every watcher once
        for watcher in watchers:
            rounds[watcher.kind].append(
                _save_latencies(
                    bench, watcher, folder, n, [target], plan.save_per_round
                )
            )
    results = {kind: _flat(samples) for kind, samples in rounds.items()}
    for watcher in watchers:
        ms = [1000 * latency for latency in results[watcher.kind]]
        target_text, ok = "", None
        if watcher.kind == "reloader":
            target_text = "med <= 60, max <= 120"
            ok = _median(ms) <= 60 and max(ms) <= 120
        bench.add(
            "save",
            f"save -> restart begins, ms, N={n}: {watcher.label}",
            ms,
            digits=0,
            target=target_text,
            ok=ok,
            note=f"{len(ms)} saves (temp file + rename), {plan.save_rounds} "
            f"round(s); default interval; {HOW_RESTART[watcher.kind]}",
        )
    _ratio_rows(bench, "save", "save -> restart", rounds)


HOW_RESTART = {
    "reloader": "restart begins: its reload hook",
    "tornado": "restart begins: its reload hook",
    "watchfiles": "restart begins: the program gets SIGINT",
    "watchfiles.watch": "restart begins: watch() yields the change",
    "uvicorn": "restart begins: the server worker gets SIGTERM",
}


def _tree(bench: Bench, dirs: int) -> tuple[str, str, list[str]]:
    """A folder of `dirs` x TREE_FILES_PER_DIR files dated a day back.

    Returns the program's folder (no modules), the tree, and a file of each
    tree folder to save.
    """
    base = os.path.join(bench.tmp, f"tree-{dirs}")
    tree = os.path.join(base, "tree")
    app = _project(bench, 0)
    past = time.time() - 86400
    targets = []
    if not os.path.isdir(tree):
        for d in range(dirs):
            folder = os.path.join(tree, f"d{d:03d}")
            os.makedirs(folder)
            for i in range(TREE_FILES_PER_DIR):
                path = os.path.join(folder, f"f{i:02d}.py")
                with open(path, "w") as f:
                    f.write(f"VALUE = {i}\n")
                os.utime(path, (past, past))
    for d in range(dirs):
        targets.append(
            os.path.join(tree, f"d{d:03d}", f"f{d % TREE_FILES_PER_DIR:02d}.py")
        )
    return app, tree, targets


def section_tree(bench: Bench) -> None:
    import random

    plan = bench.plan
    files = plan.tree_dirs * TREE_FILES_PER_DIR
    app, tree, targets = _tree(bench, plan.tree_dirs)
    random.shuffle(targets)
    watchers = _watchers(bench, "tree")
    rounds: dict[str, list[list[float]]] = {w.kind: [] for w in watchers}
    hows: dict[str, str] = {}
    for _ in range(plan.tree_idle_runs):  # rounds: every watcher once
        for watcher in watchers:
            pct, hows[watcher.kind] = _idle_pct(
                bench, watcher, app, 0, plan.tree_idle_seconds, tree
            )
            rounds[watcher.kind].append([pct])
    pcts = {kind: _flat(samples) for kind, samples in rounds.items()}
    latencies = {
        w.kind: _save_latencies(bench, w, app, 0, targets, plan.tree_saves, tree)
        for w in watchers
    }
    for watcher in watchers:
        mine = watcher.kind == "reloader"
        bench.add(
            "tree",
            f"tree of {files} files, idle CPU %: {watcher.label}",
            pcts[watcher.kind],
            target="<= 1.00" if mine else "",
            ok=_median(pcts[watcher.kind]) <= 1.0 if mine else None,
            note=f"{plan.tree_dirs} folders; {plan.tree_idle_runs} x "
            f"{plan.tree_idle_seconds:g} s; {hows[watcher.kind]}",
        )
    _ratio_rows(bench, "tree", f"tree of {files} files, idle CPU", rounds)
    for watcher in watchers:
        mine = watcher.kind == "reloader"
        ms = [1000 * latency for latency in latencies[watcher.kind]]
        bench.add(
            "tree",
            f"tree of {files} files, save -> restart, ms: {watcher.label}",
            ms,
            digits=0,
            target="med <= 200" if mine else "",
            ok=_median(ms) <= 200 if mine else None,
            note=f"{len(ms)} saves of files in different folders; "
            f"{HOW_RESTART[watcher.kind]}",
        )
    one_round = {kind: [samples] for kind, samples in latencies.items()}
    _ratio_rows(bench, "tree", f"tree of {files} files, save -> restart", one_round)


# Section 10: peers.


def section_peers(bench: Bench) -> None:
    python = VENV_PYTHON if os.path.exists(VENV_PYTHON) else sys.executable
    probe = bench.child("probe", {}, python=python)
    installed = {peer: v for peer, v in probe["versions"].items() if v}
    bench.details["peers"] = {"python": python, **probe}
    missing = ", ".join(sorted(set(PEER_DISTS) - set(installed)))
    if missing:
        note = f"in {python}; see bench/README.md"
        bench.add("peers", "peers not installed", [], text=missing, note=note)
    if not installed:
        return
    for peer, version in installed.items():
        _peer_scan_rows(bench, python, peer, version)
    for peer in installed:
        _peer_idle_row(bench, python, peer)
    # The import rows of reloader again, beside the peers' and measured the
    # same way, in the same interpreter.
    codes = {peer: f"import {PEER_IMPORTS[peer]}" for peer in installed}
    codes.update(RELOADER_IMPORTS)
    path = bench.reloader_dir + os.pathsep + probe["purelib"]
    runs = bench.plan.peer_import_runs
    times, added = _import_costs(bench, python, codes, runs, path)
    _reloader_import_rows(bench, "peers", times, added)
    for peer in installed:
        bad = ", ".join(sorted(set(FORBIDDEN) & added[peer])) or "none of those"
        diffs = [t - b for t, b in zip(times[peer], times["base"])]
        bench.add(
            "peers",
            f"{peer}: import - (threading+logging), ms",
            diffs,
            note=f"import {PEER_IMPORTS[peer]}: {len(added[peer])} modules, "
            f"median {_median(times[peer]):.2f} ms; imports {bad}",
        )


def _peer_scan_rows(bench: Bench, python: str, peer: str, version: str) -> None:
    plan = bench.plan
    for n in plan.peer_sizes:
        args = {"peer": peer, "n": n, "moddir": bench.moddir(n)}
        timing = {"reps": plan.peer_scan_reps, "window": plan.scan_window}
        res = bench.child("peer-scan", {**args, **timing}, python=python)
        ratios = [p / f for p, f in zip(res["peer"], res["floor"])]
        floor, theirs = _us(_median(res["floor"])), _us(_median(res["peer"]))
        bench.add(
            "peers",
            f"{peer} {version}: scan CPU / stat floor, N={n}",
            ratios,
            note=f"{res['stats_per_scan']:.0f} stat calls per scan, "
            f"{res['files']} files in the floor; per scan: floor {floor}, "
            f"{peer} {theirs}",
        )


def _peer_idle_row(bench: Bench, python: str, peer: str) -> None:
    plan, n = bench.plan, 2000
    args = {
        "peer": peer,
        "n": n,
        "moddir": bench.moddir(n),
        "seconds": plan.peer_idle_seconds,
    }
    results = [
        bench.child("peer-idle", args, python=python)
        for _ in range(plan.peer_idle_runs)
    ]
    bench.add(
        "peers",
        f"{peer}: idle CPU, % of a core, N={n}",
        [r["cpu_pct"] for r in results],
        note=f"at its default interval, {results[0]['interval']:g} s",
    )


# The table and the command line.


# Section 11: refused connections across restarts (``--only refused``).
#
# A server restarted 10 times by edits while one client requests it in a
# loop, one connection at a time: per restart, the connections refused and
# the requests that failed otherwise (cut while in flight). reloader runs the
# unmodified server under ``python -m reloader``; the peers restart it their
# own way. Frameworks come from bench/.venv if it exists, else the running
# Python; a server whose framework is missing is a row that says so.

REFUSED_RESTARTS = 10

REFUSED_HTTP_SERVER = """\
import http.server
import sys

VERSION = {version}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"version %d" % VERSION
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

REFUSED_FLASK = """\
import os

from flask import Flask

VERSION = {version}
app = Flask(__name__)


@app.route("/")
def index():
    return "version %d" % VERSION


if __name__ == "__main__":
    app.run("127.0.0.1", int(os.environ["BENCH_PORT"]))
"""

REFUSED_ASGI = """\
VERSION = {version}


async def app(scope, receive, send):
    body = b"version %d" % VERSION
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

REFUSED_DJANGO = {
    "manage.py": """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
""",
    "settings.py": """\
SECRET_KEY = "only for a benchmark"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.server": {"handlers": [], "propagate": False}},
}
""",
}

REFUSED_DJANGO_URLS = """\
from django.http import HttpResponse
from django.urls import path

VERSION = {version}


def index(request):
    return HttpResponse("version %d" % VERSION)


urlpatterns = [path("", index)]
"""

R = "-m reloader --check-time 100"
# label: (module needed, edited file, its template, other files, command line)
REFUSED_SERVERS = {
    "reloader: http.server": (
        "",
        "app.py",
        REFUSED_HTTP_SERVER,
        {},
        f"{R} app.py PORT",
    ),
    "reloader: Flask app.run()": ("flask", "app.py", REFUSED_FLASK, {}, f"{R} app.py"),
    "reloader: python -m uvicorn app:app": (
        "uvicorn",
        "app.py",
        REFUSED_ASGI,
        {},
        f"{R} -m uvicorn app:app --port PORT --log-level warning --lifespan off",
    ),
    "reloader: Django runserver --noreload": (
        "django",
        "urls.py",
        REFUSED_DJANGO_URLS,
        REFUSED_DJANGO,
        f"{R} manage.py runserver --noreload 127.0.0.1:PORT",
    ),
    "flask run --reload": (
        "flask",
        "app.py",
        REFUSED_FLASK,
        {},
        "-m flask --app app run --reload --port PORT",
    ),
    "uvicorn --reload": (
        "uvicorn",
        "app.py",
        REFUSED_ASGI,
        {},
        "-m uvicorn app:app --reload --port PORT --log-level warning --lifespan off",
    ),
    "Django runserver": (
        "django",
        "urls.py",
        REFUSED_DJANGO_URLS,
        REFUSED_DJANGO,
        "manage.py runserver 127.0.0.1:PORT",
    ),
}


class _LoopingClient:
    """Requests a URL in a loop in a thread, counting what happens."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.answers: list[str] = []
        self.refused = 0
        self.failed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while not self.stopping.is_set():
            try:
                with opener.open(self.url, timeout=10) as response:
                    answer = response.read().decode()
            except Exception as e:  # counted: that is the measurement
                reason = getattr(e, "reason", e)
                if isinstance(reason, ConnectionRefusedError):
                    self.refused += 1
                    time.sleep(0.001)  # as a browser would retry, not a spin
                else:
                    self.failed += 1
                continue
            if answer.startswith("version "):
                self.answers.append(answer)
            else:
                self.failed += 1

    def wait_answer(self, expected: str, proc: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while expected not in self.answers[-1:]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"no {expected!r} from {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(30)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refused_run(bench: Bench, python: str, label: str) -> tuple[list[float], int]:
    """Per restart, the refused connections; and the failed requests in all."""
    _, edited, template, files, command = REFUSED_SERVERS[label]
    folder = os.path.join(bench.tmp, "refused-" + str(len(bench.rows)))
    os.mkdir(folder)
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    path = os.path.join(folder, edited)

    def edit(version: int) -> None:
        with open(path, "w") as f:  # the padding changes the size every time
            f.write(template.replace("{version}", str(version)) + "#" * version)

    edit(1)
    port = _free_port()
    env = bench.env(bench.reloader_dir)
    env.pop("PYTHONPYCACHEPREFIX", None)  # frameworks' reloaders watch .pyc
    env.update(BENCH_PORT=str(port), PYTHONDONTWRITEBYTECODE="1")
    args = [a.replace("PORT", str(port)) for a in command.split()]
    log = os.path.join(folder, "log.txt")
    import subprocess

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [python, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env=env,
            start_new_session=True,
        )
    client = None
    try:
        client = _LoopingClient(f"http://127.0.0.1:{port}/")
        client.wait_answer("version 1", proc)
        refused = []
        failed = client.failed
        for version in range(2, REFUSED_RESTARTS + 2):
            before = client.refused
            time.sleep(0.2)  # a settled server, as after a human's edit
            edit(version)
            client.wait_answer(f"version {version}", proc)
            refused.append(float(client.refused - before))
        return refused, client.failed - failed
    except BenchError as e:
        with open(log) as f:
            raise BenchError(f"{label}: {e}; log:\n{f.read()[-2000:]}") from None
    finally:
        if client is not None:
            client.stop()
        _kill(proc)


def section_refused(bench: Bench) -> None:
    import subprocess

    python = VENV_PYTHON if os.path.exists(VENV_PYTHON) else sys.executable
    for label, (module, *_) in REFUSED_SERVERS.items():
        if module:
            code = f"import {module}"
            probe = subprocess.run(
                [python, "-c", code], stderr=subprocess.DEVNULL, check=False
            )
            if probe.returncode != 0:
                bench.add("refused", label, [], text="-", note=f"no {module}")
                continue
        refused, failed = _refused_run(bench, python, label)
        bench.add(
            "refused",
            f"{label}: refused per restart",
            refused,
            digits=0,
            target="0" if label.startswith("reloader") else "",
            ok=max(refused) == 0 if label.startswith("reloader") else None,
            note=f"{int(sum(refused))} refused, {failed} other failed requests "
            f"over {len(refused)} restarts",
        )


# Section 12: missed edits. The edits a watcher comparing modification
# times, or starting to watch only once the program is ready, does not see:
# each is made to a program running under each watcher, and counted missed
# when no new run of the program starts within MISSED_WAIT.

MISSED_WAIT = 3.0  # s for a new run after an edit: the peers poll or debounce
MISSED_IMPORTING = "0.3"  # s of importing left after the edited module
MISSED_REGRACE = 0.5  # s after a fresh start that follows a miss (the first
# start of each program waits FIRST_SAVE_GRACE)
FIXED_STAMP = 315532800  # 1980-01-01, a SOURCE_DATE_EPOCH of reproducible builds
MISSED_KINDS = {  # kind: what the row says it is
    "mtime": "same size, mtime put back (cp -p, tar x, touch -d)",
    "fixed": "copy2 of a same-size file, one fixed mtime (SOURCE_DATE_EPOCH)",
    "importing": "a save while the restarted program still imports",
}


def _missed_project(bench: Bench) -> tuple[str, str]:
    """The program's folder, the module it imports and the parent edits."""
    folder = os.path.join(bench.tmp, "missed")
    os.makedirs(os.path.join(bench.tmp, "missed-sources"), exist_ok=True)
    os.makedirs(folder, exist_ok=True)
    for name, text in (("bench_app.py", APP_SCRIPT), ("bench_asgi.py", ASGI_SCRIPT)):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    return folder, os.path.join(folder, "bench_save_target.py")


def _same_size(value: int) -> str:
    """The module's text for a six-digit `value`: always the same size."""
    return f"VALUE = {value}\n"


def _put_mtime_back(path: str, value: int) -> None:
    """Rewrite `path` in place, same size, and put its times back (cp -p)."""
    st = os.stat(path)
    with open(path, "w") as f:
        f.write(_same_size(value))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_fixed(path: str, value: int) -> None:
    """``shutil.copy2`` over `path` a same-size file stamped FIXED_STAMP."""
    import shutil

    sources = os.path.join(os.path.dirname(os.path.dirname(path)), "missed-sources")
    source = os.path.join(sources, os.path.basename(path))
    with open(source, "w") as f:
        f.write(_same_size(value))
    os.utime(source, (FIXED_STAMP, FIXED_STAMP))
    shutil.copy2(source, path)


def _wait_for(program: _Program, what: str, count: int, timeout: float) -> bool:
    """Wait until `count` `what` events are there; False after `timeout`."""
    deadline = time.monotonic() + timeout
    while program.seen(what) < count:
        if program.proc.poll() is not None:
            raise BenchError(f"the program ended; see {program.log}")
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _wait_watching(program: _Program) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not program.watching():
        if program.proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the program is not watching; see {program.log}")
        time.sleep(0.005)


class _MissedTrials:
    """K edits of one kind to a program running under one watcher."""

    def __init__(self, bench: Bench, watcher: Watcher, kind: str) -> None:
        self.bench, self.watcher, self.kind = bench, watcher, kind
        self.folder, self.target = _missed_project(bench)
        self.value = 100000  # the module's VALUE: six digits, one per version
        self.missed = self.stale = self.late = 0
        # The module as the program first imports it: dated a day back, or
        # stamped like the files the fixed-stamp copies bring.
        stamp = FIXED_STAMP if kind == "fixed" else time.time() - 86400
        with open(self.target, "w") as f:
            f.write(_same_size(self.value))
        os.utime(self.target, (stamp, stamp))
        self.program = self.start(FIRST_SAVE_GRACE)

    def start(self, grace: float) -> _Program:
        """The program, watching, `grace` s past its watcher's set-up."""
        importing = MISSED_IMPORTING if self.kind == "importing" else "0"
        program = _Program(self.bench, self.watcher, self.folder, 0, "", importing)
        _wait_watching(program)
        time.sleep(grace)
        return program

    def next_value(self) -> int:
        self.value += 1
        return self.value

    def edit(self) -> bool:
        """One edit of the kind; whether a new run of the program started."""
        runs = self.program.seen("imported-")
        if self.kind == "mtime":
            _put_mtime_back(self.target, self.next_value())
        elif self.kind == "fixed":
            _copy_fixed(self.target, self.next_value())
        else:
            return self.edit_while_importing()
        # Python's byte-code cache knows a source by its mtime and size, which
        # these edits keep: a new run may import the old version from it, so
        # any new run counts, and one that imported the old version is stale.
        if not _wait_for(self.program, "imported-", runs + 1, MISSED_WAIT):
            return False
        _wait_watching(self.program)
        self.stale += not self.program.seen(f"imported-{self.value} ")
        return True

    def edit_while_importing(self) -> bool:
        """A save, and another as soon as the run it starts imported it.

        The second save is one byte longer, so that the byte-code cache does
        not take it for the first one; it is made while that run still
        imports (MISSED_IMPORTING s), before its watcher starts. Counted
        seen when a run imports it.
        """
        first = self.next_value()
        _save_text(self.target, f"VALUE = {first}\n# saved\n")
        if not _wait_for(self.program, f"imported-{first} ", 1, RESTART_TIMEOUT):
            raise BenchError(f"{self.watcher.label} missed an ordinary save")
        second = self.next_value()
        _save_text(self.target, f"VALUE = {second}\n# saved!\n")
        self.late += self.program.watching()  # its watcher was already there
        if not _wait_for(self.program, f"imported-{second} ", 1, MISSED_WAIT):
            return False
        _wait_watching(self.program)
        return True

    def run(self, trials: int) -> None:
        import random

        try:
            for _ in range(trials):
                time.sleep(random.uniform(0.3, 0.6))
                if not self.edit():
                    # Start afresh, running the file's version with its
                    # stamps: the next trial is as independent as the first.
                    self.missed += 1
                    self.program.close()
                    self.program = self.start(MISSED_REGRACE)
        finally:
            self.program.close()


def section_missed(bench: Bench) -> None:
    trials = bench.plan.missed_trials
    for watcher in _watchers(bench, "missed"):
        for kind, what in MISSED_KINDS.items():
            _progress(f"missed: {watcher.label}, {kind}")
            run = _MissedTrials(bench, watcher, kind)
            run.run(trials)
            notes = [f"{what}; no new run within {MISSED_WAIT:g} s"]
            if run.stale:
                notes.append(
                    f"{run.stale} new run(s) imported the old version "
                    "(Python's byte-code cache: same mtime and size)"
                )
            if run.late:
                notes.append(f"{run.late} save(s) came after the watcher started")
            mine = watcher.kind == "reloader"
            bench.add(
                "missed",
                f"missed, {kind}: {watcher.label}",
                [],
                text=f"{run.missed} of {trials}",
                target="0" if mine else "",
                ok=run.missed == 0 if mine else None,
                note="; ".join(notes),
            )


def print_table(bench: Bench, header: str) -> None:
    width = max(len(row.name) for row in bench.rows) + 2
    print(header)
    print(f"{'':{width}}{'min':>9}{'median':>9}{'max':>9}  {'target':<26}result")
    section = ""
    for row in bench.rows:
        if row.section != section:
            section = row.section
            print(f"-- {section}")
        low, mid, high = row.cells()
        result = {True: "pass", False: "FAIL", None: ""}[row.ok]
        print(f"{row.name:<{width}}{low:>9}{mid:>9}{high:>9}  {row.target:<26}{result}")
        if row.note:
            print(f"{'':4}{row.note}")


def write_json(bench: Bench, path: str, reloader_path: str, elapsed: float) -> None:
    plan = asdict(bench.plan)
    plan["latency_samples"] = {
        str(key or "default"): value
        for key, value in bench.plan.latency_samples.items()
    }
    rows = []
    for row in bench.rows:
        summary = dict(zip(("min", "median", "max"), row.stats()))
        rows.append({**asdict(row), **summary})
    result = {
        "reloader": reloader_path,
        "python": sys.version,
        "platform": sys.platform,
        "cpus": os.cpu_count(),
        "seconds": elapsed,
        "plan": plan,
        "rows": rows,
        "details": bench.details,
    }
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


def parse_args(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmark reloader (see the docstring of bench/run.py).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer samples, under 2 minutes (what CI runs)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure the peers installed in bench/.venv",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results to PATH")
    parser.add_argument(
        "--reloader",
        metavar="PATH",
        default=os.path.join(REPO, "reloader.py"),
        help="the reloader.py to measure (default: the repository's)",
    )
    parser.add_argument(
        "--only",
        metavar="SECTIONS",
        help="comma-separated subset of: " + ",".join(SECTIONS),
    )
    parser.add_argument(
        "--settle",
        metavar="MS",
        type=float,
        help="the reloader's settle time, if it does not say",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    reloader_path = os.path.abspath(args.reloader)
    if os.path.basename(reloader_path) != "reloader.py" or not os.path.isfile(
        reloader_path
    ):
        print(f"error: no reloader.py at {reloader_path}", file=sys.stderr)
        return 2
    sections = (
        args.only.split(",")
        if args.only
        else [
            s
            for s in SECTIONS
            if s not in OPTIONAL and not (args.quick and s in NOT_QUICK)
        ]
    )
    if args.peers and not args.only:
        sections.append("peers")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"error: unknown sections {sorted(unknown)}", file=sys.stderr)
        return 2
    bench = Bench(QUICK if args.quick else FULL, reloader_path, args.settle)
    bench.peers = args.peers
    started = time.monotonic()
    try:
        for name in SECTIONS:
            if name in sections:
                bench.run_section(name)
    finally:
        bench.cleanup()
    elapsed = time.monotonic() - started
    header = (
        f"reloader benchmark ({bench.plan.name}, {elapsed:.0f} s): {reloader_path}\n"
        f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} cpus"
    )
    print_table(bench, header)
    if args.json:
        write_json(bench, args.json, reloader_path, elapsed)
    return 1 if bench.errors else 0


SECTION_FUNCS: dict[str, Callable[[Bench], None]] = {
    "scan": section_scan,
    "idle": section_idle,
    "import": section_import,
    "latency": section_latency,
    "restart": section_restart,
    "memory": section_memory,
    "idlecpu": section_idlecpu,
    "save": section_save,
    "tree": section_tree,
    "peers": section_peers,
    "refused": section_refused,
    "missed": section_missed,
}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    sys.exit(main())
