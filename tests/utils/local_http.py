"""A real HTTP server on 127.0.0.1 (ephemeral port, own thread) that plays file-hosting behaviours.

Files are served with a strong ETag and a Last-Modified date derived from their content, and
``If-Range`` is honoured (a validator that does not match gets the whole file, as RFC 9110 says).
Requests may also arrive through it as an HTTP proxy (absolute URIs such as
``http://www.dropbox.com/sh/...``): only the path and query are used.
"""
import email.utils
import hashlib
import http.server
import re
import threading
import time
import urllib.parse
from typing import Dict, List, Optional, Tuple


class FileHost:
    """Serves ``files`` by name with behaviours chosen per name; records every request."""

    def __init__(self, files: Dict[str, bytes]) -> None:
        self.files = files
        self.requests: List[dict] = []
        self.cut_first: Dict[str, int] = {}  # name -> how many first responses stop mid-body
        self.ignore_range: set = set()
        self.fail_first: Dict[str, int] = {}  # name -> how many first responses are HTTP 503
        self.ignore_if_range: set = set()  # names whose Range is honoured whatever If-Range says
        self.no_validators: set = set()  # names served without ETag and Last-Modified
        self.no_length: set = set()  # names served without Content-Length (the body ends when the connection closes)
        self.trickle: Dict[str, Tuple[int, float]] = {}  # name -> (bytes per write, seconds between writes)
        self.slow_headers: Dict[str, float] = {}  # name -> seconds between the bytes of the header block
        self.dropbox: Dict[str, str] = {}  # share path (sh/ID/KEY) -> file its dl=1 answer serves (serve_dropbox)
        self.drive_token = "t0k3n"
        self.drive_uuid = "u-123"
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                host._handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> "FileHost":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve_dropbox(self, share_path: str, name: str) -> None:
        """Answer ``share_path`` as Dropbox does: a preview page unless ``dl=1``, which redirects to
        ``zip_download_get/NAME``, served without length or validators (an archive built on the fly)."""
        self.dropbox[share_path.strip("/")] = name
        self.no_length.add(name)
        self.no_validators.add(name)

    def count(self, name: str) -> int:
        return sum(1 for r in self.requests if r["name"] == name)

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        route = parts.path.strip("/")
        name = query.get("id", route) if route.startswith("drive/") else route
        if route.startswith("zip_download_get/"):
            name = route.split("/", 1)[1]
        self.requests.append({"route": route, "name": name, "range": h.headers.get("Range"), "query": query,
                              "cookie": h.headers.get("Cookie"), "if_range": h.headers.get("If-Range")})
        if route in self.dropbox:
            if query.get("dl") != "1":
                return self._send(h, 200, b"<!DOCTYPE html><html><body>Dropbox preview</body></html>", "text/html")
            return self._send(h, 302, b"", "text/plain", {"Location": f"/zip_download_get/{self.dropbox[route]}"})
        if route == "page.html":
            return self._send(h, 200, b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html")
        if route == "drive/uc":
            return self._drive_form(h, name)
        if route == "drive/cookie":
            return self._drive_cookie(h, name, query)
        if route == "drive/usercontent/download":
            if query.get("confirm") != self.drive_token or query.get("uuid") != self.drive_uuid:
                return self._send(h, 400, b"bad confirm", "text/plain")
        if name not in self.files:
            return self._send(h, 404, b"not found", "text/plain")
        if self.fail_first.get(name, 0) > 0:
            self.fail_first[name] -= 1
            return self._send(h, 503, b"busy", "text/plain")
        self._send_file(h, name)

    def _drive_form(self, h, name: str) -> None:
        page = (
            "<!DOCTYPE html><html><body><p>Google Drive can't scan this file for viruses.</p>"
            '<form id="download-form" action="/drive/usercontent/download" method="get">'
            '<input type="submit" value="Download anyway"/>'
            f'<input type="hidden" name="id" value="{name}">'
            '<input type="hidden" name="export" value="download">'
            f'<input type="hidden" name="confirm" value="{self.drive_token}">'
            f'<input type="hidden" name="uuid" value="{self.drive_uuid}"></form></body></html>'
        )
        self._send(h, 200, page.encode(), "text/html; charset=utf-8")

    def _drive_cookie(self, h, name: str, query: dict) -> None:
        cookie_ok = f"download_warning_1={self.drive_token}" in (h.headers.get("Cookie") or "")
        if query.get("confirm") == self.drive_token and cookie_ok:
            return self._send_file(h, name)
        page = b"<html><body>This file is too large to scan.</body></html>"
        self._send(h, 200, page, "text/html", {"Set-Cookie": f"download_warning_1={self.drive_token}; Path=/"})

    def _send(self, h, code: int, body: bytes, ctype: str, extra: Optional[dict] = None) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def validators(self, name: str) -> Dict[str, str]:
        """The ETag and Last-Modified headers the current content of ``name`` is served with."""
        if name in self.no_validators:
            return {}
        digest = hashlib.sha256(self.files[name]).hexdigest()
        modified = email.utils.formatdate(1_700_000_000 + int(digest[:6], 16), usegmt=True)
        return {"ETag": f'"{digest[:16]}"', "Last-Modified": modified}

    def _send_file(self, h, name: str) -> None:
        data = self.files[name]
        start = 0
        validators = self.validators(name)
        if_range = h.headers.get("If-Range")
        fresh = if_range is None or if_range in validators.values() or name in self.ignore_if_range
        match = re.match(r"bytes=(\d+)-$", h.headers.get("Range") or "")
        headers = dict(validators, **{"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"})
        if match and fresh and name not in self.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                return self._send(h, 416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
            code = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        else:
            code = 200
        body = data[start:]
        if name in self.no_length:
            headers["Connection"] = "close"
            h.close_connection = True
        else:
            headers["Content-Length"] = str(len(body))
        try:
            self._write_head(h, code, headers, self.slow_headers.get(name, 0.0))
            self._write_body(h, name, body)
        except OSError:  # the client gave up (as a stalled or over-long download should)
            h.close_connection = True

    def _write_head(self, h, code: int, headers: Dict[str, str], delay: float) -> None:
        if not delay:
            h.send_response(code)
            for k, v in headers.items():
                h.send_header(k, v)
            return h.end_headers()
        block = f"HTTP/1.1 {code} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        for i in range(len(block)):  # one byte at a time: never silent for long, never done
            h.wfile.write(block[i].encode("latin-1"))
            h.wfile.flush()
            time.sleep(delay)

    def _write_body(self, h, name: str, body: bytes) -> None:
        if self.cut_first.get(name, 0) > 0:
            self.cut_first[name] -= 1
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # drop the connection mid-body
            return
        step, delay = self.trickle.get(name, (len(body) or 1, 0.0))
        for i in range(0, len(body), step):
            h.wfile.write(body[i : i + step])
            h.wfile.flush()
            time.sleep(delay)
