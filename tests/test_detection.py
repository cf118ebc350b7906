"""Change detection that stays right under load, on coarse clocks, by rules.

Edits that keep mtime, size and inode; file systems that stamp whole
seconds (a real one, loop-mounted, where the machine allows it); the
reference time under CPU load; ``ignore()`` and ``--ignore``; the guard
against a program that rewrites a watched file at every start; trees of any
depth. See ``test_changes.py`` for the helpers and for how a test proves
that nothing restarted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RELOADER, ready_code, write
from test_changes import log, program, runs, value, wait_scans, write_old


@pytest.fixture
def spawn(polling_spawn):
    """These tests count scans: see conftest.polling_spawn."""
    return polling_spawn


# ---------------------------------------------------------------------------
# Edits that keep mtime, size and inode: only the ctime (and the content)
# tells. Each edits a file dated an hour back, in place, to the same size.


def utime_back(path: Path) -> str:
    old = path.stat()
    path.write_bytes(value("B").encode())
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    return "B"


def cp_p(path: Path) -> str:
    # cp -p of a file carrying the same fixed date (reproducible builds,
    # SOURCE_DATE_EPOCH archives): cp writes in place and copies the date.
    source = path.with_name("source.txt")
    source.write_bytes(value("C").encode())
    old = path.stat()
    os.utime(source, ns=(old.st_atime_ns, old.st_mtime_ns))
    subprocess.run(["cp", "-p", str(source), str(path)], check=True)
    return "C"


def touch_d(path: Path) -> str:
    # touch -d to the fixed date the file already had (a whole second).
    seconds = path.stat().st_mtime_ns // 10**9
    path.write_bytes(value("D").encode())
    subprocess.run(["touch", "-d", f"@{seconds}", str(path)], check=True)
    return "D"


KEEPS_ALL_THREE = """
import mod

print("mod=" + mod.VALUE, flush=True)
reloader.start(check_time=50)
"""


def with_bytecode(tmp_path: Path) -> dict[str, str | None]:
    """The environment of a child that writes byte code, as users' Pythons do.

    Python takes a cached .pyc as current while the source keeps its mtime
    (whole seconds) and size, so these edits would restart into the old
    code if reloader left the cache as it was.
    """
    return {
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc"),
    }


def cached(tmp_path: Path, name: str) -> list[Path]:
    return list((tmp_path / "pyc").rglob(f"{name}.*.pyc"))


@pytest.mark.parametrize("edit", [utime_back, cp_p, touch_d], ids=lambda f: f.__name__)
def test_edit_keeping_mtime_size_and_inode_restarts(spawn, tmp_path, edit):
    mod = write_old(tmp_path / "mod.py", value("A"))
    fixed = mod.stat().st_mtime_ns // 10**9 * 10**9  # a fixed date, as archives have
    os.utime(mod, ns=(fixed, fixed))
    child = spawn(program(tmp_path, KEEPS_ALL_THREE), env=with_bytecode(tmp_path))
    child.wait_for(r"^ready run=1 ")
    assert cached(tmp_path, "mod"), "the first run wrote no byte code for mod.py"
    wait_scans(child, tmp_path, count=2)
    # Past the racy window (2 s from its last stamp, the ctime of the write
    # above), content is no longer compared: only the ctime can tell.
    deadline = time.monotonic() + 20
    while time.time_ns() - mod.stat().st_ctime_ns < 3 * 10**9:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    wait_scans(child, tmp_path, count=2)
    before = mod.stat()
    new_value = edit(mod)
    after = mod.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (
        before.st_mtime_ns,
        before.st_size,
        before.st_ino,
    )
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    assert log(child) == (
        "mod=A\n"
        "ready run=1\n"
        "reloader: mod.py modified; restarting\n"
        f"mod={new_value}\n"
        "ready run=2\n"
    )


# ---------------------------------------------------------------------------
# A file system whose timestamps tick every second: ext4 with 128-byte
# inodes, loop-mounted, where this machine lets the test mount one.


@pytest.fixture
def coarse_folder(tmp_path):
    """A folder on a real one-second-timestamp file system, or skip."""
    tools = [shutil.which("mkfs.ext4"), shutil.which("mount"), shutil.which("umount")]
    if sys.platform != "linux" or os.geteuid() != 0 or None in tools:
        pytest.skip("needs root and mkfs.ext4 to loop-mount a coarse file system")
    image, mount = tmp_path / "coarse.img", tmp_path / "coarse"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    made = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-I", "128", str(image)], capture_output=True
    )
    mounted = made.returncode == 0 and (
        subprocess.run(["mount", "-o", "loop", str(image), str(mount)]).returncode == 0
    )
    if not mounted:
        pytest.skip(f"cannot loop-mount ext4 here: {made.stderr!r}")
    try:
        probe = write(mount / "probe", "probe")
        assert probe.stat().st_mtime_ns % 10**9 == 0, "timestamps are not coarse"
        probe.unlink()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


COARSE_PROGRAM = """
import mod

print("mod=" + mod.VALUE, flush=True)
if RUN == 2 and os.environ.get("TEST_GATE"):
    # Stands for a slow import: the test edits while the new run waits here.
    print("gate", flush=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(HERE, "go")) and time.monotonic() < deadline:
        time.sleep(0.005)
reloader.start(check_time=50)
"""


def same_size_edit(path: Path, text: str) -> None:
    old = path.read_bytes()
    new = value(text).encode()
    assert len(new) == len(old) and new != old
    path.write_bytes(new)


@pytest.mark.parametrize("when", ["after_the_restart", "while_it_imports"])
def test_same_second_edit_on_a_coarse_file_system_restarts(spawn, coarse_folder, when):
    mod = write(coarse_folder / "mod.py", value("A"))
    gated = when == "while_it_imports"
    app = program(coarse_folder, COARSE_PROGRAM)
    env = {"TEST_GATE": "1" if gated else "", **with_bytecode(coarse_folder)}
    child = spawn(app, cwd=coarse_folder, env=env)
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, coarse_folder, count=2)
    write(mod, value("B, longer"))  # a plain edit: restarts
    if gated:
        child.wait_for(r"^gate$")
    else:
        child.wait_for(r"^ready run=2 ")
    same_size_edit(mod, "C, longer")  # most likely within the same second
    if gated:
        write(coarse_folder / "go", "")
    child.wait_for(r"^ready run=3 ")
    wait_scans(child, coarse_folder)
    assert log(child).endswith(
        "reloader: mod.py modified; restarting\nmod=C, longer\nready run=3\n"
    )
    assert runs(child) == 3


# ---------------------------------------------------------------------------
# Files written just before the launch never restart it, whatever the load.

JUST_BEFORE = """
import os
import sys
import threading
import time

import reloader

import mod

reloader.add_reload_hook(lambda: print("RESTART", flush=True))
reloader.watch(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
real_stat = os.stat
scans = [0]
me = os.path.abspath(__file__)

def stat(path, *args, **kwargs):
    if path == me and threading.current_thread().name == "reloader":
        scans[0] += 1
    return real_stat(path, *args, **kwargs)

os.stat = stat
reloader.start(check_time=20)
deadline = time.monotonic() + 20
while scans[0] < 4 and time.monotonic() < deadline:
    time.sleep(0.01)
print("scans", scans[0] >= 4, flush=True)
"""


@pytest.fixture
def cpu_load():
    """Two processes that burn a core each for as long as the test runs."""
    burners = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time\nend = time.time() + 120\nwhile time.time() < end: pass",
            ]
        )
        for _ in range(2)
    ]
    yield
    for burner in burners:
        burner.kill()
        burner.wait()


def test_files_written_just_before_the_launch_never_restart_under_load(
    tmp_path, cpu_load
):
    # 14 launches in 700 restarted here under load while the reference time
    # mixed two clocks read apart: each launch is a fresh try at that race.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELOADER_")}
    env["PYTHONPATH"] = str(RELOADER.parent)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["RELOADER_POLL"] = "1"  # scans every check_time: see JUST_BEFORE
    for attempt in range(24):
        folder = tmp_path / f"try{attempt}"
        app = write(folder / "app.py", JUST_BEFORE)
        write(folder / "mod.py", value("A"))
        write(folder / "data" / "x.txt", "x")
        result = subprocess.run(
            [sys.executable, str(app)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout == "scans True\n", (attempt, result.stdout, result.stderr)


# ---------------------------------------------------------------------------
# ignore() and --ignore.

IGNORING = """
DATA = os.path.join(HERE, "data")
for pattern in IGNORE:
    reloader.ignore(pattern)
reloader.watch(DATA)
import mod
print("mod=" + mod.VALUE, flush=True)
reloader.start(check_time=50)
"""


def test_ignored_patterns_never_restart_and_ignored_folders_are_not_walked(
    spawn, tmp_path
):
    data = tmp_path / "data"
    write(data / "app.log", "old log")
    write(data / "cache" / "deep" / "x.bin", "old cache")
    write(data / "build" / "out.txt", "old build")
    write(data / "keep.txt", "keep")
    write(tmp_path / "mod.py", value("A"))
    write(tmp_path / "generated.py", "")
    patterns = ["*.log", "cache", "data/build/*", "generated.py"]
    body = f"IGNORE = {patterns!r}\nimport generated\n" + IGNORING + STAT_SPY
    child = spawn(program(tmp_path, body))
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, tmp_path, count=2)
    write(data / "app.log", "a new log line")
    write(data / "new.log", "a new log")
    write(data / "cache" / "deep" / "x.bin", "new cache data")
    write(data / "cache" / "y.bin", "new cache file")
    write(data / "build" / "out.txt", "new build output")
    write(tmp_path / "generated.py", "# generated again\n")
    wait_scans(child, tmp_path)
    assert runs(child) == 1
    write(data / "keep.txt", "kept, edited")
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    assert log(child).splitlines()[-3:] == [
        "reloader: data/keep.txt modified; restarting",
        "mod=A",
        "ready run=2",
    ]
    spied = (tmp_path / ".stats").read_text().split("\n")
    assert [line for line in spied if "/cache" in line] == []


# Records, in .stats, every path the watcher thread stats or lists.
STAT_SPY = """
import threading
_real_stat, _real_scandir = os.stat, os.scandir
_spied = open(os.path.join(HERE, ".stats"), "a")

def _spy(real):
    def call(path, *args, **kwargs):
        if threading.current_thread().name == "reloader":
            _spied.write(os.fspath(path) + "\\n")
            _spied.flush()
        return real(path, *args, **kwargs)
    return call

os.stat, os.scandir = _spy(_real_stat), _spy(_real_scandir)
"""


def test_ignore_rejects_what_is_no_pattern():
    import reloader

    with pytest.raises(TypeError):
        reloader.ignore(b"*.log")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        reloader.ignore("")


def test_ignore_option_of_the_command_line(spawn, tmp_path):
    data = tmp_path / "data"
    write(data / "db.sqlite", "old")
    write(data / "keep.txt", "keep")
    app = write(
        tmp_path / "app.py",
        "import time\n" + ready_code() + "time.sleep(600)\n",
    )
    child = spawn(
        RELOADER, "--watch", data, "--ignore", "*.sqlite", "--ignore=*.tmp", app
    )
    child.wait_for(r"^ready run=1 ")
    write(data / "db.sqlite", "written by the program")
    write(data / "x.tmp", "scratch")
    write(data / "keep.txt", "keep, edited")
    child.wait_for(r"^ready run=2 ")
    assert "keep.txt modified; restarting" in child.output()
    assert "sqlite" not in child.output() and "x.tmp" not in child.output()


# ---------------------------------------------------------------------------
# The restart-loop guard: a program that writes a watched file as it starts.

WRITES_AT_START = (
    """
import os
import time
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "app.log"), "a") as f:
    f.write("started\\n")
"""
    + ready_code()
    + """
time.sleep(600)
"""
)


def test_file_written_at_every_start_stops_counting_after_a_few_restarts(
    spawn, tmp_path
):
    data = tmp_path / "data"
    write(data / "app.log", "")
    app = write(tmp_path / "app.py", WRITES_AT_START)
    child = spawn(RELOADER, "--watch", data, app)
    said = "not counting its changes at start any more"
    child.wait_for(said, timeout=30)
    warned = child.output()
    assert warned.count(said) == 1
    assert "data/app.log" in warned.split(said)[0].splitlines()[-1]
    assert "--ignore" in warned.split(said)[1].splitlines()[0]
    settled = runs(child)
    assert settled <= 5
    # Everything else is still watched, and the guard holds across restarts.
    write(app, WRITES_AT_START + "# a real edit\n")
    child.wait_for(rf"^ready run={settled + 1} ")
    write(data / "other.txt", "an edit of another file in the folder")
    child.wait_for(rf"^ready run={settled + 2} ")
    assert child.output().count(said) <= 3  # once per run at the most
    # An edit of the muted file well after the start is the user's: it
    # counts, and the program's own write at the next start stays muted.
    time.sleep(6)  # past _EARLY_NS (5 s) from this run's start
    with open(data / "app.log", "a") as f:
        f.write("edited by the user\n")
    child.wait_for(rf"^ready run={settled + 3} ")
    write(data / "other.txt", "a second edit of another file")
    child.wait_for(rf"^ready run={settled + 4} ")
    restarts = re.findall(r"\S+ modified; restarting", child.output())
    assert restarts[-2:] == [
        "data/app.log modified; restarting",
        "data/other.txt modified; restarting",
    ]


# ---------------------------------------------------------------------------
# Trees of any depth, and the error of one folder.


@pytest.fixture
def deep_folder(tmp_path):
    """``data/d/d/.../d``, 1,100 deep; removed bottom up (rmtree recurses)."""
    folders = [str(tmp_path / "data")]
    for _ in range(1100):  # os.makedirs and pathlib recurse too: one at a time
        folders.append(os.path.join(folders[-1], "d"))
    for folder in folders:
        os.mkdir(folder)
    yield Path(folders[-1])
    for name in os.listdir(folders[-1]):
        os.unlink(os.path.join(folders[-1], name))
    for folder in reversed(folders):
        os.rmdir(folder)


def test_a_very_deep_tree_is_watched(spawn, tmp_path, deep_folder):
    deep = deep_folder
    (deep / "x.txt").write_text("x")
    write(tmp_path / "mod.py", value("A"))
    body = 'reloader.watch(os.path.join(HERE, "data"))\nimport mod\n'
    body += 'print("mod=" + mod.VALUE, flush=True)\nreloader.start(check_time=50)\n'
    child = spawn(program(tmp_path, body))
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, tmp_path, count=2)
    write(deep / "x.txt", "x, edited at the bottom")
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    write(tmp_path / "mod.py", value("B, an imported module"))
    child.wait_for(r"^ready run=3 ")
    output = child.output()
    assert "RecursionError" not in output and "Traceback" not in output
    assert output.count("x.txt modified; restarting") == 1
    assert "mod.py modified; restarting" in output


# ---------------------------------------------------------------------------
# python -m reloader -m pkg.mod when pkg itself fails to import.


def test_import_error_inside_the_package_is_shown_as_it_is(spawn, tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "import missing_dependency\n")
    write(tmp_path / "pkg" / "mod.py", "print('running')\n")
    child = spawn(RELOADER, "-m", "pkg.mod")
    child.wait_for(r"No module named 'missing_dependency'")
    output = child.output()
    assert "no module named 'pkg.mod'" not in output
    assert "pkg/__init__.py" in output  # the traceback, and the file watched
    write(tmp_path / "pkg" / "__init__.py", "")
    child.wait_for(r"^running$")
