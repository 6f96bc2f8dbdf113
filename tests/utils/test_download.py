"""m3a.utils.download against a real HTTP server on 127.0.0.1."""
import hashlib
import os

import pytest

from m3a.utils.download import (
    DownloadError,
    Downloader,
    confirmation_url,
    normalize_drive_url,
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
