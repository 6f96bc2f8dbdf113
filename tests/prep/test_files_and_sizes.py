"""Small helpers of the prep tools: class-name files, media listing, rescaled sizes."""
import pytest

from m3a.datasets.video_list import ListFormatError
from m3a.utils.class_names import read_class_names
from m3a.prep.media_files import list_media
from m3a.prep.transcode import scaled_size


def test_class_names_plain_and_indexed(tmp_path):
    plain = tmp_path / "categories-v1.txt"
    plain.write_text("adult+female+singing\n\nplaying music\n")
    assert read_class_names(str(plain)) == ["adult+female+singing", "playing music"]
    indexed = tmp_path / "moments_categories.txt"
    indexed.write_text("crying,0\nrunning/jogging,1\n")
    assert read_class_names(str(indexed)) == ["crying", "running/jogging"]
    dup = tmp_path / "dup.txt"
    dup.write_text("a\nb\na\n")
    with pytest.raises(ValueError, match="dup.txt:3: duplicate class name 'a'"):
        read_class_names(str(dup))
    with pytest.raises(FileNotFoundError, match="class-name file not found"):
        read_class_names(str(tmp_path / "none.txt"))


def test_list_media_from_folder_or_list(tmp_path):
    for rel in ("b/2.mp4", "a/1.webm", "a/notes.txt", "a/.tmp-x.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert list_media(str(tmp_path)) == ["a/1.webm", "b/2.mp4"]
    lst = tmp_path / "l.csv"
    lst.write_text("b/2.mp4,0\nz.mp4,1,2\nb/2.mp4,3\n")
    assert list_media(str(tmp_path), str(lst)) == ["b/2.mp4", "z.mp4"]
    lst.write_text("b/2.mp4\n")
    with pytest.raises(ListFormatError, match="l.csv:1"):
        list_media(str(tmp_path), str(lst))
    with pytest.raises(FileNotFoundError):
        list_media(str(tmp_path / "missing"))


@pytest.mark.parametrize("size,expected", [
    ((640, 360, 256), (456, 256)),
    ((360, 640, 256), (256, 456)),
    ((320, 240, 256), (342, 256)),
    ((101, 99, 16), (16, 16)),
])
def test_scaled_size_short_side_even(size, expected):
    assert scaled_size(*size) == expected
