"""Where the restart runs: on the program's loop, or on the watcher thread.

SPEC.md, "Where the restart runs": an ``io_loop`` given to ``start()``, else
the Tornado loop current in the calling thread, else the asyncio loop running
in it, else the watcher thread named ``reloader``. Each program records, in a
reload hook, the thread the restart runs on; the restart is real.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from conftest import ready_code, write


def source(text: str) -> str:
    """Dedent ``text``; a line ``READY`` (at any indent) becomes ready_code()."""
    return re.sub(
        r"^( *)READY\n",
        lambda m: textwrap.indent(ready_code(), m[1]),
        textwrap.dedent(text),
        flags=re.MULTILINE,
    )


def restart_twice(spawn, tmp_path, program: str):
    """Run ``program``, edit it, wait for its second run; return the child."""
    prog = write(tmp_path / "prog.py", program)
    child = spawn(prog)
    child.wait_for(r"^ready run=1 ")
    write(prog, program + "# edited\n")
    child.wait_for(rf"^ready run=2 pid={child.pid}$")
    return child


HOOK = """\
import threading
import reloader

def hook():
    print("hook thread=%s" % threading.current_thread().name, flush=True)

reloader.add_reload_hook(hook)
"""


# A stand-in for an event loop: the main thread runs the callbacks handed to
# it from other threads, as Tornado's IOLoop or an asyncio loop would.
FAKE_LOOP = """\
import queue

class FakeLoop:
    def __init__(self):
        self.callbacks = queue.Queue()

    def run(self):
        while True:
            self.callbacks.get()()

def schedule_with(method):
    def schedule(self, callback, *args):
        name = threading.current_thread().name
        print("%s from thread=%s" % (method, name), flush=True)
        self.callbacks.put(lambda: callback(*args))
    setattr(FakeLoop, method, schedule)

for method in {methods!r}:
    schedule_with(method)

loop = FakeLoop()
reloader.start(io_loop=loop, check_time=50)
"""


@pytest.mark.parametrize(
    ("methods", "used"),
    [
        (["add_callback"], "add_callback"),
        (["call_soon_threadsafe"], "call_soon_threadsafe"),
        (["call_soon_threadsafe", "add_callback"], "add_callback"),
    ],
)
def test_io_loop_given_runs_the_restart(spawn, tmp_path, methods, used):
    program = HOOK + FAKE_LOOP.format(methods=methods) + source("READY\nloop.run()\n")
    child = restart_twice(spawn, tmp_path, program)
    assert re.search(
        rf"^{used} from thread=reloader\nhook thread=MainThread\nready run=2 ",
        child.output(),
        re.MULTILINE,
    ), child.output()


@pytest.mark.parametrize("thread", ["MainThread", "looper"])
def test_asyncio_loop_running_in_the_calling_thread(spawn, tmp_path, thread):
    program = source(
        f"""\
        import asyncio
        import threading
        import reloader

        def hook():
            name = threading.current_thread().name
            same = asyncio.get_running_loop() is main_loop
            print("hook thread=%s running loop is main's: %s" % (name, same))

        async def main():
            global main_loop
            main_loop = asyncio.get_running_loop()
            reloader.add_reload_hook(hook)
            reloader.start(check_time=50)
            READY
            await asyncio.sleep(3600)

        if {thread!r} == "MainThread":
            asyncio.run(main())
        else:
            looper = threading.Thread(target=asyncio.run, args=(main(),), name="looper")
            looper.start()
            looper.join()
        """
    )
    child = restart_twice(spawn, tmp_path, program)
    assert f"hook thread={thread} running loop is main's: True\n" in child.output()


@pytest.mark.parametrize(
    "imported", ["", "import asyncio\n"], ids=["nothing", "asyncio imported"]
)
def test_without_a_loop_the_watcher_thread_restarts(spawn, tmp_path, imported):
    program = (
        imported
        + HOOK
        + source(
            """\
        import time
        reloader.start(check_time=50)
        READY
        while True:
            time.sleep(0.05)
        """
        )
    )
    child = restart_twice(spawn, tmp_path, program)
    assert "hook thread=reloader\n" in child.output()


# The loop start() found has finished: closed by asyncio.run(), or stopped
# and left open after run_until_complete(). Nothing runs its callbacks now.
FINISHED_LOOPS = {
    "closed": "asyncio.run(main())\n",
    "stopped": "asyncio.new_event_loop().run_until_complete(main())\n",
}


@pytest.mark.parametrize("finished", FINISHED_LOOPS)
def test_finished_asyncio_loop_restarts_from_the_watcher_thread(
    spawn, tmp_path, finished
):
    program = (
        HOOK
        + "import asyncio\nimport time\n\n"
        + "async def main():\n    reloader.start(check_time=50)\n\n"
        + FINISHED_LOOPS[finished]
        + source("READY\nwhile True:\n    time.sleep(0.05)\n")
    )
    child = restart_twice(spawn, tmp_path, program)
    assert "hook thread=reloader\n" in child.output()


@pytest.mark.parametrize("given", [False, True], ids=["current", "io_loop="])
def test_tornado_ioloop_runs_the_restart(spawn, tmp_path, given):
    pytest.importorskip("tornado")
    program = HOOK + source(
        f"""\
        import asyncio
        from tornado.ioloop import IOLoop

        async def main():
            loop = IOLoop.current()
            add_callback = loop.add_callback

            def spy(callback, *args):
                name = threading.current_thread().name
                print("add_callback from thread=%s" % name, flush=True)
                add_callback(callback, *args)

            loop.add_callback = spy
            reloader.start(io_loop=loop if {given} else None, check_time=50)
            READY
            await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    child = restart_twice(spawn, tmp_path, program)
    assert re.search(
        r"^add_callback from thread=reloader\nhook thread=MainThread\nready run=2 ",
        child.output(),
        re.MULTILINE,
    ), child.output()
