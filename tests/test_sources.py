"""The notification sources: inotify against the kernel, kqueue simulated.

The one test file that uses private names: the sources are private classes,
and the kqueue source cannot run on Linux at all, so its tests drive the real
``_Kqueue`` code through FakeSelect, a fake ``select`` module whose queue
simulates the kernel (described there). How the watcher uses the sources,
every save pattern included, is tested through the public API in
``test_notify.py``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reloader import (
    _Inotify,
    _Kqueue,
    _mount_of,
    _mount_table,
    _statfs_says_local,
    _trusted_darwin,
)


def _trusted(path: str, table: list[tuple[str, str]]) -> bool:
    return _mount_of(path, table)[1]


DEADLINE = 15.0  # seconds to wait for an event that must come

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")


# --- helpers ----------------------------------------------------------------


def collect(source, want: set[str]) -> set[str] | None:
    """Read ``source`` until every path in ``want`` was named; None if track was lost.

    Waits on the descriptor with select(), as the watcher will, for at most
    DEADLINE seconds; fails the test then.
    """
    seen: set[str] = set()
    end = time.monotonic() + DEADLINE
    while not want <= seen:
        left = end - time.monotonic()
        assert left > 0, f"never named {sorted(want - seen)}; named {sorted(seen)}"
        ready, _, _ = select.select([source.fileno()], [], [], left)
        if not ready:
            continue
        got = source.read()
        if got is None:
            return None
        seen |= got
    return seen


def drain(source) -> None:
    """Read whatever is queued now (the events of a test's setup)."""
    while select.select([source.fileno()], [], [], 0)[0]:
        source.read()


def lose_track(source) -> None:
    """Wait until read() returns None (track lost); fails after DEADLINE."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if select.select([source.fileno()], [], [], end - time.monotonic())[0]:
            if source.read() is None:
                return
    raise AssertionError("read() never returned None")


@pytest.fixture
def inotify():
    source = _Inotify()
    yield source
    source.close()


@pytest.fixture
def folder(tmp_path: Path) -> str:
    path = tmp_path / "app"
    path.mkdir()
    (path / "views.py").write_text("x = 1\n")
    return str(path)


# --- inotify: every save pattern seen through the folder's watch -------------


def save_in_place(path: str) -> None:
    with open(path, "a") as f:
        f.write("y = 2\n")


def save_by_rename(path: str) -> None:
    # What most editors and formatters do: write a temporary file, rename it over.
    tmp = path + ".tmp123"
    with open(tmp, "w") as f:
        f.write("x = 3\n")
    os.replace(tmp, path)


def save_like_vim(path: str) -> None:
    # vim's default with backupcopy=auto: rename the file away, write a new one,
    # delete the backup.
    os.rename(path, path + "~")
    with open(path, "w") as f:
        f.write("x = 4\n")
    os.unlink(path + "~")


def save_delete_create(path: str) -> None:
    os.unlink(path)
    with open(path, "w") as f:
        f.write("x = 5\n")


def save_utime(path: str) -> None:
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))


def save_mmap(path: str) -> None:
    import mmap

    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[0:1] = b"z"
        m.flush()


@linux_only
@pytest.mark.parametrize(
    "save",
    [
        save_in_place,
        save_by_rename,
        save_like_vim,
        save_delete_create,
        save_utime,
        save_mmap,
    ],
)
def test_every_save_pattern_names_the_file(inotify, folder, save):
    assert inotify.sync([folder]) == set()
    path = os.path.join(folder, "views.py")
    save(path)
    named = collect(inotify, {path})
    assert named is not None
    assert path in named


@linux_only
def test_a_writer_that_keeps_the_file_open_is_seen(inotify, folder):
    # A log, or a program writing through mmap, gives IN_MODIFY and nothing
    # else until it closes the file, which may be never.
    inotify.sync([folder])
    path = os.path.join(folder, "app.log")
    with open(path, "w") as log:
        drain(inotify)
        log.write("started\n")
        log.flush()
        assert collect(inotify, {path}) is not None


@linux_only
def test_a_new_subfolder_and_a_new_file_are_named(inotify, folder):
    inotify.sync([folder])
    os.mkdir(os.path.join(folder, "pkg"))
    with open(os.path.join(folder, "new.py"), "w") as f:
        f.write("")
    named = collect(
        inotify, {os.path.join(folder, "pkg"), os.path.join(folder, "new.py")}
    )
    assert named is not None


@linux_only
def test_an_attribute_change_of_the_folder_itself_names_the_folder(inotify, folder):
    inotify.sync([folder])
    os.chmod(folder, 0o755 if os.stat(folder).st_mode & 0o777 != 0o755 else 0o750)
    assert collect(inotify, {folder}) is not None


@linux_only
def test_names_are_decoded_as_os_listdir_decodes_them(inotify, folder):
    inotify.sync([folder])
    name = os.fsdecode(b"caf\xc3\xa9 \xff.py")  # valid UTF-8, then a byte that is not
    with open(os.path.join(folder, name), "w") as f:
        f.write("")
    assert name in os.listdir(folder)
    assert collect(inotify, {os.path.join(folder, name)}) is not None


# --- inotify: the watched folder itself deleted, moved, replaced --------------


@linux_only
def test_a_deleted_folder_loses_track_then_sync_re_adds_it(inotify, folder):
    inotify.sync([folder])
    shutil.rmtree(folder)
    lose_track(inotify)
    assert inotify.sync([folder]) == {folder}  # gone: the caller polls it
    os.mkdir(folder)
    assert inotify.sync([folder, folder + "-other"]) == {folder + "-other"}
    path = os.path.join(folder, "views.py")
    with open(path, "w") as f:
        f.write("back\n")
    assert path in (collect(inotify, {path}) or ())


@linux_only
def test_a_replaced_folder_loses_track_and_the_moved_one_is_not_reported(
    inotify, folder
):
    inotify.sync([folder])
    os.rename(folder, folder + ".old")
    os.mkdir(folder)
    lose_track(inotify)
    # Same set as before, yet the stale watch is re-added, on the new folder.
    assert inotify.sync([folder]) == set()
    drain(inotify)
    with open(os.path.join(folder + ".old", "views.py"), "a") as f:
        f.write("old folder\n")  # the moved folder's watch must be gone
    path = os.path.join(folder, "fresh.py")
    with open(path, "w") as f:
        f.write("new folder\n")
    named = collect(inotify, {path})
    assert named == {path}


@linux_only
def test_a_folder_replaced_by_rename_over_it_loses_track(inotify, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (new / "a.py").write_text("")
    inotify.sync([str(old)])
    os.rename(new, old)  # renaming a folder over an empty one
    lose_track(inotify)
    assert inotify.sync([str(old)]) == set()
    drain(inotify)
    (old / "a.py").write_text("changed\n")
    assert collect(inotify, {str(old / "a.py")}) is not None


@linux_only
def test_two_paths_to_one_folder_share_a_watch(inotify, folder, tmp_path):
    link = str(tmp_path / "link")
    os.symlink(folder, link)
    assert inotify.sync([folder, link]) == set()
    path = os.path.join(folder, "views.py")
    save_in_place(path)
    assert collect(inotify, {path, os.path.join(link, "views.py")}) is not None
    # Dropping one path keeps the shared watch for the other.
    inotify.sync([folder])
    drain(inotify)
    save_in_place(path)
    assert collect(inotify, {path}) == {path}


@linux_only
def test_unwatched_folders_are_not_reported_and_removal_is_not_lost_track(
    inotify, folder, tmp_path
):
    other = tmp_path / "other"
    other.mkdir()
    inotify.sync([folder, str(other)])
    inotify.sync([folder])  # rm_watch(other): its IN_IGNORED is ours, not lost
    (other / "x.py").write_text("")
    path = os.path.join(folder, "views.py")
    save_in_place(path)
    assert collect(inotify, {path}) == {path}


# --- inotify: overflow, limits, descriptors ----------------------------------


@linux_only
def test_a_full_queue_loses_track(inotify, folder):
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 200_000:
        pytest.skip(f"max_queued_events is {limit}: too many events to make quickly")
    # Never lower the limit: /proc/sys/fs/inotify is the whole machine's,
    # even from a user namespace. Fill the real queue instead: alternate two
    # files, so no event merges with the one before it.
    inotify.sync([folder])
    a, b = os.path.join(folder, "a"), os.path.join(folder, "b")
    for path in (a, b):
        open(path, "w").close()
    for i in range(limit // 2 + 10):
        os.utime(a, ns=(i, i))
        os.utime(b, ns=(i, i))
    assert collect(inotify, {"never"}) is None


@linux_only
def test_the_descriptor_is_close_on_exec_and_non_blocking(inotify, folder):
    fd = inotify.fileno()
    assert not os.get_inheritable(fd)
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
    # And really not there after an exec: a child that did not close fds.
    code = f"import os\ntry:\n os.fstat({fd})\nexcept OSError as e:\n print(e.errno)"
    out = subprocess.run(
        [sys.executable, "-c", code], close_fds=False, capture_output=True, text=True
    )
    assert out.stdout.strip() == str(errno.EBADF)
    assert inotify.read() == set()  # empty queue: returns at once


@linux_only
def test_close_is_idempotent_and_releases_the_descriptor(folder):
    source = _Inotify()
    source.sync([folder])
    fd = source.fileno()
    source.close()
    source.close()
    with pytest.raises(OSError):
        os.fstat(fd)
    assert source.fileno() == -1


@linux_only
def test_sync_with_an_unchanged_set_makes_no_system_call(inotify, tmp_path):
    folders = [str(tmp_path / f"d{i}") for i in range(200)]
    for path in folders:
        os.mkdir(path)
    calls = []
    add, rm = inotify._add_watch, inotify._rm_watch
    inotify._add_watch = lambda *a: calls.append("add") or add(*a)
    inotify._rm_watch = lambda *a: calls.append("rm") or rm(*a)
    missing = str(tmp_path / "missing")
    assert inotify.sync([*folders, missing]) == {missing}
    assert calls.count("add") == 201
    calls.clear()
    assert inotify.sync(reversed([*folders, missing])) == {missing}
    assert inotify.sync(set([*folders, missing])) == {missing}
    assert calls == []  # not even for the folder that failed
    assert inotify.sync(folders[1:]) == set()
    assert calls == ["rm"]


@linux_only
def test_a_forked_child_that_forgets_leaves_the_parent_watching(inotify, folder):
    inotify.sync([folder])
    path = os.path.join(folder, "views.py")
    pid = os.fork()
    if pid == 0:  # the child: drop our reference, then write
        try:
            inotify.forget()
            save_in_place(path)
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert collect(inotify, {path}) is not None  # the watches survived
    save_by_rename(path)
    assert collect(inotify, {path}) is not None


def run_in_user_namespace(tmp_path: Path, setup: str, code: str) -> str:
    """Run ``code`` in a new user namespace (``unshare -U -r``) after ``setup``.

    ``setup`` writes the namespace's own limits (/proc/sys/user/...), which
    bound this namespace only; the script checks it really is in a new
    namespace first. Skips when the machine does not permit it.
    """
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the root
    parent_namespace = os.readlink("/proc/self/ns/user")
    script = tmp_path / "ns.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {here!r})
            if os.readlink("/proc/self/ns/user") == {parent_namespace!r}:
                sys.exit("not in a new user namespace")
            {setup}
            """
        )
        + textwrap.dedent(code)
    )
    out = subprocess.run(
        ["unshare", "-U", "-r", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0 and (
        "unshare failed" in out.stderr or "Operation not permitted" in out.stderr
    ):
        pytest.skip(f"no user namespace here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    return out.stdout


@linux_only
def test_the_watch_limit_returns_the_rest_as_not_watched(tmp_path):
    for i in range(6):
        (tmp_path / f"d{i}").mkdir()
    out = run_in_user_namespace(
        tmp_path,
        'open("/proc/sys/user/max_inotify_watches", "w").write("3")',
        f"""
        from reloader import _Inotify
        folders = [os.path.join({str(tmp_path)!r}, f"d{{i}}") for i in range(6)]
        source = _Inotify()
        calls = []
        add = source._add_watch
        source._add_watch = lambda *a: calls.append(a) or add(*a)
        failed = source.sync(folders)
        print(len(failed), len(calls))  # no try after the first ENOSPC
        # The three watched still work.
        watched = sorted(set(folders) - failed)
        open(os.path.join(watched[0], "x.py"), "w").close()
        import select
        assert select.select([source], [], [], 15)[0]
        print(os.path.join(watched[0], "x.py") in source.read())
        # Freeing one lets a failed one in, on the next different set.
        source.sync(watched[1:] + sorted(failed))
        print(len(source.sync(watched[1:] + sorted(failed))))
        """,
    )
    assert out.split() == ["3", "4", "True", "2"]


@linux_only
def test_the_instance_limit_raises_oserror(tmp_path):
    out = run_in_user_namespace(
        tmp_path,
        'open("/proc/sys/user/max_inotify_instances", "w").write("0")',
        """
        from reloader import _Inotify
        try:
            _Inotify()
        except OSError as e:
            print(e.errno)
        """,
    )
    assert out.strip() == str(errno.EMFILE)


# --- trust per mount ----------------------------------------------------------

SYNTHETIC = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:50 / /home/me/My\040Projects rw shared:5 master:3 - fuse.sshfs me@h: rw
41 27 0:51 / /mnt/c rw,noatime - 9p drvfs rw,aname=drvfs
42 27 0:52 / /work rw - nfs4 srv:/work rw
43 42 0:53 / /work rw - tmpfs tmpfs rw
44 27 0:54 / /odd\134name\011tab\012nl rw - xfs /dev/x rw
45 27 0:55 / /mnt/usb rw - fuseblk /dev/sdb1 rw
46 27 0:56 / /srv/share rw - cifs //nas/share rw
47 27 0:57 / /docker rw - virtiofs mount0 rw
48 27 0:58 / /overlay rw - overlay overlay rw,lowerdir=/a
this line is garbage
"""


def test_mountinfo_escapes_subtypes_and_order(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(SYNTHETIC)
    table = _mount_table(str(info))
    assert ("/home/me/My Projects", "fuse.sshfs") in table
    assert ("/odd\\name\ttab\nnl", "xfs") in table
    assert table[-1] == ("/", "ext4")
    lengths = [len(point) for point, _ in table]
    assert lengths == sorted(lengths, reverse=True)
    # Two mounts on /work: the later one, which hides the first, comes first.
    work = [kind for point, kind in table if point == "/work"]
    assert work == ["tmpfs", "nfs4"]
    assert len(table) == 11


@pytest.mark.parametrize(
    ("path", "trusted"),
    [
        ("/home/me/My Projects/app.py", False),
        ("/home/me/My Projects", False),
        ("/home/me/My Projectsx/app.py", True),  # a prefix is not a parent
        ("/mnt/c/Users/me/app.py", False),
        ("/work/app.py", True),  # tmpfs stacked over nfs4
        ("/odd\\name\ttab\nnl/a.py", True),
        ("/mnt/usb/a.py", False),
        ("/srv/share/a.py", False),
        ("/docker/a.py", False),
        ("/overlay/a.py", True),
        ("/proc/1/status", False),
        ("/usr/lib/python3/os.py", True),
    ],
)
def test_trust_follows_the_file_system_holding_the_path(tmp_path, path, trusted):
    info = tmp_path / "mountinfo"
    info.write_text(SYNTHETIC)
    assert _trusted(path, _mount_table(str(info))) is trusted


def test_trust_follows_symlinks_to_their_real_path(tmp_path):
    # A link on a trusted disk to a file on an untrusted one is untrusted.
    info = tmp_path / "mountinfo"
    info.write_text(
        f"1 0 0:1 / / rw - ext4 /dev/a rw\n2 1 0:2 / {tmp_path}/net rw - nfs s:/ rw\n"
    )
    table = _mount_table(str(info))
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "app.py").write_text("")
    os.symlink(tmp_path / "net" / "app.py", tmp_path / "app.py")
    assert not _trusted(str(tmp_path / "app.py"), table)
    assert _trusted(str(tmp_path / "local.py"), table)


def test_no_mount_table_trusts_nothing(tmp_path):
    assert _mount_table(str(tmp_path / "missing")) == []
    assert not _trusted("/", [])


@linux_only
def test_the_real_mount_table(tmp_path):
    table = _mount_table()
    assert ("/proc", "proc") in table
    assert any(point == "/" for point, _ in table)
    assert not _trusted("/proc/self/status", table)
    kind = next(k for p, k in table if p == "/")
    assert _trusted("/", table) is (
        kind in {"ext4", "xfs", "btrfs", "overlay", "tmpfs"}
    )


# --- kqueue, through a fake select module ------------------------------------


@dataclass
class FakeKEvent:
    ident: int
    filter: int = 0
    flags: int = 0
    fflags: int = 0


class FakeKqueue:
    """A simulated kqueue, behaving as the kernel's does for EVFILT_VNODE.

    A registration (EV_ADD) makes a knote for a descriptor, which must be
    open (else OSError EBADF, as kevent() fails); it remembers the inode the
    descriptor was open on. ``post(stat, fflags)`` is what the kernel does
    when that inode changes: every knote on it whose descriptor is still open
    on it and whose mask has one of ``fflags`` gets them OR-ed into its
    pending event (EV_CLEAR: one pending event per knote, flags merged).
    Closing the descriptor drops the knote, as in the kernel; one difference
    is known: a descriptor closed and opened again on the same inode with the
    same number, without a new registration, still counts as registered here
    (_Kqueue always registers right after opening).
    """

    def __init__(self, module: FakeSelect) -> None:
        self._module = module
        self._r, self._w = os.pipe()
        self.knotes: dict[
            int, tuple[int, int, int, int]
        ] = {}  # fd -> dev, ino, mask, flags
        self.pending: dict[int, int] = {}
        self.registrations = 0
        self.closed = False

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        if not self.closed:
            os.close(self._r)
            os.close(self._w)
            self.closed = True

    def control(self, changelist, maxevents, timeout=None):
        assert not self.closed
        m = self._module
        for change in changelist or ():
            assert change.filter == m.KQ_FILTER_VNODE
            assert change.flags & m.KQ_EV_ADD and change.flags & m.KQ_EV_CLEAR
            st = os.fstat(change.ident)  # EBADF for a closed descriptor
            self.registrations += 1
            self.knotes[change.ident] = (
                st.st_dev,
                st.st_ino,
                change.fflags,
                change.flags,
            )
        self._drop_closed()
        out = []
        for fd in list(self.pending)[:maxevents]:
            out.append(
                FakeKEvent(fd, m.KQ_FILTER_VNODE, m.KQ_EV_CLEAR, self.pending.pop(fd))
            )
        return out

    def live(self) -> dict[int, tuple[int, int, int, int]]:
        """The knotes the kernel would hold now."""
        self._drop_closed()
        return dict(self.knotes)

    def post(self, st: os.stat_result, fflags: int) -> None:
        self._drop_closed()
        for fd, (dev, ino, mask, _flags) in self.knotes.items():
            if (dev, ino) == (st.st_dev, st.st_ino) and fflags & mask:
                self.pending[fd] = self.pending.get(fd, 0) | (fflags & mask)

    def _drop_closed(self) -> None:
        for fd, (dev, ino, _mask, _flags) in list(self.knotes.items()):
            try:
                st = os.fstat(fd)
            except OSError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != (dev, ino):
                del self.knotes[fd]
                self.pending.pop(fd, None)


class FakeSelect:
    """The part of ``select`` that _Kqueue uses, with macOS's constant values."""

    KQ_FILTER_VNODE = -4
    KQ_EV_ADD = 0x1
    KQ_EV_CLEAR = 0x20
    KQ_EV_ERROR = 0x4000
    KQ_NOTE_DELETE = 0x1
    KQ_NOTE_WRITE = 0x2
    KQ_NOTE_EXTEND = 0x4
    KQ_NOTE_ATTRIB = 0x8
    KQ_NOTE_RENAME = 0x20
    KQ_NOTE_REVOKE = 0x40
    kevent = FakeKEvent

    def __init__(self) -> None:
        self.queues: list[FakeKqueue] = []

    def kqueue(self) -> FakeKqueue:
        self.queues.append(FakeKqueue(self))
        return self.queues[-1]


@pytest.fixture
def kq():
    fake = FakeSelect()
    source = _Kqueue(select_module=fake, limit=64)
    yield source, fake.queues[0], fake
    source.close()


def test_kqueue_watches_files_and_folders_with_the_right_filter(kq, folder):
    source, queue, m = kq
    path = os.path.join(folder, "views.py")
    assert source.sync([folder, path]) == set()
    assert len(queue.live()) == 2
    for fd, (_dev, _ino, mask, flags) in queue.live().items():
        assert not os.get_inheritable(fd)
        assert mask == (
            m.KQ_NOTE_WRITE
            | m.KQ_NOTE_DELETE
            | m.KQ_NOTE_EXTEND
            | m.KQ_NOTE_ATTRIB
            | m.KQ_NOTE_RENAME
            | m.KQ_NOTE_REVOKE
        )
        assert flags == m.KQ_EV_ADD | m.KQ_EV_CLEAR
    assert source.read() == set()
    save_in_place(path)
    queue.post(os.stat(path), m.KQ_NOTE_WRITE | m.KQ_NOTE_EXTEND)
    queue.post(os.stat(path), m.KQ_NOTE_ATTRIB)  # merged into one event
    assert source.read() == {path}
    assert source.read() == set()


def test_kqueue_a_file_renamed_over_is_named_and_watched_again(kq, folder):
    source, queue, m = kq
    path = os.path.join(folder, "views.py")
    source.sync([folder, path])
    old = os.stat(path)
    save_by_rename(path)
    # What the kernel reports: the old inode lost its name, the folder changed.
    queue.post(old, m.KQ_NOTE_DELETE)
    queue.post(os.stat(folder), m.KQ_NOTE_WRITE)
    assert source.read() == {path, folder}
    assert len(queue.live()) == 1  # the old file's descriptor was closed
    before = queue.registrations
    assert source.sync([folder, path]) == set()  # re-added, on the new inode
    assert queue.registrations == before + 1
    save_in_place(path)
    queue.post(os.stat(path), m.KQ_NOTE_WRITE)
    assert source.read() == {path}


def test_kqueue_a_deleted_file_is_returned_as_not_watched(kq, folder):
    source, queue, m = kq
    path = os.path.join(folder, "views.py")
    source.sync([folder, path])
    st = os.stat(path)
    os.unlink(path)
    queue.post(st, m.KQ_NOTE_DELETE)
    assert source.read() == {path}
    assert source.sync([folder, path]) == {path}  # gone: polled for its return


def test_kqueue_sync_unchanged_opens_nothing_and_removal_closes(kq, folder, tmp_path):
    source, queue, _m = kq
    paths = [folder]
    for i in range(10):
        p = tmp_path / f"f{i}.py"
        p.write_text("")
        paths.append(str(p))
    missing = str(tmp_path / "missing.py")
    assert source.sync([*paths, missing]) == {missing}
    fds = dict(queue.live())
    assert source.sync([*paths, missing]) == {missing}
    assert queue.live() == fds and queue.registrations == 11
    source.sync(paths[:5])
    assert len(queue.live()) == 5  # the others' descriptors were closed


def test_kqueue_caps_descriptors_in_the_order_given(folder, tmp_path):
    fake = FakeSelect()
    source = _Kqueue(select_module=fake, limit=3)
    paths = []
    for i in range(5):
        p = tmp_path / f"f{i}.py"
        p.write_text("")
        paths.append(str(p))
    assert source.sync(paths) == set(paths[3:])
    assert len(fake.queues[0].live()) == 3
    source.close()
    assert fake.queues[0].live() == {}
    assert fake.queues[0].closed


def test_kqueue_default_budget_is_a_quarter_of_the_soft_limit():
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fake = FakeSelect()
    source = _Kqueue(select_module=fake)
    try:
        expected = 1024 if soft == resource.RLIM_INFINITY else min(soft // 4, 1024)
        assert source._limit == expected
    finally:
        source.close()


def test_kqueue_is_unavailable_on_linux():
    if hasattr(select, "kqueue"):
        pytest.skip("this platform has kqueue")
    with pytest.raises(OSError):
        _Kqueue()


# --- macOS trust, statfs parsed from a buffer laid out as <sys/mount.h> says --


def darwin_statfs(kind: bytes, point: bytes, flags: int) -> bytes:
    """A macOS ``struct statfs`` (64-bit inodes) as statfs(2) would fill it."""
    return struct.pack(
        "<Ii5Q2iIIII16s1024s1024sI7I",
        4096, 1 << 20, 1, 2, 3, 4, 5, 7, 8, 501, 0x1A, flags, 1,
        kind, point, b"/dev/disk3s5", 0, *([0] * 7),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "point", "flags", "path", "trusted"),
    [
        (
            b"apfs",
            b"/System/Volumes/Data",
            0x1000 | 0x1,
            "/System/Volumes/Data/u/a.py",
            True,
        ),
        (b"apfs", b"/", 0x1000, "/Users/me/app.py", True),
        (b"hfs", b"/Volumes/Ext", 0x1000, "/Volumes/Ext/a.py", True),
        (b"smbfs", b"/Volumes/share", 0x0, "/Volumes/share/a.py", False),
        (b"nfs", b"/net/srv", 0x1000, "/net/srv/a.py", False),  # flag set, type not
        (b"apfs", b"/Volumes/img", 0x0, "/Volumes/img/a.py", False),  # not MNT_LOCAL
        (b"apfs", b"/Volumes/Other", 0x1000, "/Users/me/a.py", False),  # wrong mount
        (b"apfs", b"/Volumes/Ext", 0x1000, "/Volumes/Ext2/a.py", False),
    ],
)
def test_statfs_buffer_says_local(kind, point, flags, path, trusted):
    raw = darwin_statfs(kind, point, flags)
    assert len(raw) == 2168  # sizeof(struct statfs) on macOS
    assert _statfs_says_local(raw, path) is trusted


def test_darwin_trust_is_false_elsewhere():
    if sys.platform == "darwin":
        pytest.skip("this is a Mac")
    assert _trusted_darwin("/") is False


@linux_only
def test_twenty_sources_opened_and_closed_leak_no_descriptor(folder):
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(20):
        source = _Inotify()
        source.sync([folder])
        save_in_place(os.path.join(folder, "views.py"))
        collect(source, {os.path.join(folder, "views.py")})
        source.close()
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_kqueue_close_leaks_no_descriptor(folder):
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(20):
        source = _Kqueue(select_module=FakeSelect(), limit=8)
        source.sync([folder, os.path.join(folder, "views.py")])
        source.close()
    assert sorted(os.listdir("/proc/self/fd")) == before


@linux_only
def test_an_unmounted_folder_loses_track(tmp_path):
    # A mount namespace of our own (inside a user namespace) can mount and
    # unmount a tmpfs without touching the machine's mounts.
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the root
    code = textwrap.dedent(
        f"""
        import os, select, subprocess, sys
        sys.path.insert(0, {here!r})
        from reloader import _Inotify
        subprocess.run(["mount", "-t", "tmpfs", "none", {str(mnt)!r}], check=True)
        source = _Inotify()
        print(sorted(source.sync([{str(mnt)!r}])))
        subprocess.run(["umount", {str(mnt)!r}], check=True)
        assert select.select([source], [], [], 15)[0]
        print(source.read())
        print(sorted(source.sync([{str(mnt)!r}])))  # the folder under it, again
        """
    )
    out = subprocess.run(
        ["unshare", "-U", "-r", "-m", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0 and "unshare" in out.stderr:
        pytest.skip(f"no mount namespace here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["[]", "None", "[]"]
