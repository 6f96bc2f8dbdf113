"""Model-zoo entries hosted as Dropbox folders: the real download path (a real HTTP server on
127.0.0.1, reached as www.dropbox.com through it as an HTTP proxy), the ZIP answer, the member
extraction and its limits, trust on first download of the extracted file, and the fit check."""
import hashlib
import io
import os
import zipfile

import pytest
import torch
import yaml

from m3a.models import build_model
from m3a.utils.archive import ZipMemberError, extract_member
from m3a.utils.checkpoint_fit import check_fit
from m3a.utils.download import DownloadError, Downloader
from m3a.utils.model_zoo import ManifestError, ZooEntry, download_entry, load_manifest, read_recorded_hash
from tests.models.test_action_net import tiny_cfg
from tests.utils.local_http import FileHost

SHARE = "sh/v9373sopxmf3vwh/AACDx4E3exxR_gbHgFK7rsGXa"  # the released EgoGesture 8f folder link's path
MEMBER = "EgoGesture-resnet50/2021/clip_len_8frame_sample_rate_1_checkpoint.pth.tar"


def release_checkpoint(model) -> bytes:
    """``model``'s weights saved as ACTION-Net's train.py saves them ({'state_dict', 'optimizer'})."""
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "optimizer": {"state": {}, "param_groups": []}}, buffer)
    return buffer.getvalue()


def zip_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(tiny_cfg())


@pytest.fixture
def dropbox(monkeypatch):
    """A FileHost that www.dropbox.com requests reach (it is the HTTP proxy)."""
    with FileHost({}) as host:
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, host.base)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        yield host


def entry(member=("*.pth.tar", "*.pth"), sha256="", size=None):
    return ZooEntry(name="ego", title="t", dataset="egogesture", num_classes=5, backbone="ACTION-Net", config=None,
                    m3a=None, published={}, url=f"http://www.dropbox.com/{SHARE}?dl=0", sha256=sha256,
                    filename="ego.pth.tar", size=size, member=member)


def downloader():
    return Downloader(retries=1, backoff=0.01, timeout=10, progress=False)


def test_dropbox_folder_link_gives_the_checkpoint(dropbox, tiny_model, tmp_path):
    ckpt = release_checkpoint(tiny_model)
    dropbox.files["ego.zip"] = zip_bytes({MEMBER: ckpt, "EgoGesture-resnet50/2021/log.txt": b"epoch 1\n"})
    dropbox.serve_dropbox(SHARE, "ego.zip")
    folder = tmp_path / "ckpt"
    result = download_entry(entry(), str(folder), downloader())
    # The share link was asked for with dl=1 (rewritten, as published it says dl=0), then the redirect.
    assert [(r["route"], r["query"]) for r in dropbox.requests] == [(SHARE, {"dl": "1"}),
                                                                    ("zip_download_get/ego.zip", {})]
    out = folder / "ego.pth.tar"
    assert out.read_bytes() == ckpt
    assert (result.path, result.sha256, result.downloaded) == (str(out), hashlib.sha256(ckpt).hexdigest(), True)
    assert read_recorded_hash(str(out)) == result.sha256  # trusted on first download: the extracted file's hash
    assert sorted(os.listdir(folder)) == ["ego.pth.tar", "ego.pth.tar.sha256"]  # the archive is gone
    # The file loads into the model of its config, key for key.
    fresh = build_model(tiny_cfg())
    report = check_fit(str(out), fresh)
    assert report.fits and report.layout == "native" and report.tensors == len(tiny_model.state_dict())
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in tiny_model.state_dict().items())
    # A second call verifies the file against the record and fetches nothing.
    again = download_entry(entry(), str(folder), downloader())
    assert (again.downloaded, again.verified, len(dropbox.requests)) == (False, True, 2)
    # A damaged file is set aside and extracted anew from a fresh archive.
    out.write_bytes(b"damaged")
    download_entry(entry(), str(folder), downloader())
    assert out.read_bytes() == ckpt and (folder / "ego.pth.tar.corrupt").read_bytes() == b"damaged"
    assert len(dropbox.requests) == 4


@pytest.mark.parametrize("members, pattern, message", [
    ({"a/run1_checkpoint.pth.tar": b"1", "a/run2_checkpoint.pth.tar": b"2"}, ("*.pth.tar",),
     r"2 members match \*\.pth\.tar; its files: a/run1_checkpoint.pth.tar \(1 bytes\), a/run2_checkpoint"),
    ({"a/log.txt": b"x", "__MACOSX/a/._x.pth.tar": b"y"}, ("*.pth.tar", "*.pth"),
     r"no member matches \*\.pth\.tar or \*\.pth; its files: a/log.txt \(1 bytes\)$"),
])
def test_none_or_several_matching_members_are_refused(dropbox, tmp_path, members, pattern, message):
    dropbox.files["f.zip"] = zip_bytes(members)
    dropbox.serve_dropbox(SHARE, "f.zip")
    with pytest.raises(ZipMemberError, match=message):
        download_entry(entry(member=list(pattern)), str(tmp_path), downloader())
    assert os.listdir(tmp_path) == []  # neither the archive nor a partial file stays


def test_answer_that_is_not_a_zip_is_refused(dropbox, tmp_path):
    dropbox.files["f.zip"] = b"\x80\x02}q\x00this is a legacy pickle, not an archive"
    dropbox.serve_dropbox(SHARE, "f.zip")
    with pytest.raises(ZipMemberError, match=r"not a ZIP archive \(44 bytes starting b'\\x80\\x02}q"):
        download_entry(entry(), str(tmp_path), downloader())
    assert os.listdir(tmp_path) == []


def test_published_hash_and_size_are_those_of_the_extracted_file(dropbox, tmp_path):
    data = os.urandom(5000)
    dropbox.files["f.zip"] = zip_bytes({"m.pth": data})
    dropbox.serve_dropbox(SHARE, "f.zip")
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(ZipMemberError, match="m.pth has 5000 bytes, the manifest says 4999"):
        download_entry(entry(sha256=sha, size=4999), str(tmp_path), downloader())
    with pytest.raises(DownloadError, match=f"SHA-256 mismatch for .*ego.pth.tar: expected {'0' * 64}, got {sha}"):
        download_entry(entry(sha256="0" * 64), str(tmp_path), downloader())
    assert sorted(os.listdir(tmp_path)) == ["ego.pth.tar.corrupt"]
    result = download_entry(entry(sha256=sha, size=5000), str(tmp_path), downloader())
    assert result.verified and (tmp_path / "ego.pth.tar").read_bytes() == data
    assert not (tmp_path / "ego.pth.tar.sha256").exists()  # a published hash needs no record


def test_member_names_never_become_paths(tmp_path):
    """An archive member named ../../x is written only where the caller says."""
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"../../evil.pth": b"payload", "/abs/also.txt": b"z"}))
    dest = tmp_path / "out" / "file.pth"
    dest.parent.mkdir()
    info = extract_member(str(archive), "*.pth", str(dest))
    assert info.filename == "../../evil.pth" and dest.read_bytes() == b"payload"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.zip", "file.pth", "out"]


def test_member_size_limits(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"big.pth": b"\0" * 100_000}))  # deflates to a few hundred bytes
    assert os.path.getsize(archive) < 1000
    with pytest.raises(ZipMemberError, match="big.pth has 100000 bytes, more than the size limit of 99999 bytes"):
        extract_member(str(archive), "*.pth", str(tmp_path / "x"), max_size=99_999)
    assert not (tmp_path / "x").exists()


def lie_about_size(archive, declared: int) -> None:
    """Rewrite the central directory's uncompressed size of the archive's only member."""
    data = bytearray(archive.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = declared.to_bytes(4, "little")
    archive.write_bytes(bytes(data))


@pytest.mark.parametrize("declared, reason", [
    # zipfile stops at the declared size; the CRC of the cut data then differs.
    (1000, "cannot extract big.pth: Bad CRC-32 for file 'big.pth'"),
    # The data (CRC intact) ends before the declared size: the count of bytes written refuses it.
    (200_000, "big.pth holds 100000 bytes, not its declared 200000"),
])
def test_member_whose_data_differs_from_its_declared_size(tmp_path, declared, reason):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"big.pth": b"\0" * 100_000}))
    lie_about_size(archive, declared)
    dest = tmp_path / "out.pth"
    with pytest.raises(ZipMemberError) as err:
        extract_member(str(archive), "*.pth", str(dest))
    assert str(err.value) == f"{archive}: {reason}"  # the module's own error is not wrapped again
    assert sorted(os.listdir(tmp_path)) == ["a.zip"]  # no partial or temporary file stays


@pytest.mark.parametrize("member, message", [
    (5, "entry 'x': member must be a glob pattern or a list of them, got 5"),
    ([], "entry 'x': member must be a glob pattern or a list of them, got \\[\\]"),
    (["*.pth", ""], "entry 'x': member must be a glob pattern or a list of them"),
])
def test_manifest_member_is_validated(tmp_path, member, message):
    fields = dict(title="t", dataset="jester", num_classes=27, backbone="b", config=None, m3a=None, published={},
                  url="https://www.dropbox.com/sh/a/b?dl=0", sha256="", filename="x.pth", member=member)
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({"models": {"x": fields}}))
    with pytest.raises(ManifestError, match=message):
        load_manifest(str(tmp_path / "zoo.yaml"))
    fields["member"] = "*.pth"
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({"models": {"x": fields}}))
    assert load_manifest(str(tmp_path / "zoo.yaml"))["x"].member == "*.pth"
