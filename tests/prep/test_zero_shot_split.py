"""The held-out class split of the M2CLIP demo (m3a.prep.zero_shot_split): which videos and labels
go to the seen lists and to the zero-shot list, the checks on held-out names, the chance level."""
import pytest

from m3a.prep.demo_render import demo_actions
from m3a.prep.zero_shot_split import (check_held_out, chance_top1, read_list, shared_words, split_row,
                                      without_word_sharers, write_zero_shot_split)

NAMES = [a.name for a in demo_actions(12)]
HELD_OUT = [7, 9, 11]


def test_the_demo_held_out_names_share_shape_and_motion_words_but_not_colour():
    assert [NAMES[c] for c in HELD_OUT] == ["white star bouncing", "lime bar growing", "brown diamond falling"]
    assert shared_words(NAMES, HELD_OUT) == {7: ["star", "bouncing"], 9: ["bar", "growing"], 11: ["diamond", "falling"]}
    check_held_out(NAMES, HELD_OUT)


@pytest.mark.parametrize("held_out, message", [
    ([7, 7], "distinct labels"), ([7, 12], "distinct labels"), ([7], "at least 2 held-out"),
    (list(range(11)), "at least 2 held-out and 2 seen"),
])
def test_bad_held_out_lists_are_refused(held_out, message):
    with pytest.raises(ValueError, match=message):
        check_held_out(NAMES, held_out)


def test_a_held_out_name_without_a_shared_word_is_refused():
    # With 8 classes, "orange star sliding" and "white star bouncing" both held out: no star left.
    names = NAMES[:8]
    with pytest.raises(ValueError, match="share no word.*'white star bouncing'"):
        check_held_out(names, [0, 1, 6, 7])
    check_held_out(names, [1, 7])  # "bouncing" is gone, but each keeps its shape word


def test_split_row_renumbers_seen_and_held_out_labels():
    assert split_row([0, 7, 8], HELD_OUT, 12) == ([0, 7], [0])
    assert split_row([11, 9], HELD_OUT, 12) == ([], [1, 2])
    assert split_row([10, 6], HELD_OUT, 12) == ([8, 6], [])


def test_videos_without_word_sharers():
    assert without_word_sharers(NAMES, HELD_OUT, [7, 2])  # white star bouncing + blue triangle spinning
    assert not without_word_sharers(NAMES, HELD_OUT, [7, 6])  # + orange star sliding: "star"
    assert not without_word_sharers(NAMES, HELD_OUT, [9, 3])  # lime bar growing + yellow triangle growing
    assert without_word_sharers(NAMES, HELD_OUT, [9, 11])  # two held-out classes, no seen one


def test_chance_is_the_mean_fraction_of_right_names():
    assert chance_top1([("a", [0]), ("b", [0, 2])], 3) == pytest.approx((1 / 3 + 2 / 3) / 2)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


def test_write_zero_shot_split_lists(tmp_path):
    _write(tmp_path / "categories-demo.txt", NAMES)
    _write(tmp_path / "train-demo.csv", ["v/t0.mp4,0,1", "v/t1.mp4,7", "v/t2.mp4,6,7", "v/t3.mp4,11,10"])
    _write(tmp_path / "val-demo.csv", ["v/v0.mp4,9,8", "v/v1.mp4,2"])
    _write(tmp_path / "test-demo.csv", ["v/s0.mp4,7,9,4", "v/s1.mp4,11", "v/s2.mp4,5,3"])
    summary = write_zero_shot_split(str(tmp_path), HELD_OUT)
    lines = lambda name: (tmp_path / name).read_text().splitlines()  # noqa: E731
    # Seen lists: held-out labels dropped, videos of held-out classes only left out, renumbered.
    assert lines("train-seen.csv") == ["v/t0.mp4,0,1", "v/t2.mp4,6", "v/t3.mp4,8"]
    assert lines("val-seen.csv") == ["v/v0.mp4,7", "v/v1.mp4,2"]
    assert lines("test-seen.csv") == ["v/s0.mp4,4", "v/s2.mp4,5,3"]
    assert lines("categories-seen.txt") == [n for c, n in enumerate(NAMES) if c not in HELD_OUT]
    # Zero-shot list: validation and test videos showing a held-out class, held-out labels only.
    assert lines("test-heldout.csv") == ["v/v0.mp4,1", "v/s0.mp4,0,1", "v/s1.mp4,2"]
    assert lines("categories-heldout.txt") == ["white star bouncing", "lime bar growing", "brown diamond falling"]
    assert summary["seen_videos"] == {"train": 3, "val": 2, "test": 2}
    assert summary["chance"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)
    # v0 shows purple bar spinning ("bar"); s0 shows magenta cross circling (no shared word).
    assert summary["held_out_alone"] == [False, True, True]


def test_a_bad_list_line_names_file_and_line(tmp_path):
    _write(tmp_path / "train-demo.csv", ["v/a.mp4,1", "v/b.mp4,12"])
    with pytest.raises(ValueError, match=r"train-demo.csv:2: label 12 is outside \[0, 12\)"):
        read_list(str(tmp_path / "train-demo.csv"), 12)
    _write(tmp_path / "train-demo.csv", ["v/a.mp4"])
    with pytest.raises(ValueError, match=r"train-demo.csv:1:"):
        read_list(str(tmp_path / "train-demo.csv"), 12)
