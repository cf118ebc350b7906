"""watch(folder): every file under it, new ones included, and nothing else.

The program watches ``data/`` and prints every file under it with its
contents, so each run shows what it saw. See ``test_changes.py`` for the
helpers and for how a test proves that nothing restarted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import pytest
from conftest import write
from test_changes import OLD_NS, WHEN, log, program, runs, spawn_and_change, wait_scans


@pytest.fixture
def spawn(polling_spawn):
    """These tests count scans: see conftest.polling_spawn."""
    return polling_spawn


FOLDER_PROGRAM = """
def listing(top):
    found = []
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                text = "?"
            found.append("%s=%s" % (os.path.relpath(path, top), text))
    return " ".join(found)

WATCHED = os.path.join(HERE, WATCHED)
print("files: " + listing(WATCHED))
reloader.watch(WATCHED)
gate()
reloader.start(check_time=50)
"""


def folder_program(tmp_path: Path, watched: str = "data") -> Path:
    return program(tmp_path, f"WATCHED = {watched!r}\n" + FOLDER_PROGRAM)


def make_old(*paths: Path) -> None:
    """Date files an hour back, as ``mv`` keeps the time of an old file."""
    for path in paths:
        os.utime(path, ns=(OLD_NS, OLD_NS))


# ---------------------------------------------------------------------------
# Edits, new files and new folders anywhere under the folder.


# Each prepares, before the program starts, and returns the change to make:
# it returns the pattern of the file named in the restart's log line, and
# what the next run lists. What is moved in is old in every way (mtime and
# ctime): only the move itself happens while the program runs.

Change = Callable[[], tuple[str, str]]


def edit_nested(tmp_path: Path) -> Change:
    def change():
        write(tmp_path / "data" / "sub" / "deep" / "x.txt", "x, edited")
        return r"sub/deep/x\.txt", "a.txt=a sub/deep/x.txt=x, edited"

    return change


def new_file(tmp_path: Path) -> Change:
    def change():
        write(tmp_path / "data" / "new.txt", "new")
        return r"new\.txt", "a.txt=a new.txt=new sub/deep/x.txt=x"

    return change


def new_file_in_new_folders(tmp_path: Path) -> Change:
    def change():
        write(tmp_path / "data" / "sub" / "new" / "er" / "n.txt", "new")
        return r"sub/new/er/n\.txt", "a.txt=a sub/deep/x.txt=x sub/new/er/n.txt=new"

    return change


def moved_in_old_file(tmp_path: Path) -> Change:
    old = write(tmp_path / "elsewhere" / "old.txt", "old")
    make_old(old)

    def change():
        os.rename(old, tmp_path / "data" / "sub" / "old.txt")
        return r"sub/old\.txt", "a.txt=a sub/old.txt=old sub/deep/x.txt=x"

    return change


def moved_in_old_folder(tmp_path: Path) -> Change:
    files = [
        write(tmp_path / "elsewhere" / "pkg" / "a.txt", "old a"),
        write(tmp_path / "elsewhere" / "pkg" / "b" / "c.txt", "old c"),
    ]
    make_old(*files, *(file.parent for file in files))

    def change():
        os.rename(tmp_path / "elsewhere" / "pkg", tmp_path / "data" / "sub" / "pkg")
        return (
            r"sub/pkg/(a|b/c)\.txt and 1 other file",
            "a.txt=a sub/deep/x.txt=x sub/pkg/a.txt=old a sub/pkg/b/c.txt=old c",
        )

    return change


@pytest.mark.parametrize(
    "change",
    [
        edit_nested,
        new_file,
        new_file_in_new_folders,
        moved_in_old_file,
        moved_in_old_folder,
    ],
    ids=lambda change: change.__name__,
)
@pytest.mark.parametrize("when", WHEN)
def test_change_under_a_watched_folder_restarts(spawn, tmp_path, change, when):
    write(tmp_path / "data" / "a.txt", "a")
    write(tmp_path / "data" / "sub" / "deep" / "x.txt", "x")
    make_old(tmp_path / "data" / "a.txt", tmp_path / "data" / "sub" / "deep" / "x.txt")
    app = folder_program(tmp_path)
    child, (changed, listing) = spawn_and_change(spawn, app, when, change(tmp_path))
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)  # no second restart
    lines = log(child).splitlines()
    assert lines[:2] == ["files: a.txt=a sub/deep/x.txt=x", "ready run=1"]
    # A file new in a folder listed before is "created"; on first sight, or
    # for an edit, the watcher knows only that it changed after the start.
    # A folder moved in is known new by its stamps even on first sight.
    new = when == "after_scans" or change is moved_in_old_folder
    verb = "created" if new and change is not edit_nested else "modified"
    assert re.fullmatch(f"reloader: data/{changed} {verb}; restarting", lines[2])
    assert lines[3:] == [f"files: {listing}", "ready run=2"]


# ---------------------------------------------------------------------------
# What is ignored.

IGNORED_DIRS = [
    "__pycache__",
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
]
# Editors' swap, backup, auto-save and safe-write files (vim, emacs,
# JetBrains), the macOS Finder's, and vim's writability probe (below).
IGNORED_FILES = [
    "{}.py.swp",
    ".{}.py.swo",
    "{}.py.swx",
    "{}.py~",
    ".#{}.py",
    "#{}.py#",
    "{}.py___jb_tmp___",
    "{}.py___jb_old___",
    ".DS_Store",
]


def ignored_paths(top: Path, tag: str) -> list[Path]:
    """Ignored files in ``top`` and in its subfolder, names tagged ``tag``."""
    paths = []
    for folder in (top, top / "sub"):
        paths += [folder / name / f"{tag}.txt" for name in IGNORED_DIRS]
        paths += [folder / name / "deep" / f"{tag}.txt" for name in IGNORED_DIRS]
        paths += [folder / name.format(tag) for name in IGNORED_FILES]
    paths.append((top if tag == "old" else top / "sub") / "4913")
    # A virtual environment, known by its pyvenv.cfg, at any depth.
    paths.append(top / "venv" / tag / "lib" / "site.py")
    return paths


def test_ignored_names_never_restart(spawn, tmp_path):
    data = tmp_path / "data"
    write(data / "real.txt", "real")
    write(data / "sub" / "real.txt", "real")
    write(data / "venv" / "old" / "pyvenv.cfg", "home = /usr")
    write(data / "venv" / "new" / "pyvenv.cfg", "home = /usr")
    existing = [write(path, "old") for path in ignored_paths(data, "old")]
    child = spawn(folder_program(tmp_path))
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, tmp_path, count=2)
    for path in existing:
        write(path, "edited")
    for path in ignored_paths(data, "new"):
        write(path, "new")
    wait_scans(child, tmp_path)
    assert runs(child) == 1
    write(data / "sub" / "real.txt", "a real edit")
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    assert runs(child) == 2
    lines = log(child).splitlines()
    assert lines[1:3] == [
        "ready run=1",
        "reloader: data/sub/real.txt modified; restarting",
    ]
    assert " sub/real.txt=a real edit" in lines[3]
    assert lines[4:] == ["ready run=2"]


# ---------------------------------------------------------------------------
# Symbolic links that loop.


def test_symlink_loops_do_not_hang_the_scan(spawn, tmp_path):
    data = tmp_path / "data"
    write(data / "sub" / "x.txt", "x")
    os.symlink("..", data / "sub" / "up")  # the folder's parent
    os.symlink(".", data / "here")  # the folder itself
    os.symlink("knot", data / "knot")  # a link to itself: stat fails
    child = spawn(folder_program(tmp_path))
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, tmp_path, count=3)  # scans end
    write(data / "sub" / "x.txt", "x, edited")
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    assert log(child) == (
        "files: knot=? sub/x.txt=x\n"
        "ready run=1\n"
        "reloader: data/sub/x.txt modified; restarting\n"
        "files: knot=? sub/x.txt=x, edited\n"
        "ready run=2\n"
    )


# ---------------------------------------------------------------------------
# A path that does not exist yet.


def make_folder(tmp_path: Path) -> Callable[[], None]:
    def change():
        # Built aside and moved in whole: it appears with its file at once.
        write(tmp_path / "elsewhere" / "later" / "sub" / "f.txt", "new")
        os.rename(tmp_path / "elsewhere" / "later", tmp_path / "later")

    return change


def move_in_old_folder(tmp_path: Path) -> Callable[[], None]:
    file = write(tmp_path / "elsewhere" / "later" / "sub" / "f.txt", "new")
    make_old(file, file.parent, file.parent.parent)
    return lambda: os.rename(tmp_path / "elsewhere" / "later", tmp_path / "later")


@pytest.mark.parametrize(
    "appear", [make_folder, move_in_old_folder], ids=lambda f: f.__name__
)
def test_folder_that_does_not_exist_yet_is_watched_for(spawn, tmp_path, appear):
    change = appear(tmp_path)
    child = spawn(folder_program(tmp_path, watched="later"))
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, tmp_path, count=2)
    change()
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    assert log(child) == (
        "files: \n"
        "ready run=1\n"
        "reloader: later created; restarting\n"
        "files: sub/f.txt=new\n"
        "ready run=2\n"
    )


def test_file_that_does_not_exist_yet_is_watched_for(spawn, tmp_path):
    old = write(tmp_path / "elsewhere" / "later.txt", "old")
    make_old(old)
    app = program(
        tmp_path,
        """
        LATER = os.path.join(HERE, "data", "later.txt")
        print("exists=%s" % os.path.exists(LATER))
        reloader.watch(LATER)
        reloader.start(check_time=50)
        """,
    )
    child = spawn(app)
    child.wait_for(r"^ready run=1 ")
    wait_scans(child, tmp_path, count=2)
    os.makedirs(tmp_path / "data")
    os.rename(old, tmp_path / "data" / "later.txt")
    child.wait_for(r"^ready run=2 ")
    wait_scans(child, tmp_path)
    assert log(child) == (
        "exists=False\n"
        "ready run=1\n"
        "reloader: data/later.txt created; restarting\n"
        "exists=True\n"
        "ready run=2\n"
    )
