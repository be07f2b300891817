"""A PhysioNet-like HTTP server on 127.0.0.1, with faults on demand: the download tests use it, and
`ecgproto rehearsal` serves a full-size synthetic PTB-XL with it."""
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Faults:
    def __init__(self):
        self.corrupt, self.missing, self.hang = set(), set(), set()
        self.trickle = set()   # 1 byte per 0.2 s, with an honest Content-Length
        self.endless = set()   # a body that never ends, without Content-Length
        self.replace = {}      # path -> bytes served instead of the file
        self.delay = 0.0       # seconds before every answer
        self.requests = []     # paths asked for, in order
        self.log = []          # (time.monotonic(), path) of each request: one append, so threads cannot misalign it


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, faults, prefix, root, **kwargs):
        self.faults, self.prefix, self.root = faults, prefix, root
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.startswith(self.prefix):
            self.send_error(404)
            return
        rel = self.path[len(self.prefix):]
        self.faults.requests.append(rel)
        self.faults.log.append((time.monotonic(), rel))
        time.sleep(self.faults.delay)
        if rel in self.faults.missing:
            self.send_error(404)
            return
        if rel in self.faults.hang:
            time.sleep(5)
            return
        if rel in self.faults.trickle:
            body = (self.root / rel).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.2)
            return
        if rel in self.faults.endless:
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except OSError:  # the client hung up
                return
        if rel in self.faults.replace:
            body = self.faults.replace[rel]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if rel in self.faults.corrupt:
            body = bytearray((self.root / rel).read_bytes())
            body[len(body) // 2] ^= 0xFF
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(bytes(body))
            return
        self.path = "/" + rel
        super().do_GET()


class LocalPhysioNet:
    """Serves `root` at http://127.0.0.1:<port>/files/ptb-xl/<version>/ until stopped."""

    def __init__(self, root, version="1.0.3"):
        self.faults = Faults()
        prefix = f"/files/ptb-xl/{version}/"
        handler = partial(_Handler, faults=self.faults, prefix=prefix, root=Path(root), directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}/files/ptb-xl/"
        self.url = self.base + f"{version}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
