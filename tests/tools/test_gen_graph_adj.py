"""tools/gen_graph_adj.py: psi of a small list against hand-counted values."""
import numpy as np

from m3a.utils.lexicon import load_graph_adj
from m3a.utils.safe_pickle import load_pickle
from tests.tools.conftest import run_tool

# Videos: {0,1}, {0,1,2}, {0}, {2,1}, {3}; class 4 never occurs.
# counts: c0=3, c1=3, c2=2, c3=1; pairs: (0,1)=2, (0,2)=1, (1,2)=2.
EXPECTED = np.array([
    [0, 2 / 3, 1 / 3, 0, 0],
    [2 / 3, 0, 2 / 3, 0, 0],
    [1 / 2, 2 / 2, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
])


def _list(tmp_path):
    path = tmp_path / "train-t.csv"
    path.write_text("a.mp4,0,1\nb.mp4,0,1,2\n\nc.mp4,0\nd.mp4,2,1\ne.mp4,3\n")
    return path


def test_psi_matches_hand_counts_npz_and_pkl(tmp_path):
    lst = _list(tmp_path)
    proc = run_tool("gen_graph_adj", "--list", lst, "--num-classes", 5, "--out", tmp_path / "g.npz",
                    "--threshold", 0.5)
    assert "threshold 0.5: 5 directed edges" in proc.stdout
    with np.load(tmp_path / "g.npz") as data:
        np.testing.assert_allclose(data["psi"], EXPECTED, rtol=0, atol=1e-15)
    run_tool("gen_graph_adj", "--list", lst, "--num-classes", 5, "--out", tmp_path / "g.pkl")
    raw = (tmp_path / "g.pkl").read_bytes()
    assert raw[:2] == b"\x80\x04"  # pickle protocol 4, as published
    psi = load_pickle(str(tmp_path / "g.pkl"))
    assert isinstance(psi, np.ndarray) and psi.dtype == np.float64
    np.testing.assert_allclose(psi, EXPECTED, atol=1e-15)
    np.testing.assert_array_equal(load_graph_adj(str(tmp_path / "g.pkl"), 5), psi)


def test_label_out_of_range_is_reported(tmp_path):
    lst = _list(tmp_path)
    proc = run_tool("gen_graph_adj", "--list", lst, "--num-classes", 3, "--out", tmp_path / "g.npz",
                    check=False)
    assert proc.returncode == 2 and f"{lst}:6:" in proc.stderr and "Traceback" not in proc.stderr
