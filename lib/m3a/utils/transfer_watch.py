"""A watchdog that ends HTTP transfers which pass their deadline or stall.

A socket timeout only fires when a server sends nothing at all; a server that trickles a byte
now and then (in the headers or the body) keeps a plain ``urllib`` download waiting forever.
``TransferWatch`` runs a thread that, for the connection currently in use, shuts the socket down
once the file's overall deadline has passed or fewer than ``stall_bytes`` body bytes arrived in
the last ``stall_seconds`` (headers included: while they trickle, no body byte arrives). The
blocked read then returns, and the reader asks ``reason`` what happened.

``opener(watch, *handlers)`` builds a ``urllib`` opener whose HTTP and HTTPS connections
register their sockets with ``watch`` (for HTTPS also during the TLS handshake).
"""
import collections
import functools
import http.client
import socket
import threading
import time
import urllib.request
from typing import Optional

DEADLINE = "deadline"
STALL = "stall"


class TransferWatch:
    """Watches one file's transfer: overall deadline (``deadline_s``) and stalls; 0 turns either off."""

    def __init__(self, deadline_s: float = 0.0, stall_bytes: int = 0, stall_seconds: float = 0.0) -> None:
        self.deadline_s = deadline_s
        self.stall_bytes = stall_bytes
        self.stall_seconds = stall_seconds
        self.reason = ""
        self.received = 0  # body bytes of the current attempt
        self._start = time.monotonic()
        self._samples: collections.deque = collections.deque()
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tick = max(0.01, min(0.25, (stall_seconds or 2.5) / 10))
        self._thread = threading.Thread(target=self._run, name="m3a-transfer-watch", daemon=True)

    def __enter__(self) -> "TransferWatch":
        self._start = time.monotonic()
        self.begin_attempt()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def remaining(self) -> float:
        """Seconds left before the deadline (infinite without one)."""
        if not self.deadline_s:
            return float("inf")
        return self.deadline_s - (time.monotonic() - self._start)

    def begin_attempt(self) -> None:
        """A new request starts: clear the stall window, the byte count and any earlier stall."""
        with self._lock:
            self.received = 0
            self._samples = collections.deque([(time.monotonic(), 0)])
            if self.reason == STALL:
                self.reason = ""
            self._sock = None

    def attach(self, sock: socket.socket) -> None:
        """The current request now runs over ``sock``; shut it at once if the watch already fired."""
        with self._lock:
            self._sock = sock
            fired = bool(self.reason)
        if fired:
            _shutdown(sock)

    def detach(self) -> None:
        """The current request is over: never touch its socket again."""
        with self._lock:
            self._sock = None

    def progress(self, nbytes: int) -> None:
        """``nbytes`` more body bytes arrived."""
        self.received += nbytes

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                reason = "" if self.reason else self._check(time.monotonic())
                if reason:
                    self.reason = reason
                sock = self._sock if reason else None
            if sock is not None:
                _shutdown(sock)

    def _check(self, now: float) -> str:
        if self.deadline_s and now - self._start >= self.deadline_s:
            return DEADLINE
        if not self.stall_seconds:
            return ""
        samples = self._samples
        samples.append((now, self.received))
        while len(samples) > 1 and samples[1][0] <= now - self.stall_seconds:
            samples.popleft()
        since, then = samples[0]
        if now - since >= self.stall_seconds and self.received - then < self.stall_bytes:
            return STALL
        return ""


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv in the reading thread
    except OSError:
        pass


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, watch: TransferWatch, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.watch = watch

    def connect(self) -> None:
        super().connect()
        self.watch.attach(self.sock)


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, watch: TransferWatch, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.watch = watch

    def connect(self) -> None:
        """As HTTPSConnection.connect, with the socket watched during the TLS handshake too."""
        http.client.HTTPConnection.connect(self)
        self.watch.attach(self.sock)
        server_hostname = self._tunnel_host or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname,
                                              do_handshake_on_connect=False)
        self.watch.attach(self.sock)
        self.sock.do_handshake()


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watch: TransferWatch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req):
        return self.do_open(functools.partial(_WatchedHTTPConnection, watch=self.watch), req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: TransferWatch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req):
        return self.do_open(functools.partial(_WatchedHTTPSConnection, watch=self.watch), req,
                            context=self._context)


def opener(watch: TransferWatch, *handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    """A urllib opener with ``handlers`` whose connections report their sockets to ``watch``."""
    return urllib.request.build_opener(_WatchedHTTPHandler(watch), _WatchedHTTPSHandler(watch), *handlers)
