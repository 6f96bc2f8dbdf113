"""Class-names files: plain names (which may end in a number) versus ``name,index`` files."""
import pytest

from m3a.utils.class_names import ClassNamesError, read_class_names


def _read(tmp_path, text, **kwargs):
    path = tmp_path / "names.txt"
    path.write_text(text)
    return read_class_names(str(path), **kwargs)


def test_names_ending_in_numbers_are_whole_names(tmp_path):
    assert _read(tmp_path, "top 10\ntop 20\nbottom 3\nmiddle 1\n") == ["top 10", "top 20", "bottom 3", "middle 1"]
    # 0..N-1 after a space but the names before them repeat: plain names, not indices.
    assert _read(tmp_path, "top 1\ntop 0\n") == ["top 1", "top 0"]
    assert _read(tmp_path, "5\n  6  \n\n") == ["5", "6"]


def test_indexed_files_in_any_order_and_with_any_separator(tmp_path):
    assert _read(tmp_path, "running/jogging,1\ncrying,0\n") == ["crying", "running/jogging"]
    assert _read(tmp_path, "crying 0\nrunning 1\n") == ["crying", "running"]
    assert _read(tmp_path, "a b\t2\nc , 0\nd 1\n", num_classes=3) == ["c", "d", "a b"]


@pytest.mark.parametrize("text,message", [
    ("a,0\nb,2\n", "names.txt:2: index 2 is outside 0..1; a file with an index column needs 'name,index'"),
    ("a,0\nb\n", "names.txt:2: no index at the end of the line"),
    ("a\t1\nb\t1\n", "names.txt:2: index 1 repeats line 1"),
    ("x,1\ny,0\nx,2\n", "names.txt:3: duplicate class name 'x' (also on line 1)"),
])
def test_a_broken_index_column_is_an_error_naming_the_line(tmp_path, text, message):
    with pytest.raises(ClassNamesError) as err:
        _read(tmp_path, text)
    assert str(err.value).startswith(str(tmp_path / message.split(":")[0]) + ":" + message.split(":", 1)[1])


def test_class_count_must_match_when_given(tmp_path):
    with pytest.raises(ClassNamesError, match=r"names.txt: 2 class names, expected 3 \(MODEL.NUM_CLASSES\)"):
        _read(tmp_path, "a\nb\n", num_classes=3)
