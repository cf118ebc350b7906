"""The restart re-executes the same command line, in every launch mode.

A program prints what ``python`` told it about how it was launched
(``sys.argv``, ``sys.path[0]``, ``__spec__``, ``__file__``, the interpreter's
options) as JSON. It is run once with plain ``python``, which is the
reference, then again (directly and under ``python -m reloader``) with a
restart: the runs before and after the restart must both print exactly what
plain ``python`` printed. The program changes directory before it restarts,
so the restart must also go back to the directory it started in.

Then vendoring: ``reloader.py`` copied alone into a folder, or into a
package as ``pkg/_vendor/reloader.py``, works without the repository.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Callable

import pytest
from conftest import RELOADER, ready_code, write

FACTS_PROGRAM = """
import json
import os
import sys

run = int(os.environ.get("TEST_RUN", "0")) + 1
os.environ["TEST_RUN"] = str(run)
if os.environ.get("TEST_RESTART"):
    import reloader  # before chdir: the restart goes back to where we started

main = sys.modules["__main__"]
spec = getattr(main, "__spec__", None)
facts = {
    "argv": sys.argv,
    "path0": sys.path[0],
    "name": __name__,
    "main_is_this_module": vars(main) is globals(),
    "spec": None if spec is None else spec.name,
    "file": getattr(main, "__file__", None),
    "package": __package__,
    "flags": repr(sys.flags),
    "warnoptions": sys.warnoptions,
    "xoptions": sys._xoptions,
    "stdout_buffer": type(sys.stdout.buffer).__name__,
    "cwd": os.getcwd(),
}
print("facts " + json.dumps(facts, sort_keys=True))
if os.environ.get("TEST_RESTART") and run == 1:
    os.chdir("elsewhere")
    reloader.restart()
    print("restart returned")
"""

ARGS = ["arg 1", "--arg2", "-m", "arg3"]  # the program's, not python's


def build_module(tmp_path: Path) -> list[str]:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "__main__.py", FACTS_PROGRAM)
    return ["-m", "pkg"]


def build_submodule(tmp_path: Path) -> list[str]:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "mod.py", FACTS_PROGRAM)
    return ["-m", "pkg.mod"]


def build_script(tmp_path: Path) -> list[str]:
    write(tmp_path / "scripts" / "file.py", FACTS_PROGRAM)
    # "./": python keeps it in argv[0] and, unnormalized, in __file__.
    return ["./scripts/file.py"]


def build_dir(tmp_path: Path) -> list[str]:
    write(tmp_path / "appdir" / "__main__.py", FACTS_PROGRAM)
    return ["appdir"]


def build_zip(tmp_path: Path) -> list[str]:
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as archive:
        archive.writestr("__main__.py", FACTS_PROGRAM)
    return ["app.zip"]


BUILDERS: dict[str, Callable[[Path], list[str]]] = {
    "-m pkg": build_module,
    "-m pkg.mod": build_submodule,
    "path/file.py": build_script,
    "dir": build_dir,
    "app.zip": build_zip,
}

OPTIONS = {
    "no options": [],
    "all options": [
        "-u",
        "-X",
        "utf8",
        "-X",
        "dev",
        "-W",
        "error::DeprecationWarning",
        "-O",
        "-B",
    ],
}

WRAPPER_OPTIONS = ["--until-success", "--check-time", "50"]
RUNNERS = ["python", "python -m reloader", "python tools/reloader.py"]


def facts_of(output: str) -> list[dict[str, object]]:
    prefix = "facts "
    found = [line for line in output.splitlines() if line.startswith(prefix)]
    return [json.loads(line[len(prefix) :]) for line in found]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("mode", BUILDERS)
def test_restart_keeps_the_command_line(spawn, tmp_path, mode, options, runner):
    (tmp_path / "elsewhere").mkdir()
    target = BUILDERS[mode](tmp_path)
    flags = OPTIONS[options]
    # Neither variable may stand in for -u or -B: each run must get it from
    # its own command line. Without -B, bytecode goes to tmp_path only.
    env = {
        "PYTHONUNBUFFERED": None,
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache"),
    }

    plain = spawn(*flags, *target, *ARGS, env=env)
    assert plain.wait_exit() == 0
    (expected,) = facts_of(plain.output())

    if runner == "python -m reloader":
        wrapper = ["-m", "reloader", *WRAPPER_OPTIONS]
    elif runner == "python tools/reloader.py":
        # The wrapper's sys.path[0] is tools/; the program must not see it.
        shutil.copy(RELOADER, write(tmp_path / "tools" / "reloader.py", ""))
        wrapper = ["tools/reloader.py", *WRAPPER_OPTIONS]
    else:
        wrapper = []
    env["TEST_RESTART"] = "1"
    child = spawn(*flags, *wrapper, *target, *ARGS, env=env)
    assert child.wait_exit() == 0
    output = child.output()
    assert facts_of(output) == [expected, expected], output
    assert "restart returned" not in output


def test_reference_facts_are_what_python_documents(spawn, tmp_path):
    """A check on the reference itself, so the test above compares something."""
    target = build_submodule(tmp_path)
    flags = OPTIONS["all options"]
    child = spawn(*flags, *target, *ARGS, env={"PYTHONUNBUFFERED": None})
    assert child.wait_exit() == 0
    (facts,) = facts_of(child.output())
    assert facts["argv"] == [str(tmp_path / "pkg" / "mod.py"), *ARGS]
    assert facts["path0"] == str(tmp_path)
    assert facts["spec"] == "pkg.mod"
    assert facts["package"] == "pkg"
    assert facts["xoptions"] == {"utf8": True, "dev": True}
    assert "error::DeprecationWarning" in facts["warnoptions"]
    assert "optimize=1" in facts["flags"]
    assert "dont_write_bytecode=1" in facts["flags"]
    assert facts["stdout_buffer"] == "FileIO"  # -u


# ---------------------------------------------------------------------------
# Vendoring: reloader.py copied alone, without the repository on sys.path.

VENDOR_PROGRAM = """
import sys
import threading

import {module} as reloader

print(f"using {{reloader.__name__}} from {{reloader.__file__}}", flush=True)
reloader.add_reload_hook(lambda: print("hook ran", flush=True))
"""

# How the vendored copy is laid out, and how the program is launched.
VENDOR_LAUNCH = {
    "start()": ("vendor_only", "reloader", ["script.py"]),
    "python reloader.py": (
        "vendor_only",
        "reloader",
        ["reloader.py", "--check-time", "50", "script.py"],
    ),
    "python -m reloader": (
        "vendor_only",
        "reloader",
        ["-m", "reloader", "--check-time", "50", "script.py"],
    ),
    "python -m pkg._vendor.reloader": (
        ".",
        "pkg._vendor.reloader",
        ["-m", "pkg._vendor.reloader", "--check-time", "50", "script.py"],
    ),
}


@pytest.mark.parametrize("launch", VENDOR_LAUNCH)
def test_vendored_copy_works_alone(spawn, tmp_path, launch):
    folder, module, argv = VENDOR_LAUNCH[launch]
    cwd = tmp_path / folder
    if module == "reloader":
        copy = cwd / "reloader.py"
    else:
        write(tmp_path / "pkg" / "__init__.py", "")
        write(tmp_path / "pkg" / "_vendor" / "__init__.py", "")
        copy = tmp_path / "pkg" / "_vendor" / "reloader.py"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(RELOADER, copy)
    source = VENDOR_PROGRAM.format(module=module) + ready_code()
    if launch == "start()":  # no wrapper: the program watches for itself
        source += "reloader.start(check_time=50)\nthreading.Event().wait()\n"
    script = write(cwd / "script.py", source)

    child = spawn(*argv, cwd=cwd, env={"PYTHONPATH": None})
    child.wait_for(r"^ready run=1 ")
    write(script, source + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    output = child.output()
    using = f"using {module} from {copy}"
    assert [line for line in output.splitlines() if line.startswith("using ")] == [
        using,
        using,
    ]
    # The hook the program registered ran: the wrapper restarted with the
    # copy the program imported, not a second one run as __main__.
    assert output.count("hook ran\n") == 1, output
