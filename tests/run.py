"""Run the test suite with nothing but Python installed.

Usage, from the repository root::

    python tests/run.py [pytest arguments...]

The first run makes a virtual environment for the running interpreter at
``.venv/py<major>.<minor>/`` and installs pytest, Tornado and flit_core into
it (the Tornado tests check the restart on its IOLoop and the Tornado example;
``tests/test_install.py`` builds the wheel with flit_core, offline, and
installs it into a fresh environment), then tries once to install Flask,
uvicorn, FastAPI, Django and aiohttp (the lifecycle, socket-adoption and
README tests run them; where one cannot be installed its tests skip; with
``TESTS_WITHOUT_FRAMEWORKS=1`` they are not tried); later runs reuse it (it
is made again if another interpreter of that version made it).
Then it runs ``python -m pytest`` from that environment, in the repository
root, with the arguments given, and exits with pytest's status. pytest's
status 5 ("no tests collected") is non-zero, so it fails here as well: a run
that tested nothing must not pass.

Run it with each interpreter to test (``python3.9 tests/run.py``): each minor
version gets its own environment. Standard library only; tested with CPython
3.9 to 3.15, and the pins below install on every one of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# pytest 9 dropped 3.9; 8.4 runs on 3.9 to 3.15 (checked on 3.14.10, 3.15.2).
PYTEST = "pytest>=8.4,<9"
TORNADO = "tornado>=6.5,<7"  # 6.5 and later support 3.9 to 3.15
FLIT_CORE = "flit_core>=3.12,<4"  # the build backend pyproject.toml names
PACKAGES = (PYTEST, TORNADO, FLIT_CORE)
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
# The frameworks that the lifecycle, adoption and README tests run under the
# wrapper. Each
# range holds releases for Python 3.9 (pip picks the newest one that fits the
# interpreter); where one cannot be installed (no wheel for a new Python, no
# network), its tests skip, saying so.
FRAMEWORKS = [
    "flask>=2.2,<4",
    "uvicorn>=0.20,<1",
    "fastapi>=0.100,<1",
    "django>=4.2,<6",
    "aiohttp>=3.9,<4",
]


def venv_python(env_dir: Path) -> Path:
    """Return the interpreter inside the virtual environment ``env_dir``."""
    if sys.platform == "win32":
        return env_dir / "Scripts" / "python.exe"
    return env_dir / "bin" / "python"


def runs(python: Path, code: str) -> bool:
    """Tell whether ``python -c code`` runs and exits 0."""
    try:
        result = subprocess.run([str(python), "-c", code], capture_output=True)
    except OSError:  # missing, or a link to an interpreter since removed
        return False
    return result.returncode == 0


def ensure_env() -> Path:
    """Create or reuse this interpreter's environment; return its python."""
    env_dir = ROOT / ".venv" / "py{}.{}".format(*sys.version_info[:2])
    python = venv_python(env_dir)
    same_base = f"import sys; sys.exit(sys.base_prefix != {sys.base_prefix!r})"
    if not runs(python, same_base):  # missing, broken, or another interpreter's
        print(f"tests/run.py: creating {env_dir.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(clear=True, with_pip=True).create(env_dir)
    if not runs(python, "import pytest, tornado, flit_core"):
        print(f"tests/run.py: installing {', '.join(PACKAGES)}", flush=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--disable-pip-version-check", *PACKAGES], check=True)
    tried = env_dir / "frameworks-tried"  # once per environment, not per run
    if os.environ.get("TESTS_WITHOUT_FRAMEWORKS"):
        return python  # .ci/run: frameworks on the default interpreter only
    if not tried.exists() and not runs(
        python, "import flask, uvicorn, fastapi, django, aiohttp"
    ):
        print(f"tests/run.py: installing {', '.join(FRAMEWORKS)}", flush=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        for framework in FRAMEWORKS:  # one at a time: one failing stops no other
            done = subprocess.run([*pip, "--disable-pip-version-check", framework])
            if done.returncode != 0:
                print(f"tests/run.py: no {framework}; its tests skip", flush=True)
        tried.touch()
    return python


def main() -> int:
    python = ensure_env()
    command = [str(python), "-m", "pytest", *sys.argv[1:]]
    try:
        status = subprocess.run(command, cwd=ROOT).returncode
    except KeyboardInterrupt:  # pytest got the Ctrl-C too and has reported
        return 130
    if status == NO_TESTS_COLLECTED:
        print("tests/run.py: no tests ran; that counts as a failure", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
