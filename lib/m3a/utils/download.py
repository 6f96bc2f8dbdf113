"""Resumable, verified, bounded HTTP(S) downloads (standard library only), with Google Drive support.

A download streams into ``FILE.part``. Beside it, ``FILE.part.json`` records which remote file
the bytes belong to: the URL, the size the server announced and its validator (a strong ETag or
Last-Modified). An interrupted transfer resumes only against that record: an HTTP ``Range``
request with ``If-Range``, and a ``206`` answer whose ``Content-Range`` start and total (and
ETag) match. A ``.part`` without a usable record, for another URL, longer than the file, refused
with HTTP 416, or answered with a changed file (``200``) is discarded and the file fetched from
the start. A resumed file whose size differs from the server's is never accepted.

Transient failures are retried with exponential back-off. Each file has an overall deadline
(retries and waits included) and stall detection: an attempt during which fewer than
``stall_bytes`` arrive in ``stall_seconds`` is abandoned (``m3a.utils.transfer_watch``). A body
may not exceed the file's known size or ``max_size`` (also when no Content-Length is sent).
The finished file is checked against its SHA-256 and only then renamed to ``FILE``. A file whose
hash does not match is moved to ``FILE.corrupt`` and never left under the final name.

Google Drive answers a large file's first request with an HTML page asking to confirm the
download (a ``download_warning`` cookie, a link carrying ``confirm=``, or a form posting to
``drive.usercontent.google.com/download`` with ``confirm``/``uuid`` fields); the page is parsed
and followed. Any other HTML page served instead of a file is an error.

Dropbox share links (``/s/``, ``/sh/``, ``/scl/fi/``, ``/scl/fo/`` on www.dropbox.com) open a
preview page with ``dl=0``; they are rewritten to ``dl=1`` (other query fields such as ``rlkey``
kept), which answers a file link with the file and a folder link with a ZIP archive of the folder
(``m3a.utils.archive`` takes one file out of it).
"""
import dataclasses
import hashlib
import html
import json
import http.client
import http.cookiejar
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from typing import Callable, Dict, List, Optional, Tuple

from tqdm import tqdm

from m3a.utils import transfer_watch
from m3a.utils.file_io import atomic_write_text

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
DEADLINE_S = 7200.0  # per file, retries included
STALL_BYTES = 64 << 10  # fewer than this many bytes ...
STALL_SECONDS = 60.0  # ... in this many seconds: the attempt has stalled
MAX_SIZE = 4 << 30  # bytes, for a file whose exact size is not known beforehand
RECORD_SUFFIX = ".json"  # FILE.part.json: what FILE.part is a prefix of
USER_AGENT = "m3a-downloader/1.0"
_DRIVE_ID_PATTERNS = (
    re.compile(r"drive\.google\.com/file/d/([A-Za-z0-9_-]+)"),
    re.compile(r"drive\.google\.com/open\?(?:.*&)?id=([A-Za-z0-9_-]+)"),
    re.compile(r"drive\.google\.com/uc\?(?:.*&)?id=([A-Za-z0-9_-]+)"),
)
DROPBOX_HOSTS = ("www.dropbox.com", "dropbox.com")
# Share-link paths: files (/s/, /scl/fi/) and folders (/sh/, /scl/fo/).
_DROPBOX_SHARE_PATHS = ("/s/", "/sh/", "/scl/fi/", "/scl/fo/")


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


def existing_file(out: str, expected: str) -> Optional[DownloadResult]:
    """``out`` as it is, when it exists and matches the SHA-256 ``expected`` (or none is expected).

    A file that does not match is moved to ``out``.corrupt (logged) and None is returned, as it
    is when there is no file: the caller downloads it (again).
    """
    if not os.path.isfile(out):
        return None
    actual = sha256_file(out)
    if not expected or actual == expected:
        return DownloadResult(out, actual, bool(expected), downloaded=False)
    corrupt = out + ".corrupt"
    os.replace(out, corrupt)
    logger.warning("%s does not match its SHA-256; moved it to %s and downloading again", out, corrupt)
    return None


def normalize_drive_url(url: str) -> str:
    """Turn a Google Drive share link (``/file/d/ID/view``) into its direct-download form."""
    for pattern in _DRIVE_ID_PATTERNS:
        match = pattern.search(url)
        if match:
            return f"https://drive.google.com/uc?export=download&id={match.group(1)}"
    return url


def normalize_dropbox_url(url: str) -> str:
    """A Dropbox share link with ``dl=1`` (direct download; other query fields kept); other URLs unchanged."""
    parts = urllib.parse.urlsplit(url)
    if (parts.hostname or "").lower() not in DROPBOX_HOSTS or not parts.path.startswith(_DROPBOX_SHARE_PATHS):
        return url
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k not in ("dl", "raw")]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query + [("dl", "1")])))


def normalize_url(url: str) -> str:
    """The direct-download form of a Google Drive or Dropbox share link; other URLs unchanged."""
    return normalize_dropbox_url(normalize_drive_url(url))


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


def _content_range(value: str) -> Tuple[Optional[int], Optional[int]]:
    """(first byte, total size) of a ``Content-Range: bytes A-B/N`` header, None where absent."""
    match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", value or "")
    if not match:
        return None, None
    return int(match.group(1)), (int(match.group(3)) if match.group(3) != "*" else None)


def _read_record(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def parse_size(text: str) -> int:
    """Bytes from ``"123"``, ``"500K"``, ``"20M"``, ``"4G"`` or ``"1T"`` (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not match:
        raise ValueError(f"not a size: '{text}' (expected e.g. 500M, 4G or a number of bytes)")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " "))


class Downloader:
    """Downloads one URL to one file with resume, retries, Drive confirmation, limits and verification.

    ``retries`` bounds the attempts after the first; the wait before attempt ``k`` is
    ``backoff * 2**(k-1)`` seconds (tests pass a tiny ``backoff``). ``timeout`` is the socket
    timeout; ``deadline`` (seconds per file), ``stall_bytes``/``stall_seconds`` and ``max_size``
    (bytes) bound a transfer as the module docstring says; 0 turns the deadline or stall check off.
    """

    def __init__(
        self,
        retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 60.0,
        chunk_size: int = CHUNK_SIZE,
        progress: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float = DEADLINE_S,
        stall_bytes: int = STALL_BYTES,
        stall_seconds: float = STALL_SECONDS,
        max_size: int = MAX_SIZE,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.progress = progress
        self._sleep = sleep
        self.deadline = deadline
        self.stall_bytes = stall_bytes
        self.stall_seconds = stall_seconds
        self.max_size = max_size
        self.url = ""
        self._source = ""
        self._size: Optional[int] = None
        self._cookies = http.cookiejar.CookieJar()
        self._watch = transfer_watch.TransferWatch()
        self._opener = transfer_watch.opener(self._watch)

    # -- the partial file and its record ------------------------------------------------------

    def _discard(self, part: str, why: str = "") -> None:
        """Remove ``part`` and then its record (a record without a part is harmless)."""
        if why and os.path.lexists(part):
            logger.info("Not resuming %s (%s); starting over", part, why)
        for path in (part, part + RECORD_SUFFIX):
            if os.path.lexists(path):
                os.remove(path)

    def _resume_point(self, part: str) -> Tuple[int, Optional[dict]]:
        """Bytes of ``part`` that may be resumed and its record; discards anything else."""
        if not os.path.lexists(part):
            return 0, None
        record = _read_record(part + RECORD_SUFFIX) if not os.path.islink(part) else None
        have = os.path.getsize(part) if record else 0
        size = record.get("size") if record else None
        if record is None:
            why = "no record of the file it belongs to"
        elif record.get("url") != self._source:
            why = f"it belongs to {record.get('url')}"
        elif not isinstance(size, int) or size <= 0 or not (record.get("etag") or record.get("last_modified")):
            why = "the server gave no size and ETag/Last-Modified to resume against"
        elif have > size:
            why = f"it holds {have} bytes, more than the file's {size}"
        else:
            if have == size:  # complete but never verified: fetch its last byte to confirm the validator
                have -= 1
                os.truncate(part, have)
            return have, record
        self._discard(part, why)
        return 0, None

    def _start_record(self, part: str, response, total: Optional[int]) -> None:
        """A fresh transfer begins: drop the old part, then record what the new one belongs to."""
        self._discard(part)
        etag = response.headers.get("ETag") or ""
        record = {
            "url": self._source,
            "size": total,
            "etag": etag if etag.startswith('"') else "",  # a weak ETag (W/"...") cannot be used with If-Range
            "last_modified": response.headers.get("Last-Modified") or "",
        }
        atomic_write_text(part + RECORD_SUFFIX, json.dumps(record) + "\n")

    def _range_problem(self, response, offset: int, record: dict) -> str:
        """Why a 206 answer cannot continue ``part`` ("" if it can)."""
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            return f"the server answered bytes from {start}, not {offset}"
        if total != record["size"]:
            return f"the file now has {total} bytes, not {record['size']}"
        for header, key in (("ETag", "etag"), ("Last-Modified", "last_modified")):
            value = response.headers.get(header)
            if value and record.get(key) and value != record[key]:
                return f"its {header} changed from {record[key]} to {value}"
        return ""

    # -- one request --------------------------------------------------------------------------

    def _open(self, url: str, offset: int, record: Optional[dict]) -> Optional[http.client.HTTPResponse]:
        """The response to a GET of ``url`` from ``offset``; None for HTTP 416 on a resume."""
        headers = {"User-Agent": USER_AGENT}
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = record["etag"] or record["last_modified"]
        request = urllib.request.Request(url, headers=headers)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code == 416 and offset > 0:
                return None
            if err.code >= 500 or err.code in (408, 429):
                raise _RetryableError(f"HTTP {err.code} {err.reason}") from None
            raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            if self._watch.reason:
                raise
            raise _RetryableError(f"cannot connect to {url}: {getattr(err, 'reason', err)}") from None

    def _check_announced(self, total: Optional[int]) -> None:
        if total is None:
            return
        if self._size and total != self._size:
            raise DownloadError(f"{self.url}: the server announces {total} bytes, the manifest says {self._size}")
        if self.max_size and total > self.max_size:
            raise DownloadError(
                f"{self.url}: the server announces {total} bytes, more than the size limit of "
                f"{self.max_size} bytes (--max-size)"
            )

    def _attempt(self, part: str, desc: str) -> None:
        """Bring ``part`` to the full file from ``self.url``, following confirmation pages."""
        for _ in range(4):  # up to two confirmation pages and one refused range before the file
            url = self.url
            offset, record = self._resume_point(part)
            response = self._open(url, offset, record)
            if response is None:
                self._discard(part, "the server has no such byte range (HTTP 416)")
                continue
            with response:
                status = response.status
                head = self._read_head(response) if status == 200 else b""
                if status == 200 and _looks_like_html(response.headers.get("Content-Type", ""), head):
                    self._follow_confirmation(url, response, head)
                    continue
                if status == 206:
                    problem = self._range_problem(response, offset, record)
                    if problem:
                        self._discard(part, problem)
                        continue
                    mode, done, total = "ab", offset, record["size"]
                    self._check_announced(total)
                else:  # 200: the whole file (a changed file, or a server without Range support)
                    if offset:
                        logger.info("%s: the server sent the whole file (changed, or no Range support)", desc)
                    length = response.headers.get("Content-Length")
                    total = int(length) if length is not None else None
                    self._check_announced(total)
                    self._start_record(part, response, total)
                    mode, done = "wb", 0
                self._stream(response, part, mode, head, done, total, desc)
                return
        raise DownloadError(f"{self.url}: too many confirmation pages or refused byte ranges")

    def _follow_confirmation(self, url: str, response, head: bytes) -> None:
        page = (head + response.read(2 << 20)).decode("utf-8", "replace")
        next_url = confirmation_url(page, response.geturl(), {c.name: c.value for c in self._cookies})
        if next_url is None or next_url == url:
            raise DownloadError(
                f"{url} served an HTML page instead of the file (for Google Drive: the "
                "file is not shared publicly or its download quota is exceeded; for Dropbox: the "
                "link was removed or is not public)"
            )
        logger.info("Following download confirmation page to %s", next_url)
        self.url = next_url  # later attempts resume from the confirmed URL

    def _read_head(self, response, want: int = 512) -> bytes:
        """The body's first bytes (to tell an HTML page from the file), read as they arrive."""
        head = b""
        while len(head) < want:
            block = self._read(response, len(head))
            if not block:
                break
            head += block
        return head

    def _read(self, response, done: int) -> bytes:
        try:
            block = response.read1(self.chunk_size)  # whatever has arrived, so that the watch sees progress
        except (OSError, http.client.HTTPException) as err:
            raise _RetryableError(f"connection lost after {done} bytes: {err}") from None
        self._watch.progress(len(block))
        return block

    def _stream(self, response, part: str, mode: str, head: bytes, done: int, total: Optional[int], desc: str) -> None:
        limit = self._size or self.max_size
        bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=desc, disable=not self.progress)
        try:
            with open(part, mode) as f:
                block = head or self._read(response, done)
                while block:
                    if limit and done + len(block) > limit:
                        raise DownloadError(
                            f"{self.url}: the body exceeds the size limit of {limit} bytes (the manifest's "
                            "size, or --max-size); stopped and removed the partial file"
                        )
                    f.write(block)
                    done += len(block)
                    bar.update(len(block))
                    block = self._read(response, done)
        except DownloadError:
            self._discard(part)
            raise
        finally:
            bar.close()
        if self._watch.reason:  # the watch shut the connection: an end of data here is not the end
            raise _RetryableError(f"transfer stopped after {done} bytes")
        if total is not None and done < total:
            raise _RetryableError(f"connection closed after {done} of {total} bytes")

    # -- one file -----------------------------------------------------------------------------

    def _interruption(self, err: Exception, part: str) -> Exception:
        """What an interrupted attempt means, given what the watch saw."""
        if self._watch.reason == transfer_watch.DEADLINE:
            return self._deadline_error(part)
        if self._watch.reason == transfer_watch.STALL:
            return _RetryableError(
                f"stalled: fewer than {self.stall_bytes} bytes arrived in {self.stall_seconds:g} s "
                f"({self._watch.received} bytes in this attempt)"
            )
        return err

    def _deadline_error(self, part: str) -> DownloadError:
        have = os.path.getsize(part) if os.path.isfile(part) else 0
        return DownloadError(
            f"{self.url}: not complete within the deadline of {self.deadline:g} s (--deadline); "
            f"{have} bytes so far, left in {part} (never under the final name)"
        )

    def _transfer(self, part: str, desc: str) -> None:
        """Attempts with back-off until ``part`` holds the whole file, within the deadline."""
        last: Exception = DownloadError("no attempt made")
        for attempt in range(self.retries + 1):
            if attempt:
                wait = self.backoff * 2 ** (attempt - 1)
                if wait >= self._watch.remaining():
                    raise self._deadline_error(part)
                logger.info("Retrying %s in %.2fs (attempt %d of %d)", desc, wait, attempt + 1, self.retries + 1)
                self._sleep(wait)
            self._watch.begin_attempt()
            try:
                self._attempt(part, desc)
                return
            except (_RetryableError, OSError, http.client.HTTPException) as err:
                last = self._interruption(err, part)
                if isinstance(last, DownloadError):
                    raise last from None
                logger.warning("Download of %s interrupted: %s", desc, last)
            finally:
                self._watch.detach()
        raise DownloadError(f"giving up on {self.url} after {self.retries + 1} attempts: {last}")

    def _check_complete(self, part: str) -> None:
        """The part's size must equal what the server announced and what the manifest says."""
        have = os.path.getsize(part)
        record = _read_record(part + RECORD_SUFFIX) or {}
        for size, source in ((record.get("size"), "the server announced"), (self._size, "the manifest says")):
            if size is not None and have != size:
                self._discard(part)
                raise DownloadError(f"{self.url}: got {have} bytes but {source} {size}; discarded the download")

    def fetch(self, url: str, out: str, sha256: str = "", size: Optional[int] = None) -> DownloadResult:
        """Download ``url`` to ``out``; verify against ``sha256`` (else record it) and ``size`` when given."""
        expected = sha256.strip().lower()
        existing = existing_file(out, expected)
        if existing is not None:
            return existing
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        part = out + ".part"
        self._source = self.url = normalize_url(url)
        self._size = size
        self._cookies = http.cookiejar.CookieJar()
        self._watch = transfer_watch.TransferWatch(self.deadline, self.stall_bytes, self.stall_seconds)
        self._opener = transfer_watch.opener(self._watch, urllib.request.HTTPCookieProcessor(self._cookies))
        with self._watch:
            self._transfer(part, os.path.basename(out))
        self._check_complete(part)
        actual = sha256_file(part)
        if expected and actual != expected:
            corrupt = out + ".corrupt"
            os.replace(part, corrupt)
            self._discard(part)
            raise DownloadError(
                f"SHA-256 mismatch for {out}: expected {expected}, got {actual}; the file was moved to {corrupt}"
            )
        os.replace(part, out)
        self._discard(part)
        return DownloadResult(out, actual, bool(expected), downloaded=True)
