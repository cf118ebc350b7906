"""listening_socket(): a server's port stays open, and refuses no one, across restarts.

Each test runs a real program that restarts itself for real and checks, in
the next run, which socket it got: its descriptor, its port, and its inode
(``os.fstat`` of a socket names it, and survives ``execv``). See "Keeping a
listening socket across restarts" in SPEC.md.
"""

from __future__ import annotations

import ast
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import free_port, ready_code, write

# What every program here starts with: ``run`` counts 1, 2, ... across
# restarts (the environment survives execv, and reaches a spawned process),
# and describe() names a socket.
PRELUDE = """\
import os
import socket
import sys

import reloader

run = int(os.environ.get("TEST_RUN", "1"))


def next_run():
    os.environ["TEST_RUN"] = str(run + 1)


def describe(sock):
    fd = sock.fileno()
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    return "fd=%d port=%d ino=%d listening=%d" % (
        fd, sock.getsockname()[1], os.fstat(fd).st_ino, listening
    )
"""

SOCKET_LINE = r"fd=(?P<fd>\d+) port=(?P<port>\d+) ino=(?P<ino>\d+) listening=1"


def program(body: str) -> str:
    return PRELUDE + body


def sockets(output: str, name: str) -> list[dict[str, int]]:
    """Per run, the socket that the line ``run=N <name> fd=...`` describes."""
    found = re.finditer(rf"^run=(\d+) {name} {SOCKET_LINE}$", output, re.MULTILINE)
    result = []
    for run, match in enumerate(found, start=1):
        assert match.group(1) == str(run), output
        result.append({k: int(v) for k, v in match.groupdict().items()})
    return result


# ---------------------------------------------------------------------------
# Keeping the socket: port 0, several addresses, like a new socket.


def test_each_address_keeps_its_own_socket(spawn, tmp_path):
    # Two servers asking for port 0 (HTTP and admin, say) and a third with
    # other options: each keeps the socket, and so the port, its first run got.
    write(
        tmp_path / "prog.py",
        program("""
http = reloader.listening_socket(("127.0.0.1", 0))
admin = reloader.listening_socket(("127.0.0.1", 0))
other = reloader.listening_socket(("127.0.0.1", 0), backlog=7)
for name, sock in [("http", http), ("admin", admin), ("other", other)]:
    print("run=%d %s %s" % (run, name, describe(sock)))
if run < 3:
    next_run()
    reloader.restart()
"""),
    )
    child = spawn("prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    first = {}
    for name in ("http", "admin", "other"):
        runs = sockets(output, name)
        assert len(runs) == 3, output
        assert runs == [runs[0]] * 3, output  # same fd, port and inode
        first[name] = runs[0]
    assert len({found["port"] for found in first.values()}) == 3, output
    assert len(output.splitlines()) == 9, output  # and not one warning


def test_edited_address_binds_a_port_the_old_socket_held(spawn, tmp_path):
    # Run 2 asks for the same port with an option that bind() depends on
    # (SO_REUSEPORT; a backlog is not one: the kept socket listens again) the
    # socket handed over for the old address, unclaimed, must not hold the
    # port against it. Run 3 then keeps run 2's socket.
    port = free_port()
    write(
        tmp_path / "prog.py",
        program(f"""
options = {{}} if run == 1 else {{"reuse_port": True}}
sock = reloader.listening_socket(("127.0.0.1", {port}), **options)
print("run=%d sock %s" % (run, describe(sock)))
if run < 3:
    next_run()
    reloader.restart()
"""),
    )
    child = spawn("prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "sock")
    assert [found["port"] for found in runs] == [port] * 3, output
    assert runs[1]["ino"] != runs[0]["ino"] and runs[2] == runs[1], output
    assert len(output.splitlines()) == 3, output  # and not one warning


def test_adopted_socket_is_like_a_new_one(spawn, tmp_path):
    # Blocking, as create_server() makes it, even though the previous run made
    # it non-blocking (asyncio and Tornado do); not inherited by the program's
    # own child processes, nor is the variable that handed it over.
    write(
        tmp_path / "prog.py",
        program("""
import subprocess

sock = reloader.listening_socket(("127.0.0.1", 0))
print("run=%d sock %s" % (run, describe(sock)))
print("run=%d timeout=%r blocking=%s inheritable=%s" % (
    run, sock.gettimeout(), os.get_blocking(sock.fileno()),
    os.get_inheritable(sock.fileno()),
))
CHILD = '''
import os, sys
try:
    os.fstat(int(sys.argv[1]))
except OSError:
    state = "closed"
else:
    state = "open"
print("run=%s child: fd %s, variable %s" % (
    sys.argv[2], state, "RELOADER_SOCKETS" in os.environ
))
'''
subprocess.run(
    [sys.executable, "-c", CHILD, str(sock.fileno()), str(run)], close_fds=False
)
if run == 1:
    sock.setblocking(False)
    next_run()
    reloader.restart()
"""),
    )
    child = spawn("prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "sock")
    assert len(runs) == 2 and runs[1] == runs[0], output
    expected = [
        "run=1 timeout=None blocking=True inheritable=False",
        "run=1 child: fd closed, variable False",
        "run=2 timeout=None blocking=True inheritable=False",
        "run=2 child: fd closed, variable False",
    ]
    assert [line for line in output.splitlines() if " sock " not in line] == expected


# ---------------------------------------------------------------------------
# A hand-over that does not check out: one warning, and a fresh socket.


@pytest.mark.parametrize("value", ["not json", "42", "null", "[]", "{}"])
def test_malformed_variable_is_ignored(spawn, tmp_path, value):
    write(
        tmp_path / "prog.py",
        program("""
first = reloader.listening_socket(("127.0.0.1", 0))
second = reloader.listening_socket(("127.0.0.1", 0))
print("run=1 first %s" % describe(first))
print("run=1 second %s" % describe(second))
"""),
    )
    child = spawn("prog.py", env={"RELOADER_SOCKETS": value})
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    assert len(sockets(output, "first")) == len(sockets(output, "second")) == 1
    warnings = [line for line in output.splitlines() if "RELOADER_SOCKETS" in line]
    assert len(warnings) == 1, output
    assert warnings[0].startswith(f"ignoring RELOADER_SOCKETS={value!r}: "), output


# Something else put at the socket's descriptor after the hand-over was
# written: each must be refused, and left open (it is not ours to close).
FORGERIES = {
    "regular file": 'open(__file__, "rb")',
    "bound, not listening": 'make_bound(socket.socket(), ("127.0.0.1", 0))',
    "UDP on the same address": (
        "make_bound(socket.socket(type=socket.SOCK_DGRAM), sock.getsockname())"
    ),
    "listening elsewhere": 'socket.create_server(("127.0.0.1", 0))',
    "listening, Unix": 'socket.create_server("unix.sock", family=socket.AF_UNIX)',
    "closed": "None",
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_descriptor_is_not_adopted(spawn, tmp_path, forgery):
    if forgery == "listening, Unix" and not hasattr(socket, "AF_UNIX"):
        pytest.skip("no Unix sockets here")
    write(
        tmp_path / "prog.py",
        program(f"""
import json


def make_bound(sock, address):
    sock.bind(address)
    return sock


sock = reloader.listening_socket(("127.0.0.1", 0))
print("run=%d sock %s" % (run, describe(sock)))
if run == 1:
    forged = {FORGERIES[forgery]}
    if forged is not None:
        print("forged ino=%d" % os.fstat(forged.fileno()).st_ino)
    real_execv = os.execv

    def forge_then_execv(path, args):
        # The hand-over is written: now put the forgery at its descriptor.
        fd = json.loads(os.environ["RELOADER_SOCKETS"])["sockets"][0][1]
        os.environ["FORGED_FD"] = str(fd)
        print("forged fd=%d" % fd)
        if forged is None:
            os.close(fd)
        else:
            os.dup2(forged.fileno(), fd)
        real_execv(path, args)

    os.execv = forge_then_execv
    next_run()
    reloader.restart()
else:
    try:
        print("left open ino=%d" % os.fstat(int(os.environ["FORGED_FD"])).st_ino)
    except OSError:
        pass  # the "closed" forgery
"""),
    )
    child = spawn("prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "sock")
    assert len(runs) == 2, output
    fd = int(re.search(r"^forged fd=(\d+)$", output, re.MULTILINE).group(1))
    assert runs[1]["ino"] != runs[0]["ino"], output  # a new socket
    if forgery != "closed":
        assert runs[1]["fd"] != fd, output  # the forgery still holds fd
    warnings = [line for line in output.splitlines() if "adopting" in line]
    assert len(warnings) == 1, output
    assert warnings[0].startswith(f"not adopting socket fd {fd} for "), output
    # Refused, but not closed: it may be any open file of the program's.
    forged = re.search(r"^forged (ino=\d+)$", output, re.MULTILINE)
    if forged is not None:
        assert f"\nleft open {forged.group(1)}\n" in output, output


def test_variable_inherited_by_a_child_process_is_ignored(spawn, tmp_path):
    # The program starts a child right after the hand-over is written (here in
    # place of execv): the child inherits the variable and the descriptor, but
    # it is another process, so it makes a socket of its own.
    write(
        tmp_path / "prog.py",
        program("""
import subprocess

sock = reloader.listening_socket(("127.0.0.1", 0))
print("run=%d sock %s" % (run, describe(sock)))
print("run=%d pid=%d" % (run, os.getpid()))
if run == 1:
    os.execv = lambda path, args: os._exit(subprocess.call(args, close_fds=False))
    next_run()
    reloader.restart()
"""),
    )
    child = spawn("prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "sock")
    assert len(runs) == 2, output
    # The parent still holds its socket: the child's cannot have its port.
    assert runs[1]["port"] != runs[0]["port"], output
    pid = re.search(r"^run=1 pid=(\d+)$", output, re.MULTILINE).group(1)
    warnings = [line for line in output.splitlines() if "RELOADER_SOCKETS" in line]
    assert len(warnings) == 1, output
    assert warnings[0].endswith(f": written by process {pid}, not this one"), output


def test_spawn_fallback_binds_the_same_port_afresh(spawn, tmp_path):
    # Where execv fails (macOS with threads; simulated), the restart spawns a
    # new process: it cannot inherit the socket, so it binds the same port
    # again, which works because the old process closed its socket first.
    port = free_port()
    write(
        tmp_path / "prog.py",
        program(f"""
import errno


def no_execv(path, args):
    raise OSError(errno.ENOTSUP, "execv refused, as on macOS with threads")


os.execv = no_execv
sock = reloader.listening_socket(("127.0.0.1", {port}))
print("run=%d sock %s" % (run, describe(sock)))
print("run=%d pid=%d" % (run, os.getpid()))
if run == 1:
    next_run()
    reloader.restart()
"""),
    )
    child = spawn("prog.py")
    assert child.wait_exit() == 0, child.output()
    output = child.output()
    runs = sockets(output, "sock")
    assert [found["port"] for found in runs] == [port, port], output
    assert runs[1]["ino"] != runs[0]["ino"], output  # a new socket
    pids = re.findall(r"^run=\d pid=(\d+)$", output, re.MULTILINE)
    assert len(set(pids)) == 2, output  # really spawned
    assert len(output.splitlines()) == 4, output  # and not one warning


# ---------------------------------------------------------------------------
# Twenty restarts under load: not one connection refused.

RESTARTS = 20

# A single-threaded http.server (as examples/hello_server.py) whose restart
# runs between two requests, never during one: start(io_loop=server) hands
# it to add_callback(). GET /restart restarts it through restart(); an edit
# changes VERSION. Before serving, it lists its open descriptors.
SERVER = """\
import http.server
import os

import reloader

VERSION = {version}  # {padding}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"version %d" % VERSION
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/restart":
            self.server.add_callback(reloader.restart)

    def log_message(self, format, *args):
        pass  # thousands of requests: keep the log to the handshake


class Server(http.server.HTTPServer):
    restart = None

    def server_bind(self):
        self.socket.close()
        self.socket = reloader.listening_socket(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self):
        pass

    def add_callback(self, callback):
        self.restart = callback

    def service_actions(self):
        callback, self.restart = self.restart, None
        if callback is not None:
            callback()


def descriptors():
    table = {{}}
    for name in os.listdir("/proc/self/fd"):
        try:
            table[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass  # the listing's own descriptor, closed since
    return sorted(table.items())


server = Server(("127.0.0.1", 0), Handler)
reloader.stop()  # the wrapper's watcher: no file of its open while listing
print("fds", descriptors())
reloader.start(io_loop=server, check_time=50)
print("url http://127.0.0.1:%d/" % server.server_address[1])
"""


def server_source(version: int) -> str:
    # The padding grows with the version, so every edit changes the size.
    source = SERVER.format(version=version, padding="." * version)
    return source + ready_code() + "server.serve_forever(poll_interval=0.02)\n"


class Client(threading.Thread):
    """Requests ``url`` in a loop, as fast as it can, recording every outcome."""

    def __init__(self, url: str) -> None:
        super().__init__(name="client", daemon=True)
        self.url = url
        self.answers: list[str] = []
        self.errors: list[str] = []
        self.refused = 0
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + 60

    def run(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while (
            not self.stopping.is_set()
            and len(self.answers) + len(self.errors) < 100_000
            and time.monotonic() < self.deadline
        ):
            try:
                with opener.open(self.url, timeout=10) as response:
                    self.answers.append(response.read().decode())
            except urllib.error.HTTPError as e:
                e.close()
                self.errors.append(repr(e))
            except Exception as e:  # recorded, and the test fails on it
                reason = getattr(e, "reason", e)
                self.refused += isinstance(reason, ConnectionRefusedError)
                self.errors.append(repr(e))

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert not self.is_alive()


def get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.read().decode()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="lists descriptors in /proc"
)
def test_restarts_refuse_no_connection(spawn, tmp_path):
    server = write(tmp_path / "server.py", server_source(1))
    child = spawn("-m", "reloader", "--check-time", "50", server.name)
    url = child.wait_for(r"^url (\S+)$").group(1)
    child.wait_for(r"^ready run=1 ")
    client = Client(url)
    client.start()
    started = time.monotonic()
    version = 1
    try:
        for restart in range(1, RESTARTS + 1):
            if restart % 2:  # by restart(), after this request
                assert get(url + "restart") == f"version {version}"
            else:  # by an edit
                version += 1
                write(server, server_source(version))
            child.wait_for(rf"^ready run={restart + 1} ", timeout=20)
        # Until the client has had an answer from the last version.
        while f"version {version}" not in client.answers[-1:]:
            assert client.is_alive() and time.monotonic() - started < 60
            time.sleep(0.05)
    finally:
        client.stop()
    elapsed = time.monotonic() - started
    attempted = len(client.answers) + len(client.errors)
    print(
        f"\n{RESTARTS} restarts in {elapsed:.1f} s under a client looping on "
        f"{url}: {attempted} connections attempted, {client.refused} refused, "
        f"{len(client.errors)} failed"
    )
    assert client.refused == 0, client.errors[:10]
    assert client.errors == []
    # Every answer came from the code running then: old or new, never older.
    seen = [int(answer.split()[1]) for answer in client.answers]
    assert all(re.fullmatch(r"version \d+", answer) for answer in client.answers)
    assert seen == sorted(seen) and seen[0] == 1 and seen[-1] == version
    assert len(re.findall(r"^url ", child.output(), re.MULTILINE)) == RESTARTS + 1
    assert set(re.findall(r"^url (\S+)$", child.output(), re.MULTILINE)) == {url}
    # No descriptor leaks: run 21 has exactly what run 1 had, the kept socket
    # (same descriptor, same inode) included.
    tables = re.findall(r"^fds (.*)$", child.output(), re.MULTILINE)
    assert len(tables) == RESTARTS + 1

    def opened(table: str) -> list[str]:
        # What the files are, not their numbers, which a shared library the
        # loader keeps open (libffi on Debian's 3.14, once ctypes is
        # imported in the watcher thread) can shift.
        return sorted(t for _, t in ast.literal_eval(table) if ".so" not in t)

    assert opened(tables[-1]) == opened(tables[0])
