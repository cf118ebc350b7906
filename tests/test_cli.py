"""The command line, ``python -m reloader`` (SPEC.md, "The command line").

Every test runs the real wrapper as a child process on a real program in
``tmp_path`` and edits real files; the wrapper really re-executes itself.
Where standard output and standard error must be told apart, ``split`` runs
the wrapper with each in its own file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Callable

import pytest
from conftest import RELOADER, child_env, ready_code, write

WRAPPER = ("-m", "reloader", "--check-time", "50")
HAS_PROC = os.path.exists("/proc/self/cmdline")


def source(text: str) -> str:
    """Dedent ``text``; a line ``READY`` becomes the ready_code() handshake."""
    return textwrap.dedent(text).replace("READY\n", ready_code())


def cmdline(pid: int) -> list[str]:
    """The command line of a running process, as the kernel shows it."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.decode().split("\0")[:-1]


# ---------------------------------------------------------------------------
# A child whose standard output and standard error go to separate files, to
# check that the wrapper writes nothing on standard output.


class Split:
    """A child process with stdout and stderr in two files."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], stem: Path):
        self.argv = argv
        self.out_path = stem.with_suffix(".out")
        self.err_path = stem.with_suffix(".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def out(self) -> str:
        return self.out_path.read_text("utf-8", errors="replace")

    def err(self) -> str:
        return self.err_path.read_text("utf-8", errors="replace")

    def report(self, headline: str) -> str:
        return (
            f"{headline}\nexit code: {self.proc.poll()}\nargv: {self.argv}\n"
            f"----- stdout -----\n{self.out()}----- stderr -----\n{self.err()}"
            "----- end -----"
        )

    def wait_for(self, pattern: str, stream: str = "err", timeout: float = 15) -> None:
        """Wait until ``pattern`` (a multi-line regex) matches ``stream``."""
        regex = re.compile(pattern, re.MULTILINE)
        read = self.err if stream == "err" else self.out
        deadline = time.monotonic() + timeout
        while True:
            status = self.proc.poll()  # before reading: the read is final
            if regex.search(read()):
                return
            if status is not None or time.monotonic() > deadline:
                raise AssertionError(self.report(f"std{stream}: no {pattern!r}"))
            time.sleep(0.05)

    def finish(self, timeout: float = 15) -> tuple[int, str, str]:
        """Wait for the exit; return the status, stdout and stderr."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(self.report("still running")) from None
        return status, self.out(), self.err()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group has already exited
        self.proc.wait(15)


SplitFactory = Callable[..., Split]


@pytest.fixture
def split(tmp_path: Path) -> Iterator[SplitFactory]:
    started: list[Split] = []

    def start(*args: str, env: Mapping[str, str | None] | None = None) -> Split:
        stem = tmp_path / f"split-{len(started) + 1}"
        argv = [sys.executable, *args]
        child = Split(argv, tmp_path, child_env(env), stem)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


# ---------------------------------------------------------------------------
# Running the program as python would.

PROBE = """\
import sys
spec = globals().get("__spec__")
print("argv=%r" % (sys.argv,))
print("path0=%r" % (sys.path[0],))
print("name=%r spec=%r" % (__name__, getattr(spec, "name", None)))
print("file=%r package=%r" % (globals().get("__file__"), globals().get("__package__")))
"""


def make_zip(path: Path, files: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)


LAUNCHES = {
    "script": ({"prog.py": PROBE}, ["prog.py"]),
    "script in a folder": ({"bin/prog.py": PROBE}, ["bin/prog.py"]),
    "module": ({"pkg/__init__.py": "", "pkg/mod.py": PROBE}, ["-m", "pkg.mod"]),
    "package": ({"pkg/__init__.py": "", "pkg/__main__.py": PROBE}, ["-m", "pkg"]),
    "folder": ({"app/__main__.py": PROBE}, ["app"]),
    "zip": ({}, ["app.zip"]),
}


@pytest.mark.parametrize("launch", LAUNCHES)
def test_program_runs_as_python_runs_it(split, tmp_path, launch):
    files, target = LAUNCHES[launch]
    for name, text in files.items():
        write(tmp_path / name, text)
    if launch == "zip":
        make_zip(tmp_path / "app.zip", {"__main__.py": PROBE})
    # Options stop at the first positional or -m: the rest is the program's.
    args = [*target, "arg1", "--arg2", "-m", "arg3"]
    plain = split(*args).finish()
    wrapped = split(*WRAPPER, "--until-success", *args).finish()
    assert plain[0] == 0, plain
    assert wrapped[:2] == plain[:2], wrapped
    assert "'arg1', '--arg2', '-m', 'arg3']" in plain[1]


# ---------------------------------------------------------------------------
# Options.


def test_until_success_exits_at_once_after_success(split, tmp_path):
    write(tmp_path / "prog.py", "print('done')\n")
    status, out, err = split(*WRAPPER, "--until-success", "prog.py").finish()
    assert (status, out, err) == (0, "done\n", "[reloader] prog.py finished\n")


def test_until_success_waits_for_a_fix_after_failure(spawn, tmp_path):
    prog = write(tmp_path / "prog.py", source("READY\nraise SystemExit(1)\n"))
    child = spawn(*WRAPPER, "--until-success", "prog.py")
    child.wait_for(r"^ready run=1 ")
    child.wait_for(r"^\[reloader\] prog.py exited with status 1\n.*waiting")
    write(prog, source("READY\n"))
    assert child.wait_exit() == 0
    child.wait_for(r"^ready run=2 ")
    assert child.output().endswith("[reloader] prog.py finished\n")


@pytest.mark.parametrize("form", [["--check-time", "60"], ["--check-time=60.5"]])
def test_check_time_is_accepted_in_both_forms(spawn, tmp_path, form):
    prog = write(tmp_path / "prog.py", source("READY\n"))
    child = spawn("-m", "reloader", *form, "prog.py")
    child.wait_for(r"^\[reloader\] waiting for a change$")
    write(prog, source("READY\n# edited\n"))
    child.wait_for(r"^ready run=2 ")


def test_watch_is_repeatable_and_takes_files_and_folders(spawn, tmp_path):
    write(tmp_path / "prog.py", source("READY\n"))
    config = write(tmp_path / "conf" / "settings.toml", "debug = false\n")
    write(tmp_path / "data" / "old.json", "{}\n")
    args = ["--watch", "conf/settings.toml", "--watch", "data", "prog.py"]
    child = spawn(*WRAPPER, *args)
    child.wait_for(r"^ready run=1 ")
    child.wait_for(r"waiting for a change$")
    write(config, "debug = true\n")
    child.wait_for(r"^\[reloader\] conf/settings.toml modified; restarting$")
    child.wait_for(r"^ready run=2 ")
    child.wait_for(r"waiting for a change$", count=2)
    write(tmp_path / "data" / "new.json", "[]\n")
    # Written as soon as the program has ended, before the watcher's first
    # scan may have come: the folder was listed before the program ran.
    child.wait_for(r"^\[reloader\] data/new.json created; restarting$")
    child.wait_for(r"^ready run=3 ")


def test_quiet_logs_errors_only(split, tmp_path):
    prog = write(tmp_path / "prog.py", source("READY\nraise ValueError('bad')\n"))
    child = split(*WRAPPER, "-q", "prog.py")
    child.wait_for(r"^ValueError: bad$")
    write(prog, source("READY\n"))
    child.wait_for(r"^ready run=2 ", "out")
    # run=3 needs the end of run 2 handled and a restart: every INFO line the
    # wrapper could have written by then has been written.
    write(prog, source("READY\n# again\n"))
    child.wait_for(r"^ready run=3 ", "out")
    err = child.err()
    assert err.startswith("[reloader] prog.py raised ValueError\nTraceback")
    assert err.endswith("ValueError: bad\n")
    assert "modified" not in err
    assert "waiting" not in err


def test_version(split):
    status, out, err = split("-m", "reloader", "--version").finish()
    version = re.search(r'^__version__ = "(.*)"$', RELOADER.read_text(), re.M)
    assert version is not None
    assert (status, out, err) == (0, f"reloader {version[1]}\n", "")


def test_help(split):
    status, out, err = split("-m", "reloader", "-h").finish()
    assert (status, err) == (0, "")
    assert out.startswith("usage: python -m reloader [options] -m module [args...]")
    for option in ("--until-success", "--check-time MS", "--watch PATH", "--quiet"):
        assert option in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "prog.py"], "unrecognized arguments: --bogus"),
        ([], "nothing to run"),
        (["-q"], "nothing to run"),
        (["--check-time", "0", "prog.py"], "argument --check-time: must be"),
        (["--check-time", "-5", "prog.py"], "argument --check-time: must be"),
        (["--check-time", "nan", "prog.py"], "argument --check-time: must be"),
        (["--check-time", "inf", "prog.py"], "argument --check-time: must be"),
        (["--check-time", "abc", "prog.py"], "invalid float value: 'abc'"),
        (["--watch"], "expected one argument"),
        (["-m"], "argument -m: expected a module name"),
    ],
)
def test_usage_errors_exit_2(split, tmp_path, args, message):
    write(tmp_path / "prog.py", "print('must not run')\n")
    status, out, err = split("-m", "reloader", *args).finish()
    assert (status, out) == (2, "")
    assert err.startswith("usage: python -m reloader"), err
    assert "python -m reloader: error: " in err
    assert message in err


# ---------------------------------------------------------------------------
# Ctrl-C.


@pytest.mark.parametrize("when", ["program running", "waiting"])
def test_ctrl_c_exits_130_without_traceback(spawn, tmp_path, when):
    body = (
        "import time\nREADY\ntime.sleep(60)\n"
        if when == "program running"
        else "READY\n"
    )
    write(tmp_path / "prog.py", source(body))
    child = spawn(*WRAPPER, "prog.py")
    child.wait_for(r"^ready run=1 ")
    if when == "waiting":
        child.wait_for(r"^\[reloader\] waiting for a change$")
    child.send_signal(signal.SIGINT)
    assert child.wait_exit() == 130
    assert "Traceback" not in child.output()
    assert "KeyboardInterrupt" not in child.output()


# ---------------------------------------------------------------------------
# How the program ends, and running it again.


def test_missing_script_is_watched_until_it_appears(spawn, tmp_path):
    child = spawn(*WRAPPER, "sub/prog.py")
    child.wait_for(
        r"^\[reloader\] can't open 'sub/prog.py': no such file or directory; "
        r"watching for it to appear$"
    )
    child.wait_for(r"waiting for a change$")
    write(tmp_path / "sub" / "prog.py", source("READY\n"))
    child.wait_for(rf"^ready run=1 pid={child.pid}$")
    child.wait_for(r"^\[reloader\] sub/prog.py finished$")


@pytest.mark.parametrize(
    ("module", "created"),
    [("app", "app.py"), ("app", "app/__main__.py"), ("pkg.tool", "pkg/tool.py")],
)
def test_missing_module_is_watched_until_it_appears(spawn, tmp_path, module, created):
    if module.startswith("pkg."):
        write(tmp_path / "pkg" / "__init__.py", "")
    child = spawn(*WRAPPER, "-m", module)
    child.wait_for(
        rf"^\[reloader\] no module named '{module}'; watching for it to appear$"
    )
    child.wait_for(r"waiting for a change$")
    write(tmp_path / created, source("READY\n"))
    child.wait_for(rf"^ready run=1 pid={child.pid}$")
    child.wait_for(rf"^\[reloader\] -m {module} finished$")


HELPER_RAISES = "def boom():\n    raise ZeroDivisionError('boom')\n"

ENDINGS = {
    "exit status": ("raise SystemExit(3)\n", "[reloader] prog.py exited with status 3"),
    "exit 0": ("import sys\nsys.exit()\n", "[reloader] prog.py exited with status 0"),
    "exit message": (
        "raise SystemExit('bye')\n",
        "bye\n[reloader] prog.py exited with status 1",
    ),
    "finished": ("x = 1\n", "[reloader] prog.py finished"),
    "exception": (
        "import helper\nhelper.boom()\n",
        "[reloader] prog.py raised ZeroDivisionError\n"
        "Traceback (most recent call last):\n"
        '  File "{tmp}/prog.py", line 3, in <module>\n'
        "    helper.boom()\n"
        '  File "{tmp}/helper.py", line 2, in boom\n'
        "    raise ZeroDivisionError('boom')\n"
        "ZeroDivisionError: boom",
    ),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_how_the_program_ended_is_reported(split, tmp_path, ending):
    body, expected = ENDINGS[ending]
    write(tmp_path / "helper.py", HELPER_RAISES)
    write(tmp_path / "prog.py", "print('out')\n" + body)
    child = split(*WRAPPER, "prog.py")
    child.wait_for(r"^\[reloader\] waiting for a change$")
    expected = expected.format(tmp=tmp_path.resolve())
    # Standard output is the program's alone; the wrapper's lines, and
    # nothing else, go to standard error. The traceback starts in the
    # program: none of the wrapper's frames or runpy's.
    assert child.out() == "out\n"
    carets = re.compile(r"^ +[~^]+\n", re.MULTILINE)  # 3.11+, where it helps
    err = carets.sub("", child.err())
    assert err == expected + "\n[reloader] waiting for a change\n"


BROKEN = {
    "SyntaxError in the script": (
        "prog.py",
        "def broken(:\n    pass\nREADY\n",
        "READY\n",
        r"^\[reloader\] prog.py raised SyntaxError\n  File \".*prog.py\", line 1$",
    ),
    "SyntaxError in an imported module": (
        "helper.py",
        "value = (\n",
        "value = 'fixed'\n",
        r"^\[reloader\] prog.py raised SyntaxError\n"
        r"(.*\n)*  File \".*helper.py\", line 1$",
    ),
    "NameError in the script": (
        "prog.py",
        "undefined_name\nREADY\n",
        "READY\n",
        r"^\[reloader\] prog.py raised NameError\n",
    ),
    "NameError in an imported module": (
        "helper.py",
        "value = undefined_name\n",
        "value = 'defined'\n",
        r"^\[reloader\] prog.py raised NameError\n",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_error_at_import_then_fix_runs_again(spawn, tmp_path, case):
    name, broken, fixed, report = BROKEN[case]
    files = {"prog.py": "import helper\nREADY\n", "helper.py": "value = 1\n"}
    files[name] = broken
    for file, text in files.items():
        write(tmp_path / file, source(text))
    child = spawn(*WRAPPER, "prog.py")
    child.wait_for(report)
    child.wait_for(r"^\[reloader\] waiting for a change$")
    assert "ready run=" not in child.output()
    write(tmp_path / name, source(fixed))
    child.wait_for(rf"^ready run=1 pid={child.pid}$")
    child.wait_for(r"^\[reloader\] prog.py finished$")


@pytest.mark.skipif(not HAS_PROC, reason="reads /proc/<pid>/cmdline")
def test_program_with_its_own_start_keeps_the_wrapper(spawn, tmp_path):
    prog = write(
        tmp_path / "prog.py",
        source(
            """\
            import os, time
            import reloader
            reloader.add_reload_hook(lambda: print("hook ran", flush=True))
            reloader.start(check_time=50)
            READY
            while not os.path.exists("stop"):
                time.sleep(0.05)
            """
        ),
    )
    wrapped = [*WRAPPER, "prog.py"]
    child = spawn(*wrapped)
    child.wait_for(r"^ready run=1 ")
    write(prog, prog.read_text() + "# edited\n")
    # The program's own watcher restarts it, through its own hooks, into the
    # wrapper's command line: the wrapper survives.
    child.wait_for(
        r"^\[reloader\] prog.py modified; restarting\nhook ran\n"
        rf"ready run=2 pid={child.pid}$"
    )
    assert cmdline(child.pid)[-len(wrapped) :] == wrapped
    (tmp_path / "stop").touch()
    child.wait_for(r"^\[reloader\] prog.py finished\n\[reloader\] waiting for")
    write(prog, prog.read_text() + "# edited again\n")
    child.wait_for(rf"^ready run=3 pid={child.pid}$")
    assert child.output().count("hook ran") == 2
    assert cmdline(child.pid)[-len(wrapped) :] == wrapped


def test_program_running_forever_is_restarted(spawn, tmp_path):
    body = "import time\nimport helper\nREADY\nwhile True:\n    time.sleep(0.05)\n"
    prog = write(tmp_path / "prog.py", source(body))
    helper = write(tmp_path / "helper.py", "x = 1\n")
    child = spawn(*WRAPPER, "prog.py")
    child.wait_for(r"^ready run=1 ")
    write(prog, source(body + "# edited\n"))
    child.wait_for(r"^\[reloader\] prog.py modified; restarting\nready run=2 ")
    write(helper, "x = 22\n")
    child.wait_for(r"^\[reloader\] helper.py modified; restarting\nready run=3 ")
    assert "finished" not in child.output()


def test_program_that_changes_directory_runs_again(spawn, tmp_path):
    (tmp_path / "sub").mkdir()
    body = 'import os\nos.chdir("sub")\nprint("in", os.getcwd())\nREADY\n'
    prog = write(tmp_path / "prog.py", source(body))
    child = spawn(*WRAPPER, "prog.py")
    child.wait_for(r"^ready run=1 ")
    child.wait_for(r"waiting for a change$")
    write(prog, source(body + "# edited\n"))
    child.wait_for(r"^ready run=2 ")
    child.wait_for(r"waiting for a change$", count=2)
    assert child.output().count(f"in {(tmp_path / 'sub').resolve()}\n") == 2
    assert "Traceback" not in child.output()


@pytest.mark.skipif(not HAS_PROC, reason="reads /proc/<pid>/cmdline")
def test_wrapper_run_by_its_path_from_a_vendored_copy(spawn, tmp_path):
    vendored = tmp_path / "vendor" / "reloader.py"
    vendored.parent.mkdir()
    shutil.copy(RELOADER, vendored)
    body = "import reloader\nprint('using', reloader.__file__)\nREADY\n"
    prog = write(tmp_path / "prog.py", source(body))
    args = ["vendor/reloader.py", "--check-time", "50", "prog.py"]
    child = spawn(*args, env={"PYTHONPATH": None})
    child.wait_for(r"^ready run=1 ")
    assert f"using {vendored}\n" in child.output()
    write(prog, source(body + "# edited\n"))
    child.wait_for(rf"^ready run=2 pid={child.pid}$")
    assert cmdline(child.pid)[-len(args) :] == args
