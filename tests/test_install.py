"""The package as a user installs it: the wheel, the ``reloader`` command.

The wheel is built from a copy of the repository's files in ``tmp_path``
with the build backend pyproject.toml names (flit_core, installed by
``tests/run.py``; no network), installed with pip into a fresh virtual
environment, and its ``reloader`` command is run on a real program that is
edited until the command re-executes itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from conftest import ROOT, ready_code, write

HAS_PROC = os.path.exists("/proc/self/cmdline")
DISTRIBUTION = "python-reloader"  # the name on PyPI; the module is reloader


def cmdline(pid: int) -> list[str]:
    """The command line of a running process, as the kernel shows it."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return os.fsdecode(raw).split("\0")[:-1]


def run(*argv: str | Path, cwd: Path) -> str:
    """Run ``argv`` in ``cwd`` to its end; return its output, or fail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELOADER_")}
    env.pop("PYTHONPATH", None)  # the installed copy, not the repository's
    result = subprocess.run(
        [os.fspath(arg) for arg in argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
    )
    output = result.stdout.decode("utf-8", errors="replace")
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{output}"
    return output


def build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources; return its path."""
    pytest.importorskip("flit_core", reason="the build backend is not installed")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "reloader.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    dist.mkdir()
    build = "import sys, flit_core.buildapi as api; api.build_wheel(sys.argv[1])"
    run(sys.executable, "-c", build, dist, cwd=source)
    (wheel,) = dist.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; its bin folder."""
    tmp_path = tmp_path_factory.mktemp("install")
    wheel = build_wheel(tmp_path)
    assert wheel.name.startswith(DISTRIBUTION.replace("-", "_") + "-")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    python = bin_dir / ("python.exe" if sys.platform == "win32" else "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install"]
    run(*pip, "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    return bin_dir


def test_the_wheel_installs_the_module_and_the_command(installed):
    where = "import reloader; print(reloader.__file__)"
    output = run(installed / "python", "-c", where, cwd=installed)
    assert Path(output.strip()).is_relative_to(installed.parent)
    assert (installed / "reloader").is_file()


def test_the_command_restarts_itself_with_its_own_command_line(
    installed, spawn, tmp_path
):
    program = textwrap.dedent(
        """
        import sys, time
        import reloader
        print("reloader from", reloader.__file__, flush=True)
        print("argv", sys.argv, flush=True)
        """
    )
    program += ready_code() + "while True:\n    time.sleep(0.05)\n"
    app = write(tmp_path / "app" / "app.py", program)
    child = spawn(
        "--check-time",
        "50",
        "app.py",
        "one",
        python=installed / "reloader",
        cwd=app.parent,
        env={"PYTHONPATH": None},
    )
    first = child.wait_for(r"^ready run=1 pid=(\d+)$")
    if HAS_PROC:
        before = cmdline(child.pid)
        assert before[1] == os.fspath(installed / "reloader")
    write(app, program + "# edited\n")
    second = child.wait_for(r"^ready run=2 pid=(\d+)$", timeout=20)
    assert second.group(1) == first.group(1)  # execv: the same process
    if HAS_PROC:
        # The same interpreter, script and arguments. Python 3.9 rebuilds
        # the interpreter's options and adds -u for PYTHONUNBUFFERED.
        after = cmdline(child.pid)
        assert after[0] == before[0]
        assert after[-len(before) + 1 :] == before[1:]
    output = child.output()
    assert output.count(f"reloader from {installed.parent}") == 2, output
    assert output.count("argv ['app.py', 'one']") == 2, output


def test_the_command_names_itself_in_its_messages(installed, tmp_path):
    command = installed / "reloader"
    assert run(command, "--version", cwd=tmp_path).startswith("reloader ")
    usage = run(command, "--help", cwd=tmp_path)
    assert usage.startswith("usage: reloader [options] -m module [args...]\n")
    assert "\n  reloader app.py --port 8000\n" in usage
