"""m3a.utils.download against a real HTTP server on 127.0.0.1."""
import hashlib
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from m3a.utils.download import (
    DownloadError,
    DownloadResult,
    Downloader,
    confirmation_url,
    existing_file,
    normalize_drive_url,
    normalize_dropbox_url,
    normalize_url,
    sha256_file,
)
from tests.utils.local_http import FileHost

DATA = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the chunk size
SHA = hashlib.sha256(DATA).hexdigest()


def _downloader(**kw):
    kw.setdefault("retries", 3)
    return Downloader(backoff=0.01, timeout=10, chunk_size=64 * 1024, progress=False, **kw)


@pytest.fixture
def host():
    with FileHost({"model.pyth": DATA, "other.bin": b"x" * 1000}) as h:
        yield h


def test_plain_download_verifies_hash(host, tmp_path, capsys):
    out = str(tmp_path / "sub" / "model.pyth")
    dl = Downloader(retries=1, backoff=0.01, timeout=10, chunk_size=64 * 1024, progress=True)
    res = dl.fetch(host.url("model.pyth"), out, SHA)
    assert "model.pyth" in capsys.readouterr().err  # the tqdm progress bar
    assert res.verified and res.downloaded and res.sha256 == SHA
    assert open(out, "rb").read() == DATA
    assert not os.path.exists(out + ".part")
    # A second call finds the verified file and makes no request.
    before = len(host.requests)
    res2 = _downloader().fetch(host.url("model.pyth"), out, SHA)
    assert not res2.downloaded and len(host.requests) == before


def test_trust_on_first_download_returns_hash(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    res = _downloader().fetch(host.url("model.pyth"), out)
    assert not res.verified and res.sha256 == SHA == sha256_file(out)


def test_interrupted_transfer_resumes_with_range(host, tmp_path):
    host.cut_first["model.pyth"] = 2
    out = str(tmp_path / "model.pyth")
    sleeps = []
    dl = Downloader(retries=3, backoff=0.01, timeout=10, chunk_size=64 * 1024, progress=False, sleep=sleeps.append)
    res = dl.fetch(host.url("model.pyth"), out, SHA)
    assert res.sha256 == SHA and open(out, "rb").read() == DATA
    ranges = [r["range"] for r in host.requests]
    assert ranges[0] is None
    # Each later request asks for the bytes after what had arrived: half, then half of the rest.
    half = len(DATA) // 2
    assert ranges[1] == f"bytes={half}-"
    assert ranges[2] == f"bytes={half + (len(DATA) - half) // 2}-"
    assert sleeps == [0.01, 0.02]  # exponential back-off


def test_server_ignoring_range_restarts_file(host, tmp_path):
    host.cut_first["model.pyth"] = 1
    host.ignore_range.add("model.pyth")
    out = str(tmp_path / "model.pyth")
    res = _downloader().fetch(host.url("model.pyth"), out, SHA)
    assert res.sha256 == SHA and os.path.getsize(out) == len(DATA)
    assert host.requests[1]["range"] is not None  # asked to resume, got the whole file (200)


def test_retries_are_bounded(host, tmp_path):
    host.cut_first["model.pyth"] = 10
    out = str(tmp_path / "model.pyth")
    with pytest.raises(DownloadError, match="after 3 attempts"):
        _downloader(retries=2).fetch(host.url("model.pyth"), out, SHA)
    assert host.count("model.pyth") == 3
    assert not os.path.exists(out)


def test_server_errors_are_retried(host, tmp_path):
    host.fail_first["other.bin"] = 2
    out = str(tmp_path / "other.bin")
    res = _downloader().fetch(host.url("other.bin"), out)
    assert res.downloaded and open(out, "rb").read() == b"x" * 1000
    assert host.count("other.bin") == 3


def test_checksum_mismatch_moves_file_aside(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    with pytest.raises(DownloadError, match="SHA-256 mismatch") as err:
        _downloader().fetch(host.url("model.pyth"), out, "0" * 64)
    assert "\n" not in str(err.value)
    assert not os.path.exists(out) and not os.path.exists(out + ".part")
    assert open(out + ".corrupt", "rb").read() == DATA


def test_existing_bad_file_is_replaced(host, tmp_path):
    out = tmp_path / "model.pyth"
    out.write_bytes(b"garbage")
    res = _downloader().fetch(host.url("model.pyth"), str(out), SHA)
    assert res.downloaded and out.read_bytes() == DATA
    assert (tmp_path / "model.pyth.corrupt").read_bytes() == b"garbage"


def test_404_fails_without_retry(host, tmp_path):
    out = str(tmp_path / "nope.pyth")
    with pytest.raises(DownloadError, match="HTTP 404"):
        _downloader().fetch(host.url("nope.pyth"), out)
    assert host.count("nope.pyth") == 1 and not os.path.exists(out)


def test_html_page_instead_of_file(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    with pytest.raises(DownloadError, match="HTML page instead of the file"):
        _downloader().fetch(host.url("page.html"), out)
    assert not os.path.exists(out)


def test_drive_form_confirmation_flow(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    res = _downloader().fetch(host.url("drive/uc?export=download&id=model.pyth"), out, SHA)
    assert res.sha256 == SHA
    routes = [r["route"] for r in host.requests]
    assert routes == ["drive/uc", "drive/usercontent/download"]
    assert host.requests[1]["query"] == {"id": "model.pyth", "export": "download", "confirm": "t0k3n", "uuid": "u-123"}


def test_drive_confirmation_then_resume(host, tmp_path):
    host.cut_first["model.pyth"] = 1
    out = str(tmp_path / "model.pyth")
    res = _downloader().fetch(host.url("drive/uc?export=download&id=model.pyth"), out, SHA)
    assert res.sha256 == SHA
    # The resume goes straight to the confirmed URL with a Range header.
    assert host.requests[2]["route"] == "drive/usercontent/download" and host.requests[2]["range"]


def test_drive_cookie_confirmation_flow(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    res = _downloader().fetch(host.url("drive/cookie?id=model.pyth"), out, SHA)
    assert res.sha256 == SHA
    assert host.requests[1]["query"]["confirm"] == "t0k3n"
    assert "download_warning_1=t0k3n" in host.requests[1]["cookie"]


def test_confirmation_url_from_link():
    page = '<html><a href="/uc?export=download&amp;confirm=AbC&amp;id=42">Download anyway</a></html>'
    url = confirmation_url(page, "https://drive.google.com/uc?export=download&id=42", {})
    assert url == "https://drive.google.com/uc?export=download&confirm=AbC&id=42"
    assert confirmation_url("<html>quota exceeded</html>", "https://x/y", {}) is None


def test_normalize_drive_url():
    share = "https://drive.google.com/file/d/1ieR_2NpWhYCtz_AUezC80MoLEAyyMAqa/view?usp=sharing"
    assert normalize_drive_url(share) == (
        "https://drive.google.com/uc?export=download&id=1ieR_2NpWhYCtz_AUezC80MoLEAyyMAqa"
    )
    assert normalize_drive_url("http://127.0.0.1:8000/a.bin") == "http://127.0.0.1:8000/a.bin"


@pytest.mark.parametrize("share, direct", [
    # The released ACTION-Net folder links (README of V-Sense/ACTION-Net).
    ("https://www.dropbox.com/sh/v9373sopxmf3vwh/AACDx4E3exxR_gbHgFK7rsGXa?dl=0",
     "https://www.dropbox.com/sh/v9373sopxmf3vwh/AACDx4E3exxR_gbHgFK7rsGXa?dl=1"),
    # New-style links: rlkey (and st) must survive, dl moves to the end with value 1.
    ("https://www.dropbox.com/scl/fo/abc123/h?rlkey=k3y&dl=0&st=xyz",
     "https://www.dropbox.com/scl/fo/abc123/h?rlkey=k3y&st=xyz&dl=1"),
    ("https://www.dropbox.com/scl/fi/abc123/model.pth?rlkey=k3y&raw=1",
     "https://www.dropbox.com/scl/fi/abc123/model.pth?rlkey=k3y&dl=1"),
    ("https://dropbox.com/s/abc123/model.pth", "https://dropbox.com/s/abc123/model.pth?dl=1"),
    ("https://www.dropbox.com/s/abc123/model.pth?dl=1", "https://www.dropbox.com/s/abc123/model.pth?dl=1"),
])
def test_normalize_dropbox_url(share, direct):
    assert normalize_dropbox_url(share) == direct
    assert normalize_url(share) == direct


@pytest.mark.parametrize("url", [
    "https://www.dropbox.com.example.org/sh/abc/def?dl=0",  # not Dropbox
    "https://www.dropbox.com/home/folder?dl=0",  # not a share link
    "http://127.0.0.1:8000/sh/abc/def?dl=0",
    "https://drive.google.com/uc?export=download&id=42",
])
def test_normalize_dropbox_url_leaves_other_urls(url):
    assert normalize_dropbox_url(url) == url


def test_dropbox_preview_page_is_an_error(host, tmp_path):
    # Without the rewrite to dl=1 (a 127.0.0.1 URL is not Dropbox), the share link's answer is
    # the preview page: an error, nothing saved.
    host.serve_dropbox("sh/abc/def", "model.pyth")
    out = str(tmp_path / "model.pyth")
    with pytest.raises(DownloadError, match="HTML page instead of the file .*for Dropbox"):
        _downloader().fetch(host.url("sh/abc/def?dl=0"), out)
    assert os.listdir(tmp_path) == []


# -- resuming only what belongs to the same remote file (issue 15 item 2) ---------------------


@pytest.mark.parametrize("leftover", [b"foreign bytes" * 100, DATA + b"and then some"], ids=["shorter", "longer"])
def test_leftover_part_without_record_is_not_spliced(host, tmp_path, leftover):
    out = tmp_path / "model.pyth"
    (tmp_path / "model.pyth.part").write_bytes(leftover)
    res = _downloader().fetch(host.url("model.pyth"), str(out))  # no published hash: trusted as fetched
    assert res.sha256 == SHA and out.read_bytes() == DATA
    assert [r["range"] for r in host.requests] == [None]
    assert not (tmp_path / "model.pyth.part").exists() and not (tmp_path / "model.pyth.part.json").exists()


def _interrupted(host, out):
    """A first run that dies halfway, leaving FILE.part and its record."""
    host.cut_first["model.pyth"] = 1
    with pytest.raises(DownloadError, match="after 1 attempts"):
        _downloader(retries=0).fetch(host.url("model.pyth"), out)
    record = json.loads(open(out + ".part.json").read())
    assert os.path.getsize(out + ".part") == len(DATA) // 2
    assert record == dict(url=host.url("model.pyth"), size=len(DATA), **{
        "etag": host.validators("model.pyth")["ETag"], "last_modified": host.validators("model.pyth")["Last-Modified"]})
    return record


def test_resume_sends_if_range_and_completes(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    record = _interrupted(host, out)
    res = _downloader().fetch(host.url("model.pyth"), out, SHA)
    assert res.sha256 == SHA
    assert host.requests[-1]["range"] == f"bytes={len(DATA) // 2}-" and host.requests[-1]["if_range"] == record["etag"]
    assert not os.path.exists(out + ".part.json")


def test_changed_remote_file_is_fetched_whole(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    _interrupted(host, out)
    new = DATA[::-1]  # same size, other bytes, other ETag: the server answers If-Range with 200
    host.files["model.pyth"] = new
    res = _downloader().fetch(host.url("model.pyth"), out)
    assert res.sha256 == hashlib.sha256(new).hexdigest() and open(out, "rb").read() == new
    assert host.requests[-1]["range"] is not None  # asked to resume, the server sent the new file


@pytest.mark.parametrize("new", [b"short", DATA + b"grown"], ids=["shrunk-416", "grown-206"])
def test_server_ignoring_if_range_cannot_splice(host, tmp_path, new):
    out = str(tmp_path / "model.pyth")
    _interrupted(host, out)
    host.files["model.pyth"] = new
    host.ignore_if_range.add("model.pyth")  # answers the stale range: 416 (shorter) or 206 with another total
    res = _downloader().fetch(host.url("model.pyth"), out)
    assert open(out, "rb").read() == new and res.sha256 == hashlib.sha256(new).hexdigest()
    assert [r["range"] is None for r in host.requests[-2:]] == [False, True]  # refused resume, then from the start


def test_no_validator_means_no_resume(host, tmp_path):
    host.no_validators.add("model.pyth")
    host.cut_first["model.pyth"] = 1
    res = _downloader().fetch(host.url("model.pyth"), str(tmp_path / "model.pyth"), SHA)
    assert res.sha256 == SHA and [r["range"] for r in host.requests] == [None, None]


# -- deadlines, stalls and size limits (issue 15 item 3) -----------------------------------------

SLOW = bytes(range(256)) * 12  # 3072 bytes: 77 s at the trickle's 40 B/s


def _timed_failure(dl, url, out, message):
    start = time.monotonic()
    with pytest.raises(DownloadError, match=message) as err:
        dl.fetch(url, out)
    elapsed = time.monotonic() - start
    assert "\n" not in str(err.value) and url in str(err.value)
    assert not os.path.exists(out)
    return elapsed


@pytest.mark.parametrize("length", ["content-length", "no-length"])
def test_trickling_body_is_abandoned_as_stalled(tmp_path, length):
    with FileHost({"slow.bin": SLOW}) as host:
        # 40 B/s: never silent, never done; a window holds >= 1000 bytes only if this process
        # sleeps for 25 s (a busy machine), so the stall is certain.
        host.trickle["slow.bin"] = (2, 0.05)
        if length == "no-length":
            host.no_length.add("slow.bin")
        dl = _downloader(retries=1, stall_bytes=1000, stall_seconds=0.5)
        elapsed = _timed_failure(dl, host.url("slow.bin"), str(tmp_path / "slow.bin"),
                                 "after 2 attempts: stalled: fewer than 1000 bytes arrived in 0.5 s")
        assert elapsed < 20  # two stalled attempts of ~0.5 s, not the 77 s the trickle needs
        assert host.count("slow.bin") == 2


def test_trickling_headers_are_abandoned_as_stalled(tmp_path):
    with FileHost({"slow.bin": SLOW}) as host:
        host.slow_headers["slow.bin"] = 0.02  # ~250 header bytes: 5 s
        dl = _downloader(retries=0, stall_bytes=1, stall_seconds=0.5)
        elapsed = _timed_failure(dl, host.url("slow.bin"), str(tmp_path / "slow.bin"), "stalled: fewer than 1 bytes")
        assert elapsed < 4.5  # a stall after ~0.5 s, not the 5 s the headers need


def test_deadline_ends_a_transfer_that_keeps_moving(tmp_path):
    with FileHost({"slow.bin": SLOW}) as host:
        host.trickle["slow.bin"] = (10, 0.05)
        # 3 s: on a loaded machine the first bytes may take over a second to arrive
        dl = _downloader(retries=3, deadline=3.0, stall_bytes=1, stall_seconds=5.0)
        out = str(tmp_path / "slow.bin")
        elapsed = _timed_failure(dl, host.url("slow.bin"), out, "not complete within the deadline of 3 s")
        assert 2.9 < elapsed < 12 and host.count("slow.bin") == 1  # the deadline, not the 15 s transfer
        assert 0 < os.path.getsize(out + ".part") < len(SLOW)  # kept for a later resume, never renamed


def test_body_without_length_is_capped(host, tmp_path):
    host.files["big.bin"] = b"z" * 300_000
    host.no_length.add("big.bin")
    out = str(tmp_path / "big.bin")
    with pytest.raises(DownloadError, match=r"big.bin: the body exceeds the size limit of 100000 bytes"):
        _downloader(max_size=100_000).fetch(host.url("big.bin"), out)
    assert not os.path.exists(out) and not os.path.exists(out + ".part") and host.count("big.bin") == 1
    # The same limit from an exact expected size (a manifest's `size`).
    with pytest.raises(DownloadError, match="exceeds the size limit of 1000 bytes"):
        _downloader().fetch(host.url("big.bin"), out, size=1000)
    res = _downloader(max_size=100_000).fetch(host.url("big.bin"), out, size=300_000)
    assert res.downloaded and os.path.getsize(out) == 300_000


def test_announced_size_over_limit_is_refused_before_the_body(host, tmp_path):
    out = str(tmp_path / "model.pyth")
    with pytest.raises(DownloadError, match=f"announces {len(DATA)} bytes, more than the size limit of 1000 bytes"):
        _downloader(max_size=1000).fetch(host.url("model.pyth"), out)
    with pytest.raises(DownloadError, match=f"announces {len(DATA)} bytes, the manifest says 5"):
        _downloader().fetch(host.url("model.pyth"), out, size=5)
    assert not os.path.exists(out) and not os.path.exists(out + ".part")


@pytest.fixture
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_https_download_and_stalls_over_tls(tmp_path, tls_cert, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", tls_cert[0])  # trusted by the default context urllib makes
    with FileHost({"slow.bin": SLOW}) as host:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls_cert)
        host.server.socket = context.wrap_socket(host.server.socket, server_side=True)
        url = host.url("slow.bin").replace("http://", "https://")
        assert _downloader().fetch(url, str(tmp_path / "ok.bin")).sha256 == hashlib.sha256(SLOW).hexdigest()
        host.trickle["slow.bin"] = (2, 0.05)
        _timed_failure(_downloader(retries=0, stall_bytes=1000, stall_seconds=0.5), url, str(tmp_path / "slow.bin"),
                       "stalled: fewer than 1000 bytes")
    # A server that trickles its TLS handshake (a record header announcing 16 KiB, then a byte at a time).
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle_handshake():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"\x16\x03\x03\x40\x00")
            while not stop.wait(0.05):
                try:
                    conn.send(b"\x02")
                except OSError:
                    return

    thread = threading.Thread(target=trickle_handshake, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/x.bin"
    try:
        elapsed = _timed_failure(_downloader(retries=0, stall_bytes=1, stall_seconds=0.5), url,
                                 str(tmp_path / "x.bin"), r"stalled: fewer than 1 bytes arrived in 0.5 s \(0 bytes")
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert elapsed < 4


def test_complete_part_left_before_the_rename_is_confirmed_by_its_last_byte(host, tmp_path):
    out = tmp_path / "model.pyth"
    (tmp_path / "model.pyth.part").write_bytes(DATA)
    v = host.validators("model.pyth")
    record = {"url": host.url("model.pyth"), "size": len(DATA), "etag": v["ETag"], "last_modified": v["Last-Modified"]}
    (tmp_path / "model.pyth.part.json").write_text(json.dumps(record))
    assert _downloader().fetch(host.url("model.pyth"), str(out), SHA).downloaded and out.read_bytes() == DATA
    assert [r["range"] for r in host.requests] == [f"bytes={len(DATA) - 1}-"]
    # The same record for another URL is not trusted.
    (tmp_path / "other.bin.part").write_bytes(b"x" * 999)
    (tmp_path / "other.bin.part.json").write_text(json.dumps(dict(record, size=1000)))
    assert _downloader().fetch(host.url("other.bin"), str(tmp_path / "other.bin")).downloaded
    assert host.requests[-1]["range"] is None and (tmp_path / "other.bin").read_bytes() == b"x" * 1000


def test_existing_file_is_reused_or_set_aside(tmp_path, caplog):
    """The one check both Downloader.fetch and the model zoo's archive path make before downloading."""
    out = tmp_path / "model.pyth"
    assert existing_file(str(out), SHA) is None  # nothing there: download
    out.write_bytes(DATA)
    assert existing_file(str(out), SHA) == DownloadResult(str(out), SHA, True, downloaded=False)
    assert existing_file(str(out), "") == DownloadResult(str(out), SHA, False, downloaded=False)
    with caplog.at_level(logging.WARNING, logger="m3a.utils.download"):
        assert existing_file(str(out), "0" * 64) is None
    assert not out.exists() and (tmp_path / "model.pyth.corrupt").read_bytes() == DATA
    assert caplog.messages == [f"{out} does not match its SHA-256; moved it to {out}.corrupt and downloading again"]
