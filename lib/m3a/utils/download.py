"""Resumable, verified HTTP(S) downloads (standard library only), with Google Drive support.

A download streams into ``FILE.part``; an interrupted transfer resumes from the bytes already
there with an HTTP ``Range`` request (a server that ignores it and answers 200 restarts the file);
transient failures are retried with exponential back-off; the finished file is checked against
its SHA-256 and only then renamed to ``FILE``. A file whose hash does not match is moved to
``FILE.corrupt`` and never left under the final name.

Google Drive answers a large file's first request with an HTML page asking to confirm the
download (a ``download_warning`` cookie, a link carrying ``confirm=``, or a form posting to
``drive.usercontent.google.com/download`` with ``confirm``/``uuid`` fields); the page is parsed
and followed. Any other HTML page served instead of a file is an error.
"""
import dataclasses
import hashlib
import html
import http.client
import http.cookiejar
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from typing import Callable, Dict, List, Optional, Tuple

from tqdm import tqdm

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
USER_AGENT = "m3a-downloader/1.0"
_DRIVE_ID_PATTERNS = (
    re.compile(r"drive\.google\.com/file/d/([A-Za-z0-9_-]+)"),
    re.compile(r"drive\.google\.com/open\?(?:.*&)?id=([A-Za-z0-9_-]+)"),
    re.compile(r"drive\.google\.com/uc\?(?:.*&)?id=([A-Za-z0-9_-]+)"),
)


class DownloadError(RuntimeError):
    """An expected download failure (HTTP error, HTML page, checksum mismatch, retries used up)."""


class _RetryableError(Exception):
    """A transient failure worth another attempt (connection lost, short body, 5xx)."""


@dataclasses.dataclass
class DownloadResult:
    """Where a download ended up, its SHA-256, and whether that hash was checked against one given."""

    path: str
    sha256: str
    verified: bool
    downloaded: bool


def sha256_file(path: str, chunk_size: int = CHUNK_SIZE) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def normalize_drive_url(url: str) -> str:
    """Turn a Google Drive share link (``/file/d/ID/view``) into its direct-download form."""
    for pattern in _DRIVE_ID_PATTERNS:
        match = pattern.search(url)
        if match:
            return f"https://drive.google.com/uc?export=download&id={match.group(1)}"
    return url


class _FormParser(HTMLParser):
    """Collect forms (action, method, hidden/named inputs) and link targets of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: List[Tuple[str, Dict[str, str]]] = []
        self.links: List[str] = []
        self._form: Optional[Tuple[str, Dict[str, str]]] = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = (a.get("action", ""), {})
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form[1][a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def confirmation_url(page: str, page_url: str, cookies: Dict[str, str]) -> Optional[str]:
    """The URL that confirms a Google-Drive-style "large file" warning page, or None.

    Looks, in order, for a form carrying a ``confirm`` field (its action plus its fields as a
    query), a link whose query has ``confirm=``, and a ``download_warning`` cookie (its value
    becomes ``confirm`` on the page's URL).
    """
    parser = _FormParser()
    parser.feed(page)
    for action, fields in parser.forms:
        if "confirm" in fields:
            target = urllib.parse.urljoin(page_url, html.unescape(action) or page_url)
            base = target.split("?", 1)[0]
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
            query.update(fields)
            return f"{base}?{urllib.parse.urlencode(query)}"
    for href in parser.links:
        href = html.unescape(href)
        if "confirm=" in urllib.parse.urlsplit(href).query:
            return urllib.parse.urljoin(page_url, href)
    for name, value in cookies.items():
        if name.startswith("download_warning"):
            parts = urllib.parse.urlsplit(page_url)
            query = dict(urllib.parse.parse_qsl(parts.query))
            query["confirm"] = value
            return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return None


def _looks_like_html(content_type: str, head: bytes) -> bool:
    if content_type.split(";")[0].strip().lower() == "text/html":
        return True
    start = head.lstrip()[:15].lower()
    return start.startswith(b"<!doctype html") or start.startswith(b"<html")


def _content_range_start(value: str) -> Optional[int]:
    match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", value or "")
    return int(match.group(1)) if match else None


class Downloader:
    """Downloads one URL to one file with resume, retries, Drive confirmation and verification.

    ``retries`` bounds the attempts after the first; the wait before attempt ``k`` is
    ``backoff * 2**(k-1)`` seconds (tests pass a tiny ``backoff``).
    """

    def __init__(
        self,
        retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 60.0,
        chunk_size: int = CHUNK_SIZE,
        progress: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.progress = progress
        self._sleep = sleep
        self.url = ""
        self._cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._cookies))

    def _open(self, url: str, offset: int) -> http.client.HTTPResponse:
        headers = {"User-Agent": USER_AGENT}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 416 and offset > 0:
                raise
            if err.code >= 500 or err.code in (408, 429):
                raise _RetryableError(f"HTTP {err.code} {err.reason}") from None
            raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise _RetryableError(f"cannot connect to {url}: {getattr(err, 'reason', err)}") from None

    def _cookie_dict(self) -> Dict[str, str]:
        return {c.name: c.value for c in self._cookies}

    def _attempt(self, part: str, desc: str) -> None:
        """Bring ``part`` to the full file from ``self.url``, following confirmation pages."""
        for _ in range(3):
            url = self.url  # at most two confirmation pages before the file itself
            offset = os.path.getsize(part) if os.path.exists(part) else 0
            try:
                response = self._open(url, offset)
            except urllib.error.HTTPError:  # 416: the part already holds the whole file
                return
            with response:
                status = response.status
                head = response.read(min(self.chunk_size, 4096)) if status == 200 or offset == 0 else b""
                content_type = response.headers.get("Content-Type", "")
                if status == 200 and _looks_like_html(content_type, head):
                    page = (head + response.read(2 << 20)).decode("utf-8", "replace")
                    next_url = confirmation_url(page, response.geturl(), self._cookie_dict())
                    if next_url is None or next_url == url:
                        raise DownloadError(
                            f"{url} served an HTML page instead of the file (for Google Drive: the "
                            "file is not shared publicly or its download quota is exceeded)"
                        )
                    logger.info("Following download confirmation page to %s", next_url)
                    self.url = next_url  # later attempts resume from the confirmed URL
                    continue
                if status == 206:
                    if _content_range_start(response.headers.get("Content-Range")) != offset:
                        os.remove(part)
                        raise _RetryableError("server answered a different byte range; restarting")
                    mode, done = "ab", offset
                else:  # 200: the server sent the whole file (it ignored or lacks Range support)
                    if offset:
                        logger.info("Server ignored the Range request; restarting %s", desc)
                    mode, done = "wb", 0
                length = response.headers.get("Content-Length")
                total = done + int(length) if length is not None else None
                self._stream(response, part, mode, head, done, total, desc)
                return
        raise DownloadError(f"{self.url}: too many download confirmation pages")

    def _stream(self, response, part: str, mode: str, head: bytes, done: int, total: Optional[int], desc: str) -> None:
        bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=desc, disable=not self.progress)
        try:
            with open(part, mode) as f:
                if head:
                    f.write(head)
                    done += len(head)
                    bar.update(len(head))
                while True:
                    try:
                        block = response.read(self.chunk_size)
                    except (OSError, http.client.HTTPException) as err:
                        raise _RetryableError(f"connection lost after {done} bytes: {err}") from None
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if total is not None and done < total:
            raise _RetryableError(f"connection closed after {done} of {total} bytes")

    def fetch(self, url: str, out: str, sha256: str = "") -> DownloadResult:
        """Download ``url`` to ``out``; verify against ``sha256`` when given (else record it)."""
        expected = sha256.strip().lower()
        if os.path.isfile(out):
            actual = sha256_file(out)
            if not expected or actual == expected:
                return DownloadResult(out, actual, bool(expected), downloaded=False)
            corrupt = out + ".corrupt"
            os.replace(out, corrupt)
            logger.warning("%s does not match its SHA-256; moved it to %s and downloading again", out, corrupt)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        part = out + ".part"
        self.url = normalize_drive_url(url)
        desc = os.path.basename(out)
        for attempt in range(self.retries + 1):
            if attempt:
                wait = self.backoff * 2 ** (attempt - 1)
                logger.info("Retrying %s in %.2fs (attempt %d of %d)", desc, wait, attempt + 1, self.retries + 1)
                self._sleep(wait)
            try:
                self._attempt(part, desc)
                break
            except (_RetryableError, socket.timeout, OSError, http.client.HTTPException) as err:
                last = err
                logger.warning("Download of %s interrupted: %s", desc, err)
        else:
            raise DownloadError(f"giving up on {self.url} after {self.retries + 1} attempts: {last}")
        actual = sha256_file(part)
        if expected and actual != expected:
            corrupt = out + ".corrupt"
            os.replace(part, corrupt)
            raise DownloadError(
                f"SHA-256 mismatch for {out}: expected {expected}, got {actual}; the file was moved to {corrupt}"
            )
        os.replace(part, out)
        return DownloadResult(out, actual, bool(expected), downloaded=True)

