"""The programs in examples/ serve, and restart on an edit keeping their port.

Each example is run for real, with PORT=0 (a free port), and asked for its
page over HTTP. An edit is made to a copy in tmp_path, never to the file in
the repository; run in place, unchanged, an example shows it works from a
fresh clone with nothing installed.
"""

from __future__ import annotations

import shutil
import urllib.request

import pytest
from conftest import ROOT, write

EXAMPLES = ["hello_server.py", "asyncio_server.py", "tornado_server.py"]
GREETING = "Hello, world!"
EDITED = "Hello again, world!"  # longer: the edit changes the file's size
URL = r"^Serving on (http://127\.0\.0\.1:\d+/)$"

# Each example is run by the README's command, and directly: then it calls
# reloader.start() itself.
MODES = {
    "wrapper": lambda path: ["-m", "reloader", "--check-time", "50", path],
    "direct": lambda path: [path],
}


def get(url: str) -> str:
    # No proxy: a proxy from the environment must not see 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.read().decode()


def needs(example: str) -> None:
    if example == "tornado_server.py":
        pytest.importorskip("tornado")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_restarts_on_an_edit_keeping_its_port(spawn, tmp_path, example, mode):
    needs(example)
    path = tmp_path / example
    shutil.copy(ROOT / "examples" / example, path)
    child = spawn(*MODES[mode](example), env={"PORT": "0"})
    url = child.wait_for(URL).group(1)
    assert get(url) == f"{GREETING}\n"
    source = path.read_text(encoding="utf-8")
    assert source.count(f'"{GREETING}"') == 1
    write(path, source.replace(f'"{GREETING}"', f'"{EDITED}"'))
    assert child.wait_for(URL, count=2).group(1) == url
    assert get(url) == f"{EDITED}\n"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs_from_a_clone_without_installing(spawn, example, mode):
    # In place and unchanged, from the repository root, with reloader found
    # neither on PYTHONPATH nor installed: as after a fresh clone.
    needs(example)
    argv = MODES[mode](f"examples/{example}")
    child = spawn(*argv, cwd=ROOT, env={"PORT": "0", "PYTHONPATH": None})
    url = child.wait_for(URL).group(1)
    assert get(url) == f"{GREETING}\n"
