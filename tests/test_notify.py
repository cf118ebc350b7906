"""Notifications wake the watcher; polling stays the ground truth.

Each program here runs with a long ``check_time`` and counts the watcher's
full scans (its stats of the program's own file, which only a full scan
stats): a restart that comes with no new full scan came through a
notification alone. See ``test_changes.py`` for the helpers.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RELOADER, ready_code, write
from test_changes import SCAN_COUNTER, scans, value, wait_scans
from test_detection import cpu_load  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify is Linux's"
)

NOTIFIED = """
import os
import sys
import time

import reloader

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
{scan_counter}

def _scans():
    path = os.path.join(HERE, ".scans")
    return os.path.getsize(path) if os.path.exists(path) else 0

reloader.add_reload_hook(lambda: print("restart after %d scans" % _scans(), flush=True))
{body}
_before = _scans()  # the file counts the scans of every run
reloader.start(check_time={check_time})
deadline = time.monotonic() + 20
while _scans() - _before < 3 and time.monotonic() < deadline:
    # The first scan (two stats of this file, seen for the first time), then
    # the full one that follows once notifications are on.
    time.sleep(0.01)
{ready}
{after}
time.sleep(600)
"""


def notified_program(
    tmp_path: Path, body: str = "", check_time: int = 60_000, after: str = ""
) -> Path:
    """A program that says ready once notifications are on; ``after`` follows."""
    source = NOTIFIED.format(
        scan_counter=SCAN_COUNTER,
        body=body,
        check_time=check_time,
        ready=ready_code(),
        after=after,
    )
    return write(tmp_path / "app.py", source)


def inotify_descriptors(pid: int) -> int:
    folder = f"/proc/{pid}/fd"
    count = 0
    for name in os.listdir(folder):
        try:
            count += os.readlink(os.path.join(folder, name)) == "anon_inode:inotify"
        except OSError:
            continue  # closed meanwhile
    return count


def restarted_without_a_full_scan(child, before: int, count: int = 1) -> None:
    """The ``count``-th restart came with no full scan since ``before``."""
    match = child.wait_for(r"^restart after (\d+) scans$", count=count)
    assert int(match.group(1)) == before, child.output()


# ---------------------------------------------------------------------------
# Every way of saving, seen through the notification alone.


def in_place(path: Path) -> None:
    write(path, value("B in place"))


def temp_and_rename(path: Path) -> None:
    temporary = write(path.with_name(path.name + ".tmp"), value("B, renamed over"))
    os.replace(temporary, path)


def vim_dance(path: Path) -> None:
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    write(path, value("B from vim"))
    backup.unlink()


def delete_and_create(path: Path) -> None:
    path.unlink()
    write(path, value("B recreated"))


def utime_only(path: Path) -> None:
    stamp = path.stat().st_mtime_ns - 3_600 * 10**9
    os.utime(path, ns=(stamp, stamp))


@pytest.mark.parametrize(
    "save",
    [in_place, temp_and_rename, vim_dance, delete_and_create, utime_only],
    ids=lambda f: f.__name__,
)
def test_every_save_is_seen_through_notifications(spawn, tmp_path, save):
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    child = spawn(notified_program(tmp_path, "import mod\n"))
    child.wait_for(r"^ready run=1 ")
    assert inotify_descriptors(child.pid) == 1
    before = scans(tmp_path)
    save(mod)
    restarted_without_a_full_scan(child, before)
    child.wait_for(r"^ready run=2 ")
    assert "lib/mod.py modified; restarting" in child.output()


def test_burst_of_30_files_restarts_once_under_load(spawn, tmp_path, cpu_load):  # noqa: F811
    data = tmp_path / "data"
    files = [write(data / f"f{i:02d}.txt", f"old {i}") for i in range(30)]
    body = 'reloader.watch(os.path.join(HERE, "data"))\n'
    child = spawn(notified_program(tmp_path, body))
    child.wait_for(r"^ready run=1 ")
    for i, path in enumerate(files):  # as a checkout writes them
        write(path, f"new content {i}")
    child.wait_for(r"^ready run=2 ")
    write(data / "sentinel.txt", "a later edit")
    child.wait_for(r"^ready run=3 ")
    restarts = re.findall(r"^reloader: .*restarting$", child.output(), re.MULTILINE)
    assert len(restarts) == 2, child.output()
    assert "and 29 other files modified" in restarts[0]
    assert "sentinel.txt created" in restarts[1]


# ---------------------------------------------------------------------------
# Watched folders replaced or deleted: the stale watch is added again.


def test_replaced_watched_folder_is_watched_again(spawn, tmp_path):
    data = write(tmp_path / "data" / "a.txt", "old a").parent
    write(tmp_path / "new" / "a.txt", "the new folder's a")
    body = 'reloader.watch(os.path.join(HERE, "data"))\n'
    child = spawn(notified_program(tmp_path, body))
    child.wait_for(r"^ready run=1 ")
    os.rename(data, tmp_path / "gone")
    os.rename(tmp_path / "new", data)
    child.wait_for(r"^ready run=2 ")
    before = scans(tmp_path)
    write(data / "a.txt", "edited in the new folder")
    restarted_without_a_full_scan(child, before, count=2)
    child.wait_for(r"^ready run=3 ")


def test_deleted_watched_folder_that_comes_back_restarts(spawn, tmp_path):
    data = write(tmp_path / "data" / "a.txt", "old a").parent
    body = 'reloader.watch(os.path.join(HERE, "data"))\nimport mod\n'
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    child = spawn(notified_program(tmp_path, body))
    child.wait_for(r"^ready run=1 ")
    shutil.rmtree(data)
    write(tmp_path / "elsewhere" / "b.txt", "b")
    os.rename(tmp_path / "elsewhere", data)  # back, with another file
    child.wait_for(r"^ready run=2 ")
    assert "data" in child.output().splitlines()[-3]
    write(mod, value("B, after the folder came back"))
    child.wait_for(r"^ready run=3 ")


# ---------------------------------------------------------------------------
# A module reached through a symbolic link: the real file's folder is watched.


def test_symlinked_module_is_seen_through_its_real_folder(spawn, tmp_path):
    real = write(tmp_path / "real" / "mod.py", value("A"))
    (tmp_path / "lib").mkdir()
    os.symlink(real, tmp_path / "lib" / "mod.py")
    child = spawn(notified_program(tmp_path, "import mod\n"))
    child.wait_for(r"^ready run=1 ")
    before = scans(tmp_path)
    temp_and_rename(real)
    restarted_without_a_full_scan(child, before)
    child.wait_for(r"^ready run=2 ")


# ---------------------------------------------------------------------------
# fork(), and no descriptor leaked by restarts.

DESCRIPTORS = """
def descriptors():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.append(os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass  # the listing's own descriptor, closed since
    return sorted(found)
"""

FORKS = (
    DESCRIPTORS
    + """
pid = os.fork()
if pid == 0:
    import threading

    names = [t.name for t in threading.enumerate()]
    fds = descriptors()
    print("child watcher=%s inotify=%d" % (
        "reloader" in names, sum(fd == "anon_inode:inotify" for fd in fds)
    ), flush=True)
    time.sleep(600)
    os._exit(0)
"""
)


def test_forked_child_has_no_watcher_and_steals_no_news(spawn, tmp_path):
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    # Forks once the watcher runs, with news on.
    child = spawn(notified_program(tmp_path, "import mod\n", after=FORKS))
    child.wait_for(r"^ready run=1 ")
    child.wait_for(r"^child watcher=False inotify=0$")
    before = scans(tmp_path)
    in_place(mod)
    restarted_without_a_full_scan(child, before)
    child.wait_for(r"^ready run=2 ")


PRINTS_DESCRIPTORS = (
    DESCRIPTORS
    + """
# Not the files the watcher thread may hold open for a moment.
fds = [fd for fd in descriptors() if not fd.startswith(("/proc", HERE + "/"))]
print("fds " + " ".join(fds), flush=True)
"""
)


def test_twenty_restarts_leak_no_descriptor(spawn, tmp_path):
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    child = spawn(notified_program(tmp_path, "import mod\n", after=PRINTS_DESCRIPTORS))
    for run in range(1, 21):
        child.wait_for(rf"^ready run={run} ")
        child.wait_for(r"^fds ", count=run)
        write(mod, value("B" * (run + 1)))
    child.wait_for(r"^fds ", count=21)
    # Pipes (the wake-up pipe) are new ones in each run: compare kinds.
    lines = re.findall(r"^fds .*$", child.output(), re.MULTILINE)
    lines = [re.sub(r"pipe:\[\d+\]", "pipe", line) for line in lines]
    assert len(set(lines)) == 1, lines
    assert lines[0].count("anon_inode:inotify") == 1


# ---------------------------------------------------------------------------
# Limits, untrusted file systems, and changes no notification reported.


def test_watch_limit_reached_falls_back_to_polling(spawn, tmp_path):
    unshare = shutil.which("unshare")
    probe = subprocess.run(
        [unshare or "unshare", "-U", "-r", "sh", "-c",
         "echo 1 > /proc/sys/user/max_inotify_watches"],
        capture_output=True,
    )  # fmt: skip
    if unshare is None or probe.returncode != 0:
        pytest.skip(f"no user namespace with its own inotify limit: {probe.stderr!r}")
    mods = [write(tmp_path / "lib" / d / f"mod_{d}.py", value("A")) for d in "abc"]
    body = "".join(
        f"sys.path.insert(0, os.path.join(HERE, 'lib', {d!r}))\nimport mod_{d}\n"
        for d in "abc"
    )
    app = notified_program(tmp_path, body, check_time=50)
    script = (
        f"echo 1 > /proc/sys/user/max_inotify_watches && exec {sys.executable} {app}"
    )
    child = spawn("-U", "-r", "sh", "-c", script, python=unshare)
    child.wait_for(r"^ready run=1 ")
    for run, mod in enumerate(mods, start=2):
        write(mod, value("B" * (run + 1)))
        child.wait_for(rf"^ready run={run} ")
    assert "Traceback" not in child.output()


@pytest.fixture
def fuse_folder(tmp_path):
    """(the host side, the FUSE side) of a bindfs mount, as Docker Desktop's.

    An edit made on the host side changes the files under the FUSE side with
    no notification there: only polling can see it.
    """
    bindfs = shutil.which("bindfs")
    if bindfs is None or not os.path.exists("/dev/fuse"):
        pytest.skip("needs bindfs and /dev/fuse (.ci/run installs bindfs)")
    host, mount = tmp_path / "host", tmp_path / "mount"
    host.mkdir()
    mount.mkdir()
    made = subprocess.run([bindfs, host, mount], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount bindfs here: {made.stderr!r}")
    try:
        yield host, mount
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mount)], check=False)


def test_untrusted_file_system_is_polled(spawn, fuse_folder):
    host, mount = fuse_folder
    write(host / "lib" / "mod.py", value("A"))
    child = spawn(notified_program(mount, "import mod\n", check_time=50), cwd=mount)
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, mount, count=4)  # polled every check_time, news or not
    write(host / "lib" / "mod.py", value("B, edited on the host"))
    child.wait_for(r"^ready run=2 ")
    assert "lib/mod.py modified; restarting" in child.output()


def test_change_no_notification_reported_makes_the_mount_polled(spawn, tmp_path):
    # A write through a shared memory map moves the file's ctime but makes
    # no inotify event: only the safety poll (every 10 s) sees it.
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    child = spawn(notified_program(tmp_path, "import mod\n", check_time=50))
    child.wait_for(r"^ready run=1 ")
    # Until its stamps are older than the racy window (2 s), a file's content
    # is compared at every poll, which would see the change without news.
    deadline = time.monotonic() + 20
    while time.time_ns() - mod.stat().st_ctime_ns < 3 * 10**9:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    fd = os.open(mod, os.O_RDWR)
    mapped = mmap.mmap(fd, 0)
    os.close(fd)  # its close event comes now, before the write
    try:
        mapped[0:5] = b"VALUZ"
        mapped.flush()
        child.wait_for(r"no notification said so", timeout=30)
        child.wait_for(r"^ready run=2 ")
    finally:
        mapped.close()
    # From then on the mount is polled: the new run stats every check_time.
    wait_scans(child, tmp_path, count=4)
    output = child.output()
    assert "lib/mod.py changed and no notification said so" in output


# ---------------------------------------------------------------------------
# Poll only: --poll and RELOADER_POLL.


def test_poll_option_uses_no_notifications(spawn, tmp_path):
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    app = write(
        tmp_path / "app.py",
        "import sys, os, time\n"
        "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'lib'))\n"
        "import mod\n" + ready_code() + "time.sleep(600)\n",
    )
    child = spawn(RELOADER, "--poll", "--check-time", "50", app)
    child.wait_for(r"^ready run=1 ")
    assert inotify_descriptors(child.pid) == 0
    in_place(mod)
    child.wait_for(r"^ready run=2 ")
    assert inotify_descriptors(child.pid) == 0


def test_poll_environment_variable_uses_no_notifications(spawn, tmp_path):
    mod = write(tmp_path / "lib" / "mod.py", value("A"))
    child = spawn(
        notified_program(tmp_path, "import mod\n", check_time=50),
        env={"RELOADER_POLL": "1"},
    )
    child.wait_for(r"^ready run=1 ")
    assert inotify_descriptors(child.pid) == 0
    wait_scans(child, tmp_path, count=4)
    in_place(mod)
    child.wait_for(r"^ready run=2 ")


# ---------------------------------------------------------------------------
# A module imported after the watcher started, edited before it is watched.

IMPORTS_LATE = """
import late

if not hasattr(late, "EDITED"):
    with open(late.__file__, "a") as f:  # an edit right after the import
        f.write("EDITED = True\\n")
"""


def test_module_imported_late_and_edited_at_once_restarts_without_a_full_scan(
    spawn, tmp_path
):
    write(tmp_path / "lib" / "mod.py", value("A"))
    write(tmp_path / "lib" / "late.py", value("late"))
    child = spawn(notified_program(tmp_path, "import mod\n", after=IMPORTS_LATE))
    child.wait_for(r"^ready run=1 ")
    before = scans(tmp_path)
    restarted_without_a_full_scan(child, before)
    child.wait_for(r"^ready run=2 ")
    assert "lib/late.py modified; restarting" in child.output()


# The same, with the import and the edit made while a full scan runs, after
# it made its list of files: the scan reads the edit's event at its end.
EDITED_DURING_THE_FULL_SCAN = """
import importlib
import threading

_stat = os.stat


def _stat_then_edit(path, *args, **kwargs):
    result = _stat(path, *args, **kwargs)
    if (
        path == os.path.abspath(__file__)
        and threading.current_thread().name == "reloader"
        and _scans() == 3  # the full scan that follows the first one
        and "late" not in sys.modules
    ):
        late = importlib.import_module("late")
        with open(late.__file__, "a") as f:
            f.write("EDITED = True\\n")
    return result


os.stat = _stat_then_edit
"""


def test_module_imported_and_edited_during_a_full_scan_restarts_at_once(
    spawn, tmp_path
):
    write(tmp_path / "lib" / "mod.py", value("A"))  # lib is watched
    write(tmp_path / "lib" / "late.py", value("late"))
    body = "import mod\n" + EDITED_DURING_THE_FULL_SCAN
    child = spawn(notified_program(tmp_path, body))
    # Not at the next safety poll, 10 s later: that would be a full scan.
    restarted_without_a_full_scan(child, before=3)
    child.wait_for(r"^ready run=2 ")
    assert "lib/late.py modified; restarting" in child.output()


def test_file_moved_into_a_watched_folder_restarts_without_a_full_scan(spawn, tmp_path):
    # One event (IN_MOVED_TO), about a file not in the list yet.
    write(tmp_path / "data" / "a.txt", "a")
    outside = write(tmp_path / "elsewhere" / "b.txt", "b")
    body = 'reloader.watch(os.path.join(HERE, "data"))\n'
    child = spawn(notified_program(tmp_path, body))
    child.wait_for(r"^ready run=1 ")
    before = scans(tmp_path)
    os.replace(outside, tmp_path / "data" / "b.txt")
    restarted_without_a_full_scan(child, before)
    child.wait_for(r"^ready run=2 ")
    assert "data/b.txt created; restarting" in child.output()
