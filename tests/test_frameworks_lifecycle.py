"""Real servers and multiprocessing under the wrapper: restarts shut them down
as Ctrl-C would, Ctrl-C ends the wrapper with 130 on the first press, and no
process of an earlier run is left (SPEC.md, the command line's graceful
restart and signals; "The restart" step 2).

Flask's ``app.run()`` and uvicorn (``uvicorn.run(app)``, ``-m uvicorn``) catch
SIGINT themselves, shut down and return normally; a ``multiprocessing.Pool``
starts workers (and, under spawn and forkserver, helper processes) that a
restart must stop.
"""

from __future__ import annotations

import os
import signal
import textwrap
import urllib.request

import pytest
from conftest import free_port, ready_code, write
from test_lifecycle import descendants, left_over, lines, parent_of

WRAPPER = ("-m", "reloader", "--check-time", "50")

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="counts processes in /proc"
)


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
        return reply.read().decode()


def wait_for_text(port: int, text: str, child, timeout: float = 15) -> None:
    """Wait until the server on ``port`` answers ``text``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            if get(port) == text:
                return
        except OSError:
            pass  # not listening yet, or restarting
        if time.monotonic() > deadline or child.poll() is not None:
            raise AssertionError(f"no {text!r} on port {port}:\n{child.output()}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# Flask.

FLASK_APP = """\
import atexit

from flask import Flask

app = Flask(__name__)
TEXT = "run %d"


@app.get("/")
def index():
    return TEXT % run


atexit.register(lambda: print("atexit run=%d" % run, flush=True))
READY
try:
    app.run(port=PORT)
finally:
    print("flask stopped run=%d" % run, flush=True)
"""


def program(body: str, **values: object) -> str:
    text = textwrap.dedent(body).replace("READY\n", ready_code())
    for name, value in values.items():
        text = text.replace(name, repr(value))
    run = "import os as _os\nrun = int(_os.environ.get('TEST_RUN', '0')) + 1\n"
    return run + "_os.environ['TEST_RUN'] = str(run)\n" + text


def test_flask_app_run_restarts_gracefully_and_ctrl_c_ends_it(spawn, tmp_path):
    pytest.importorskip("flask", reason="Flask is not installed")
    port = free_port()
    app = write(tmp_path / "app.py", program(FLASK_APP, PORT=port))
    child = spawn(*WRAPPER, app)
    child.wait_for(r"^ready run=1 ")
    wait_for_text(port, "run 1", child)
    write(app, program(FLASK_APP, PORT=port) + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    wait_for_text(port, "run 2", child)
    out = child.output()
    assert out.index("flask stopped run=1") < out.index("atexit run=1"), out
    assert out.index("atexit run=1") < out.index("ready run=2"), out
    child.send_signal(signal.SIGINT)
    assert child.wait_exit() == 130
    out = child.output()
    assert "flask stopped run=2" in out and "atexit run=2" in out, out
    assert "Traceback" not in out, out
    assert "waiting for a change" not in out, out


# ---------------------------------------------------------------------------
# uvicorn, with its lifespan shutdown.

ASGI_APP = """\
import atexit


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print("lifespan shutdown run=%d" % run, flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"run %d" % run})


atexit.register(lambda: print("atexit run=%d" % run, flush=True))
READY
"""
UVICORN_MAIN = """\
if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, port=PORT, log_level="warning")
"""


@pytest.mark.parametrize("how", ["uvicorn.run(app)", "-m uvicorn app:app"])
def test_uvicorn_restarts_with_its_shutdown_and_ctrl_c_ends_it(spawn, tmp_path, how):
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    port = free_port()
    if how == "uvicorn.run(app)":
        body = ASGI_APP + UVICORN_MAIN
        args = ("app.py",)
    else:
        body = ASGI_APP
        args = ("-m", "uvicorn", "app:app", "--port", str(port))
        args += ("--log-level", "warning")
    app = write(tmp_path / "app.py", program(body, PORT=port))
    child = spawn(*WRAPPER, *args)
    child.wait_for(r"^ready run=1 ")
    wait_for_text(port, "run 1", child)
    write(app, program(body, PORT=port) + "# edited\n")
    child.wait_for(r"^ready run=2 ")
    wait_for_text(port, "run 2", child)
    out = child.output()
    assert out.index("lifespan shutdown run=1") < out.index("atexit run=1"), out
    assert out.index("atexit run=1") < out.index("ready run=2"), out
    child.send_signal(signal.SIGINT)
    assert child.wait_exit() == 130
    out = child.output()
    assert "lifespan shutdown run=2" in out and "atexit run=2" in out, out
    assert "Traceback" not in out, out
    assert "waiting for a change" not in out, out


# ---------------------------------------------------------------------------
# multiprocessing.Pool under each start method.

POOL_APP = """\
import multiprocessing
import os
import time


def pid(_):
    time.sleep(0.05)
    return os.getpid()


if __name__ == "__main__":
    START
    pool = multiprocessing.get_context(METHOD).Pool(2)
    print("workers %d" % len(set(pool.map(pid, range(8)))), flush=True)
    READY
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["wrapper", "start()"])
@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_pool_leaves_no_process_after_restarts(spawn, tmp_path, method, how):
    body = textwrap.dedent(POOL_APP).replace("METHOD", repr(method))
    start = "import reloader; reloader.start(check_time=50)"
    body = body.replace("START", start if how == "start()" else "pass")
    body = body.replace("    READY\n", textwrap.indent(ready_code(), "    "))
    prog = write(tmp_path / "prog.py", body)
    child = spawn(*WRAPPER, prog) if how == "wrapper" else spawn(prog)
    earlier: set[int] = set()
    restarts = 3
    for run in range(1, restarts + 2):
        child.wait_for(rf"^ready run={run} ")
        assert not {pid for pid in earlier if parent_of(pid) == child.pid}
        assert left_over(earlier) == set()
        current = descendants(child.pid)
        assert len(current) >= 2, child.output()  # the workers, at least
        assert not current & earlier
        earlier |= current
        if run <= restarts:
            write(prog, body + "#" * run + "\n")
    out = child.output()
    assert "Traceback" not in out, out
    if how != "wrapper":
        return  # a library installs no signal handler: no end to test
    os.kill(child.pid, signal.SIGINT)  # the wrapper alone: it stops the pool
    assert child.wait_exit() == 130
    assert left_over(earlier) == set()
    out = child.output()
    assert "Traceback" not in out, out
    assert len(lines(out, "workers ")) == restarts + 1, out
