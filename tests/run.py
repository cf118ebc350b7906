"""Run the test suite with nothing but Python installed.

Usage, from the repository root::

    python tests/run.py [pytest arguments...]

The first run makes a virtual environment for the running interpreter at
``.venv/py<major>.<minor>/`` and installs pytest, Tornado, Flask and uvicorn
into it (the Tornado tests check the restart on its IOLoop and the Tornado
example; the lifecycle tests run Flask and uvicorn servers under the wrapper);
later runs reuse it (it is made again if another interpreter of that version
made it).
Then it runs ``python -m pytest`` from that environment, in the repository
root, with the arguments given, and exits with pytest's status. pytest's
status 5 ("no tests collected") is non-zero, so it fails here as well: a run
that tested nothing must not pass.

Run it with each interpreter to test (``python3.9 tests/run.py``): each minor
version gets its own environment. Standard library only, Python 3.9 and newer.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = "pytest>=8,<9"  # 8.x supports every Python from 3.9 to 3.13
TORNADO = "tornado>=6.4,<7"  # 6.4 and later support 3.9 to 3.13
# The lifecycle tests run real frameworks under the wrapper: Flask 2.2+ and
# uvicorn 0.20+ both install on 3.9 and newer (pip picks the newest that does).
FLASK = "flask>=2.2,<4"
UVICORN = "uvicorn>=0.20,<1"
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED


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
    if not runs(python, "import pytest, tornado, flask, uvicorn"):
        packages = [PYTEST, TORNADO, FLASK, UVICORN]
        print(f"tests/run.py: installing {', '.join(packages)}", flush=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--disable-pip-version-check", *packages], check=True)
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
