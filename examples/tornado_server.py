"""A Tornado server that restarts when this file changes, refusing no one.

    pip install tornado
    python -m reloader examples/tornado_server.py   # from the repository root
    python examples/tornado_server.py               # the same

Unlike Application(debug=True), which uses tornado.autoreload, this keeps the
listening socket across restarts. The port comes from the PORT environment
variable (default 8000; 0 picks a free one, kept across restarts).
"""

import asyncio
import os
import sys

import tornado.httpserver
import tornado.web

# sys.path[0] is this folder; reloader.py lives one folder up. This lets the
# example run from a clone without installing anything.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import reloader

MESSAGE = "Hello, world!"  # edit me


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(f"{MESSAGE}\n")


async def main():
    server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Hello)]))
    # The socket the previous run handed over, or a new one: clients that
    # connect while the process restarts wait instead of being refused.
    sock = reloader.listening_socket(("127.0.0.1", int(os.environ.get("PORT", "8000"))))
    sock.setblocking(False)  # as tornado.netutil.bind_sockets() would make it
    server.add_sockets([sock])
    # Finds the IOLoop running here, so the restart runs on it
    # (start(io_loop=tornado.ioloop.IOLoop.current()) says so explicitly).
    reloader.start()
    print(f"Serving on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
