"""A plain http.server that restarts when this file changes, refusing no one.

    python -m reloader examples/hello_server.py   # from the repository root
    python examples/hello_server.py               # the same: it calls start() itself

Open the URL it prints, edit MESSAGE below, save, and reload the page. The
port comes from the PORT environment variable (default 8000; 0 picks a free
one, kept across restarts).
"""

import http.server
import os
import sys

# sys.path[0] is this folder; reloader.py lives one folder up. This lets the
# example run from a clone without installing anything.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import reloader

MESSAGE = "Hello, world!"  # edit me


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{MESSAGE}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.HTTPServer):
    """An HTTPServer whose socket, and queue of waiting clients, outlive restarts."""

    restart = None

    def server_bind(self):
        # Take the socket the previous run handed over, or a new one: clients
        # that connect while the process restarts wait instead of being refused.
        self.socket.close()
        self.socket = reloader.listening_socket(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self):
        pass  # listening_socket() listens already

    def add_callback(self, callback):
        # start(io_loop=server) hands the restart to us, so that it happens
        # between two requests, never in the middle of one.
        self.restart = callback

    def service_actions(self):
        # serve_forever() calls this after each request, and when idle.
        callback, self.restart = self.restart, None
        if callback is not None:
            callback()


server = Server(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Hello)
# Under "python -m reloader" this start() quietly takes over the wrapper's.
reloader.start(io_loop=server)
print(f"Serving on http://127.0.0.1:{server.server_address[1]}/", flush=True)
server.serve_forever(poll_interval=0.1)
