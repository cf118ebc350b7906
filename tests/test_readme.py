"""Every code block of README.md runs, as a user would run it.

The README's conventions, which these tests rely on:

- A ``python`` block whose first line is ``# NAME.py`` is a file of a recipe;
  the ``sh`` block after it in the same section gives the command, which
  starts with ``reloader``. The recipe test writes the file, runs the command
  (as ``python -m reloader``, the same command) on a free port instead of
  8000, fetches ``/``, replaces ``Hello, world!`` in the file and waits for
  the new page.
- Any other ``python`` block is a program that runs to its end with status 0.

A block that imports a package that is not installed (Flask, FastAPI,
Django, aiohttp) is skipped with the package's name.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, free_port, write

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{2,3} (.+)$", re.MULTILINE)
FILE_HEADER = re.compile(r"# ([\w/]+\.py)\n")
PAGE_TIMEOUT = 30  # seconds for a server to answer with the expected page


def blocks() -> list[tuple[str, str, str]]:
    """(section heading, language, code) for each fenced block, in order."""
    text = README.read_text("utf-8")
    headings = [(m.start(), m.group(1)) for m in HEADING.finditer(text)]
    found = []
    for fence in FENCE.finditer(text):
        section = [title for start, title in headings if start < fence.start()]
        found.append((section[-1] if section else "", fence[1], fence[2]))
    return found


def section(title: str) -> tuple[dict[str, str], list[str]]:
    """The files (name -> code) and shell command lines of one section."""
    files: dict[str, str] = {}
    commands: list[str] = []
    for heading, language, code in blocks():
        if heading != title:
            continue
        header = FILE_HEADER.match(code)
        if language == "python" and header:
            files[header[1]] = code
        elif language == "sh":
            commands += [line for line in code.splitlines() if line.strip()]
    return files, commands


def skip_unless_installed(*modules: str) -> None:
    for module in modules:
        top = module.split(".")[0]
        if top != "reloader" and importlib.util.find_spec(top) is None:
            pytest.skip(f"{top} is not installed")


def imports(code: str) -> list[str]:
    """The modules a block imports at its top level."""
    names = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def page(port: int) -> str | None:
    """The text of http://127.0.0.1:port/, or None while nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/", timeout=10) as response:
            return response.read().decode("utf-8", errors="replace")
    except (OSError, urllib.error.HTTPError):  # not listening yet, or restarting
        return None


def wait_for_page(child, port: int, text: str) -> None:
    """Poll the page until it contains ``text``; fail with the child's log."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    last = None
    while time.monotonic() < deadline and child.poll() is None:
        last = page(port)
        if last is not None and text in last:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"{text!r} not served on port {port} (last page: {last!r}); exit code"
        f" {child.poll()}\n----- log -----\n{child.output()}----- end -----"
    )


def run_reloader(spawn, command: str, port: int, cwd: Path):
    argv = shlex.split(command.replace("8000", str(port)))
    assert argv[0] == "reloader", command
    return spawn("-m", "reloader", *argv[1:], cwd=cwd)


RECIPES = ["Quick start", "Flask", "FastAPI (uvicorn)", "aiohttp", "Tornado"]


@pytest.mark.parametrize("title", RECIPES)
def test_recipe_serves_and_restarts_on_an_edit(spawn, tmp_path, title):
    files, commands = section(title)
    assert list(files) == ["app.py"] and len(commands) == 1, (files, commands)
    code = files["app.py"]
    skip_unless_installed(*imports(code), *re.findall(r"-m ([\w.]+)", commands[0]))
    port = free_port()
    code = code.replace("8000", str(port))
    app = write(tmp_path / "app.py", code)
    child = run_reloader(spawn, commands[0], port, tmp_path)
    wait_for_page(child, port, "Hello, world!")
    write(app, code.replace("Hello, world!", "Hello again, world!"))
    wait_for_page(child, port, "Hello again, world!")


def test_recipe_django(spawn, tmp_path):
    skip_unless_installed("django")
    _, commands = section("Django")
    assert len(commands) == 2 and commands[0].startswith("django-admin "), commands
    # django-admin is python -m django: the same program, found without PATH.
    argv = [sys.executable, "-m", "django", *shlex.split(commands[0])[1:]]
    create = spawn(*argv[1:], cwd=tmp_path)
    assert create.wait_exit(timeout=60) == 0, create.output()
    port = free_port()
    child = run_reloader(spawn, commands[1], port, tmp_path)
    wait_for_page(child, port, "The install worked successfully!")
    urls = tmp_path / "mysite" / "urls.py"
    edit = (
        "\nfrom django.http import HttpResponse\n"
        'urlpatterns.insert(0, path("", lambda r: HttpResponse("Hello again!")))\n'
    )
    write(urls, urls.read_text("utf-8") + edit)
    wait_for_page(child, port, "Hello again!")


def test_recipe_test_loop(spawn, tmp_path):
    _, commands = section("A test loop")
    assert commands == ["reloader -m pytest -x -q"]
    tests = write(tmp_path / "test_app.py", "def test_sum():\n    assert 1 + 1 == 3\n")
    child = run_reloader(spawn, commands[0], 0, tmp_path)
    child.wait_for(r"^1 failed", timeout=60)
    write(tests, "def test_sum():\n    assert 1 + 1 == 2  # fixed\n")
    child.wait_for(r"^1 passed", timeout=60)


PROGRAMS = [
    pytest.param(code, id=f"{heading}-{i}")
    for i, (heading, language, code) in enumerate(blocks())
    if language == "python" and not FILE_HEADER.match(code)
]


@pytest.mark.parametrize("code", PROGRAMS)
def test_python_block_runs(spawn, tmp_path, code):
    skip_unless_installed(*imports(code))
    child = spawn(write(tmp_path / "block.py", code))
    assert child.wait_exit(timeout=30) == 0, child.output()


def test_every_block_is_tried():
    # A new block must be a recipe file, a program, or a command of a recipe
    # section; the other sh and text blocks are listed here on purpose.
    untested = [
        (heading, code[:30])
        for heading, language, code in blocks()
        if language != "python" and heading not in [*RECIPES, "Django", "A test loop"]
    ]
    assert untested == [
        ("", "pip install python-reloader\nre"),
        ("Install, or copy the one file", "pip install python-reloader   "),
        ("Docker, WSL, network drives", 'docker run --rm -v "$PWD":/app'),
        ("Command line", "reloader [options] -m module ["),
        ("Development", "python tests/run.py          #"),
        ("Development", "for i in 1 2; do timeout 300 p"),
    ]
