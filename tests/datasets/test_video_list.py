"""List parsing: formats, and errors naming file, line and text."""
import pytest

from m3a.datasets.video_list import ListFormatError, VideoEntry, read_video_list


def test_multi_label_and_single_label(tmp_path):
    mmit = tmp_path / "train.csv"
    mmit.write_text("a/x.mp4,3,1\n\nb/y.mp4,0\n")
    assert read_video_list(str(mmit), ",", 5) == [VideoEntry("a/x.mp4", (3, 1)), VideoEntry("b/y.mp4", (0,))]
    kin = tmp_path / "train.txt"
    kin.write_text("dir with space/v.mp4 2\n")
    assert read_video_list(str(kin), " ", 3, multi_label=False) == [VideoEntry("dir with space/v.mp4", (2,))]


@pytest.mark.parametrize("line, message", [
    ("a.mp4,7", "label 7 is outside"),
    ("a.mp4,x", "labels must be integers"),
    ("a.mp4", "expected"),
    ("a.mp4,-1", "outside"),
])
def test_errors_name_file_line_and_text(tmp_path, line, message):
    path = tmp_path / "val.csv"
    path.write_text(f"ok.mp4,1\n{line}\n")
    with pytest.raises(ListFormatError) as err:
        read_video_list(str(path), ",", 5)
    assert f"{path}:2:" in str(err.value) and message in str(err.value) and line in str(err.value)


def test_missing_list(tmp_path):
    with pytest.raises(ListFormatError, match="not found"):
        read_video_list(str(tmp_path / "nope.csv"))
