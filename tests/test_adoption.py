"""Under ``python -m reloader``, unmodified servers keep their listening socket.

Each test runs a real server program, unchanged, under the wrapper, and
restarts it for real (edits, or its own ``reloader.restart()``): the next
run's ``bind()`` of the same address adopts the socket the previous run kept,
so a client looping meanwhile is never refused. See "Keeping listening
sockets across restarts" in SPEC.md.

The framework tests need Flask, uvicorn, Django and aiohttp, which
``tests/run.py`` installs where it can; each skips, saying why, when its
framework cannot be imported.
"""

from __future__ import annotations

import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Callable

import pytest
from conftest import free_port, write

RESTARTS = 10

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="lists descriptors in /proc"
)


def get(url: str, timeout: float = 10) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read().decode()


class Client(threading.Thread):
    """Requests ``url`` in a loop, one connection at a time, recording all."""

    def __init__(self, url: str, fetch: Callable[[str], str] = get) -> None:
        super().__init__(name="client", daemon=True)
        self.url = url
        self.fetch = fetch
        self.answers: list[str] = []
        self.errors: list[str] = []
        self.refused = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                answer = self.fetch(self.url)
            except Exception as e:  # recorded, and the test judges it
                reason = getattr(e, "reason", e)
                refused = (ConnectionRefusedError, FileNotFoundError)
                self.refused += isinstance(reason, refused)
                self.errors.append(repr(e))
                continue
            if re.fullmatch(r"version \d+", answer):
                self.answers.append(answer)
            else:  # a response cut short (no Content-Length, then EOF)
                self.errors.append(repr(answer))

    def wait_answer(self, expected: str, child, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while expected not in self.answers[-1:]:
            if not self.is_alive() or time.monotonic() > deadline:
                last = self.answers[-1:]
                raise AssertionError(
                    f"no {expected!r} (last answer {last}, {self.refused} refused, "
                    f"errors {self.errors[-3:]})\n{child.output()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert not self.is_alive()


def restart_under_load(
    child,
    url: str,
    edit: Callable[[int], object],
    restarts: int = RESTARTS,
    fetch: Callable[[str], str] = get,
) -> Client:
    """Edit the program ``restarts`` times while a client loops on ``url``.

    ``edit(version)`` makes the program answer ``version <version>``. Returns
    the client, stopped, once it has had the last version's answer; asserts
    that no connection was refused and that every answer came from the code
    running then, old or new, never older.
    """
    deadline = time.monotonic() + 30
    while True:  # until the first run has bound its socket
        try:
            assert fetch(url) == "version 1", child.output()
            break
        except OSError as e:
            if child.poll() is not None or time.monotonic() > deadline:
                message = f"{url} never answered: {e}\n{child.output()}"
                raise AssertionError(message) from None
            time.sleep(0.05)
    client = Client(url, fetch)
    client.start()
    started = time.monotonic()
    try:
        for version in range(2, restarts + 2):
            edit(version)
            client.wait_answer(f"version {version}", child)
    finally:
        client.stop()
    attempted = len(client.answers) + len(client.errors)
    print(
        f"\n{restarts} restarts in {time.monotonic() - started:.1f} s: "
        f"{attempted} requests, {client.refused} refused, "
        f"{len(client.errors)} failed {client.errors[:3]}"
    )
    assert client.refused == 0, client.errors
    seen = [int(answer.split()[1]) for answer in client.answers]
    assert seen == sorted(seen) and seen[-1] == restarts + 1
    # A request the old run had accepted when the restart cut it off fails
    # (issue 9's graceful restart lets the framework finish it): at most one
    # per restart for one client, never a refused one.
    assert len(client.errors) <= restarts, client.errors
    return client


def versioned(template: str) -> Callable[[int], str]:
    """``template`` with ``{version}``, padded so every edit changes the size."""

    def source(version: int) -> str:
        return template.replace("{version}", str(version)) + "#" * version + "\n"

    return source


# ---------------------------------------------------------------------------
# The standard library's servers, unmodified.

HTTP_SERVER = """\
import http.server

VERSION = {version}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"version %d" % VERSION
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
"""

SOCKETSERVER = """\
import socketserver

VERSION = {version}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while self.rfile.readline() not in (b"\\r\\n", b"\\n", b""):
            pass
        body = b"version %d" % VERSION
        self.wfile.write(
            b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body)
        )


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", PORT), Handler).serve_forever()
"""

ASYNCIO = """\
import asyncio

VERSION = {version}


async def handle(reader, writer):
    while await reader.readline() not in (b"\\r\\n", b"\\n", b""):
        pass
    body = b"version %d" % VERSION
    writer.write(
        b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body)
    )
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""

TORNADO = """\
import asyncio

import tornado.web

VERSION = {version}


class Handler(tornado.web.RequestHandler):
    def get(self):
        self.write("version %d" % VERSION)


async def main():
    tornado.web.Application([("/", Handler)]).listen(PORT, "127.0.0.1")
    await asyncio.Event().wait()


asyncio.run(main())
"""

STDLIB = {
    "http.server": HTTP_SERVER,
    "socketserver": SOCKETSERVER,
    "asyncio": ASYNCIO,
    "tornado": TORNADO,
}


@pytest.mark.parametrize("server", STDLIB)
def test_unmodified_server_refuses_no_connection(spawn, tmp_path, server):
    if server == "tornado":
        pytest.importorskip("tornado", reason="Tornado is not installed")
    port = free_port()
    source = versioned(STDLIB[server].replace("PORT", str(port)))
    app = write(tmp_path / "app.py", source(1))
    child = spawn("-m", "reloader", "--check-time", "50", app.name)
    restart_under_load(
        child, f"http://127.0.0.1:{port}/", lambda v: write(app, source(v))
    )


# ---------------------------------------------------------------------------
# Frameworks, run as their users run them.

FLASK = """\
from flask import Flask

VERSION = {version}
app = Flask(__name__)


@app.route("/")
def index():
    return "version %d" % VERSION


app.run("127.0.0.1", PORT)
"""

ASGI = """\
VERSION = {version}


async def app(scope, receive, send):
    body = b"version %d" % VERSION
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", lifespan="off")
"""

AIOHTTP = """\
from aiohttp import web

VERSION = {version}


async def index(request):
    return web.Response(text="version %d" % VERSION)


app = web.Application()
app.router.add_get("/", index)
web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None)
"""

DJANGO_MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

DJANGO_SETTINGS = """\
SECRET_KEY = "only for a test"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.server": {"handlers": [], "propagate": False}},
}
"""

DJANGO_URLS = """\
from django.http import HttpResponse
from django.urls import path

VERSION = {version}


def index(request):
    return HttpResponse("version %d" % VERSION)


urlpatterns = [path("", index)]
"""

# name: (module to import, files, the file edited, command line after -m reloader)
FRAMEWORKS = {
    "flask app.run()": ("flask", {}, ("app.py", FLASK), ["app.py"]),
    "python -m flask run": (
        "flask",
        {},
        (
            "app.py",
            FLASK.replace("app.run(", "if __name__ == '__main__':\n    app.run("),
        ),
        ["-m", "flask", "--app", "app", "run", "--port", "PORT"],
    ),
    "uvicorn.run(app)": ("uvicorn", {}, ("app.py", ASGI), ["app.py"]),
    "python -m uvicorn app:app": (
        "uvicorn",
        {},
        ("app.py", ASGI),
        [
            *("-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "PORT"),
            *("--log-level", "warning", "--lifespan", "off"),
        ],
    ),
    "django runserver --noreload": (
        "django",
        {"manage.py": DJANGO_MANAGE, "settings.py": DJANGO_SETTINGS},
        ("urls.py", DJANGO_URLS),
        ["manage.py", "runserver", "--noreload", "127.0.0.1:PORT"],
    ),
    "aiohttp web.run_app()": ("aiohttp", {}, ("app.py", AIOHTTP), ["app.py"]),
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_refuses_no_connection(spawn, tmp_path, framework):
    module, files, (edited, template), args = FRAMEWORKS[framework]
    pytest.importorskip(module, reason=f"{module} is not installed here")
    port = free_port()
    for name, text in files.items():
        write(tmp_path / name, text)
    source = versioned(template.replace("PORT", str(port)))
    path = write(tmp_path / edited, source(1))
    args = [arg.replace("PORT", str(port)) for arg in args]
    child = spawn("-m", "reloader", "--check-time", "50", *args)
    restart_under_load(
        child, f"http://127.0.0.1:{port}/", lambda v: write(path, source(v))
    )


# ---------------------------------------------------------------------------
# What is kept, what is not: programs that restart themselves.

# ``run`` counts 1, 2, ... across restarts (the environment survives execv);
# describe() names a socket by descriptor, port and inode (``os.fstat`` of a
# socket names it, and survives execv).
PRELUDE = """\
import os
import socket
import sys

import reloader

run = int(os.environ.get("TEST_RUN", "1"))


def restart_until(last):
    if run < last:
        os.environ["TEST_RUN"] = str(run + 1)
        reloader.restart()


def describe(sock):
    fd = sock.fileno()
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    name = sock.getsockname()
    where = name[1] if isinstance(name, tuple) else name
    return "fd=%d at=%s ino=%d listening=%d" % (
        fd, where, os.fstat(fd).st_ino, listening
    )


def descriptors():
    table = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            table[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass  # the listing's own descriptor, closed since
    return sorted(table.items())
"""

SOCKET_LINE = r"fd=(?P<fd>\d+) at=(?P<at>\S+) ino=(?P<ino>\d+) listening=1"


def sockets(output: str, name: str) -> list[dict[str, str]]:
    """Per run, the socket that the line ``run=N <name> fd=...`` describes."""
    found = re.finditer(rf"^run=(\d+) {name} {SOCKET_LINE}$", output, re.MULTILINE)
    result = []
    for run, match in enumerate(found, start=1):
        assert match.group(1) == str(run), output
        result.append(match.groupdict())
    return result


@linux_only
def test_twenty_restarts_keep_the_port_and_leak_no_descriptor(spawn, tmp_path):
    # Port 0 keeps the first run's port; the program closes its server before
    # each restart (as a graceful shutdown does); a listening_socket() beside
    # it shares the same hand-over. Run 21 has exactly run 1's descriptors.
    write(
        tmp_path / "prog.py",
        PRELUDE
        + """
import http.server

Handler = http.server.BaseHTTPRequestHandler
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
kept = reloader.listening_socket(("127.0.0.1", 0))
reloader.stop()  # the watcher: no file of its open while listing
print("run=%d server %s" % (run, describe(server.socket)))
print("run=%d kept %s" % (run, describe(kept)))
print("run=%d fds %s" % (run, descriptors()))
server.server_close()
restart_until(21)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit(timeout=60) == 0, child.output()
    output = child.output()
    for name in ("server", "kept"):
        runs = sockets(output, name)
        assert len(runs) == 21 and runs == [runs[0]] * 21, output
    tables = re.findall(r"^run=\d+ fds (.*)$", output, re.MULTILINE)
    assert len(tables) == 21 and tables[-1] == tables[0], output
    assert "WARNING" not in output and "not adopting" not in output, output


def test_server_closed_before_its_restart_refuses_no_connection(spawn, tmp_path):
    # The program shuts its server down and closes it, then restarts: the
    # connections made meanwhile wait for the next run, and none fails.
    port = free_port()
    write(
        tmp_path / "prog.py",
        PRELUDE
        + f"""
import http.server
import threading

restart = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"version %d" % run
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/restart":
            restart.set()

    def log_message(self, format, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", {port}), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
restart.wait()
server.shutdown()
server.server_close()
restart_until(1000)
""",
    )
    child = spawn("-m", "reloader", "prog.py")
    url = f"http://127.0.0.1:{port}/"

    def edit(version: int) -> None:
        assert get(url + "restart") == f"version {version - 1}"

    client = restart_under_load(child, url, edit)
    assert client.errors == []


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_twice_and_rebinding_behave_as_without_reloader(spawn, tmp_path):
    # Two sockets on one address with SO_REUSEPORT each keep their own; a
    # third without it fails as it would; a closed one bound again works.
    port = free_port()
    write(
        tmp_path / "prog.py",
        PRELUDE
        + f"""
import errno


def listen(reuse_port):
    sock = socket.socket()
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", {port}))
    sock.listen()
    return sock


a = listen(True)
b = listen(True)
print("run=%d a %s" % (run, describe(a)))
print("run=%d b %s" % (run, describe(b)))
try:
    listen(False)
except OSError as e:
    print("run=%d third: %s" % (run, errno.errorcode[e.errno]))
a.close()
c = listen(True)
print("run=%d c %s" % (run, describe(c)))
restart_until(2)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    a, b, c = (sockets(output, name) for name in "abc")
    assert len(a) == len(b) == len(c) == 2, output
    assert a[0]["ino"] != b[0]["ino"], output
    assert a[1]["ino"] == a[0]["ino"] and b[1]["ino"] == b[0]["ino"], output
    assert c[0]["at"] == c[1]["at"] == str(port), output
    assert output.count("third: EADDRINUSE") == 2, output


def test_forked_child_never_adopts(spawn, tmp_path):
    # A process forked by the program binds the same address: it gets a
    # socket of its own; the program's next bind() adopts the kept one.
    write(
        tmp_path / "prog.py",
        PRELUDE
        + """
if run == 2:
    pid = os.fork()
    if pid == 0:
        child = socket.create_server(("127.0.0.1", 0))
        print("run=1 child %s" % describe(child), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
server = socket.create_server(("127.0.0.1", 0))
print("run=%d server %s" % (run, describe(server)))
restart_until(2)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    server = sockets(output, "server")
    forked = sockets(output, "child")
    assert len(server) == 2 and server[1] == server[0], output
    assert len(forked) == 1 and forked[0]["ino"] != server[0]["ino"], output
    assert forked[0]["at"] != server[0]["at"], output
    assert "WARNING" not in output and "ignoring" not in output, output


def test_spawn_fallback_binds_afresh(spawn, tmp_path):
    # Where execv fails (macOS with threads; simulated), the new process
    # cannot inherit the socket: it binds the same port again, without a word.
    port = free_port()
    write(
        tmp_path / "prog.py",
        PRELUDE
        + f"""
import errno
import http.server


def no_execv(path, args):
    raise OSError(errno.ENOTSUP, "execv refused, as on macOS with threads")


os.execv = no_execv
Handler = http.server.BaseHTTPRequestHandler
server = http.server.HTTPServer(("127.0.0.1", {port}), Handler)
print("run=%d server %s" % (run, describe(server.socket)))
print("run=%d pid=%d" % (run, os.getpid()))
restart_until(2)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "server")
    assert len(runs) == 2 and runs[0]["at"] == runs[1]["at"] == str(port), output
    assert runs[1]["ino"] != runs[0]["ino"], output  # a new socket
    pids = re.findall(r"^run=\d pid=(\d+)$", output, re.MULTILINE)
    assert len(set(pids)) == 2, output  # really spawned
    assert "WARNING" not in output and "not adopting" not in output, output


UNIX_SERVER = """\
import asyncio

VERSION = {version}


async def handle(reader, writer):
    while await reader.readline() not in (b"\\r\\n", b"\\n", b""):
        pass
    body = b"version %d" % VERSION
    writer.write(
        b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body)
    )
    await writer.drain()
    writer.close()


async def main():
    # start_unix_server() unlinks the path of the previous run's socket.
    server = await asyncio.start_unix_server(handle, "app.sock")
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""


def fetch_unix(path: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise ConnectionResetError(f"cut short: {data!r}")
    return body.decode()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_unix_socket_whose_path_the_server_unlinks(spawn, tmp_path):
    # The path is put back when the next run's bind() adopts the socket, and
    # the hidden name that kept it is gone when the wrapper ends.
    source = versioned(UNIX_SERVER)
    app = write(tmp_path / "app.py", source(1))
    child = spawn("-m", "reloader", "--check-time", "50", app.name)
    restart_under_load(
        child,
        str(tmp_path / "app.sock"),
        lambda v: write(app, source(v)),
        fetch=fetch_unix,
    )
    child.send_signal(signal.SIGINT)
    assert child.wait_exit() == 130, child.output()
    left = sorted(path.name for path in tmp_path.iterdir() if "reloader" in path.name)
    assert left == [], child.output()


def ipv6_works() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_works(), reason="no IPv6 here")
def test_ipv6_and_dual_stack_sockets_are_kept(spawn, tmp_path):
    dual = socket.has_dualstack_ipv6()
    write(
        tmp_path / "prog.py",
        PRELUDE
        + f"""
v6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
print("run=%d v6 %s" % (run, describe(v6)))
if {dual}:
    both = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    print("run=%d both %s" % (run, describe(both)))
restart_until(3)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    for name in ("v6", "both") if dual else ("v6",):
        runs = sockets(output, name)
        assert len(runs) == 3 and runs == [runs[0]] * 3, output
    assert "not adopting" not in output and "cannot" not in output, output


def refuses(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(10)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


def test_socket_not_bound_again_is_closed_and_ports_released_at_exit(spawn, tmp_path):
    # Run 2 no longer serves on the second port: the socket kept for it is
    # closed once run 2 has started. The first port is released when the
    # wrapper ends.
    write(
        tmp_path / "prog.py",
        PRELUDE
        + """
import threading

first = socket.create_server(("127.0.0.1", 0))
print("run=%d first %s" % (run, describe(first)))
if run == 1:
    second = socket.create_server(("127.0.0.1", 0))
    print("run=%d second %s" % (run, describe(second)))
restart_until(2)
print("serving", flush=True)
threading.Event().wait()
""",
    )
    child = spawn("-m", "reloader", "prog.py")
    child.wait_for("^serving$")
    output = child.output()
    first = int(sockets(output, "first")[0]["at"])
    second = int(sockets(output, "second")[0]["at"])
    assert not refuses(first)
    deadline = time.monotonic() + 30  # closed some seconds after the start
    while not refuses(second):  # each try waits in its backlog: few tries
        assert time.monotonic() < deadline, child.output()
        time.sleep(0.5)
    assert not refuses(first)
    child.send_signal(signal.SIGINT)
    assert child.wait_exit() == 130, child.output()
    assert refuses(first)


def test_forged_hand_over_is_not_adopted(spawn, tmp_path):
    # The hand-over is checked as listening_socket()'s is: a descriptor that
    # is no longer the listening socket described (here a file put in its
    # place just before execv) is left alone, with one warning, and bind()
    # makes a new socket on the same address.
    port = free_port()
    write(
        tmp_path / "prog.py",
        PRELUDE
        + f"""
import json

server = socket.create_server(("127.0.0.1", {port}))
print("run=%d server %s" % (run, describe(server)))
if run == 1:
    forged = open(__file__, "rb")
    real_execv = os.execv

    def forge_then_execv(path, args):
        fd = json.loads(os.environ["RELOADER_SOCKETS"])["sockets"][0][1]
        os.dup2(forged.fileno(), fd)
        os.environ["FORGED"] = "%d %d" % (fd, os.fstat(fd).st_ino)
        real_execv(path, args)

    os.execv = forge_then_execv
else:
    fd, ino = map(int, os.environ["FORGED"].split())
    print("forgery still open: %s" % (os.fstat(fd).st_ino == ino))
restart_until(2)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "server")
    assert len(runs) == 2 and runs[0]["at"] == runs[1]["at"], output
    assert runs[1]["ino"] != runs[0]["ino"], output
    assert "forgery still open: True" in output, output
    assert output.count("not adopting") == 1, output


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_unix_socket_whose_path_is_gone_for_good_is_bound_afresh(spawn, tmp_path):
    # Run 1 removes its socket's path and every other name of that file: the
    # kept socket can no longer be reached, so run 2 binds a new one there.
    write(
        tmp_path / "prog.py",
        PRELUDE
        + """
server = socket.socket(socket.AF_UNIX)
server.bind("app.sock")
server.listen()
print("run=%d server %s" % (run, describe(server)))
if run == 1:
    for name in os.listdir("."):
        if name.endswith(".sock") or ".sock.reloader" in name:
            os.unlink(name)
else:
    with socket.socket(socket.AF_UNIX) as client:
        client.connect("app.sock")
        print("connected")
restart_until(2)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "server")
    assert len(runs) == 2 and runs[1]["ino"] != runs[0]["ino"], output
    assert "connected" in output and output.count("not adopting") == 1, output


def test_server_closed_and_bound_again_within_a_run(spawn, tmp_path):
    # As without reloader, a program may close its server and bind the same
    # address again (a test suite, a server restarted in-process): it gets
    # a listening socket there each time, in every run.
    port = free_port()
    write(
        tmp_path / "prog.py",
        PRELUDE
        + f"""
for attempt in range(3):
    server = socket.create_server(("127.0.0.1", {port}))
    print("run=%d server%d %s" % (run, attempt, describe(server)))
    with socket.create_connection(("127.0.0.1", {port})):
        conn, _ = server.accept()
        conn.close()
    server.close()
restart_until(2)
""",
    )
    child = spawn("-m", "reloader", "--until-success", "prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    for attempt in range(3):
        runs = sockets(output, f"server{attempt}")
        assert len(runs) == 2 and runs[0]["at"] == runs[1]["at"] == str(port), output
    assert "not adopting" not in output and "Error" not in output, output
