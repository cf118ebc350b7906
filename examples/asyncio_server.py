"""An asyncio server that restarts when this file changes, refusing no one.

    python -m reloader examples/asyncio_server.py   # from the repository root
    python examples/asyncio_server.py               # the same

It speaks just enough HTTP for a browser or curl. The port comes from the
PORT environment variable (default 8000; 0 picks a free one, kept across
restarts).
"""

import asyncio
import os
import sys

# sys.path[0] is this folder; reloader.py lives one folder up. This lets the
# example run from a clone without installing anything.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import reloader

MESSAGE = "Hello, world!"  # edit me


async def hello(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")  # the request's headers
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    body = f"{MESSAGE}\n".encode()
    writer.write(
        b"HTTP/1.0 200 OK\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    writer.close()


async def main():
    # The socket the previous run handed over, or a new one: clients that
    # connect while the process restarts wait instead of being refused.
    sock = reloader.listening_socket(("127.0.0.1", int(os.environ.get("PORT", "8000"))))
    server = await asyncio.start_server(hello, sock=sock)
    # Called inside the running loop, so the restart runs on it.
    reloader.start()
    print(f"Serving on http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
    await server.serve_forever()


asyncio.run(main())
