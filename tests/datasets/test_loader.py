"""Loaders: batch layout, failure reporting, seeded workers, distributed sampling, view combining."""
import functools
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from m3a.datasets.loader import EpochSampler, collate, construct_loader, construct_train_epochs, prepare_worker
from m3a.datasets.multiview import combine_views
from m3a.datasets.video_list import ListFormatError
from tests.datasets.conftest import GOOD_VIDEOS, small_cfg, write_list

GOOD = sorted(GOOD_VIDEOS)


def _cfg(tmp_path, video_dir, rows, **data):
    for split in ("train", "val", "test"):
        write_list(os.path.join(tmp_path, f"{split}-t.csv"), rows)
    return small_cfg(str(tmp_path), PATH_PREFIX=video_dir, **data)


def test_train_batches_and_failed_paths(tmp_path, video_dir):
    rows = {name: (i,) for i, name in enumerate(GOOD)}
    rows["missing.mp4"] = (4,)
    cfg = _cfg(tmp_path, video_dir, rows)
    cfg.TRAIN.BATCH_SIZE = 5
    loader = construct_loader(cfg, "train")
    frames, labels, indices, meta = next(iter(loader))
    assert frames.shape == (5, 3, 4, 32, 32) and labels.shape == (5, 5)
    assert indices.dtype == torch.int64 and indices.shape == (5,)
    # the batch covers the whole list once, so the missing video was drawn and replaced
    assert meta["failed"] == [os.path.join(video_dir, "missing.mp4")]
    assert 4 not in indices.tolist()
    for label, index in zip(labels, indices):
        assert label.argmax().item() == index.item()


def test_test_batches(tmp_path, video_dir):
    cfg = _cfg(tmp_path, video_dir, {"a.mp4": (0,), "empty.mp4": (1,), "c.mp4": (2,)})
    cfg.TEST.BATCH_SIZE = 3
    views, labels, indices, ok = next(iter(construct_loader(cfg, "test")))
    assert views.shape == (3, 6, 3, 4, 40, 40)
    assert indices.tolist() == [0, 1, 2]
    assert ok.dtype == torch.bool and ok.tolist() == [True, False, True]
    val = construct_loader(cfg, "val")
    assert len(val) == 2 and not val.drop_last


def test_collate_merges_failed_lists():
    items = [
        (torch.zeros(3, 2, 4, 4), torch.tensor(1), 0, {"failed": ["x.mp4"]}),
        (torch.ones(3, 2, 4, 4), torch.tensor(2), 5, {"failed": ["y.mp4", "z.mp4"]}),
    ]
    frames, labels, indices, meta = collate(items)
    assert frames.shape == (2, 3, 2, 4, 4) and labels.tolist() == [1, 2] and indices.tolist() == [0, 5]
    assert meta == {"failed": ["x.mp4", "y.mp4", "z.mp4"]}


def _batches(cfg, epochs=2):
    train = construct_train_epochs(cfg)
    out = []
    for epoch in range(epochs):
        out.extend(train.epoch(epoch))
    return out


def test_seeded_workers_reproduce_batches(tmp_path, video_dir):
    rows = {name: (i,) for i, name in enumerate(GOOD)}
    cfg = _cfg(tmp_path, video_dir, rows)
    cfg.DATA_LOADER.NUM_WORKERS = 2
    first, second = _batches(cfg), _batches(cfg)
    assert len(first) == 4
    for a, b in zip(first, second):
        assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
    cfg.RNG_SEED = 1
    other = _batches(cfg)
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, other))


def test_an_epoch_depends_only_on_seed_and_epoch(tmp_path, video_dir):
    """Epoch 1 of a fresh loader (as after resuming) equals epoch 1 after epoch 0, with or
    without loader workers; epochs differ from each other."""
    cfg = _cfg(tmp_path, video_dir, {name: (i,) for i, name in enumerate(GOOD)})
    straight = _batches(cfg)  # epochs 0 and 1, no workers
    cfg.DATA_LOADER.NUM_WORKERS = 2
    resumed = list(construct_train_epochs(cfg).epoch(1))
    assert len(resumed) == len(straight) // 2 == 2
    for a, b in zip(straight[2:], resumed):
        assert torch.equal(a[2], b[2]) and torch.equal(a[0], b[0])
    order = [torch.cat([b[2] for b in straight[:2]]).tolist(), torch.cat([b[2] for b in straight[2:]]).tolist()]
    assert sorted(order[0]) == sorted(order[1]) == [0, 1, 2, 3] and order[0] != order[1]


def test_distributed_epoch_keys_depend_only_on_seed_and_epoch():
    def keys(rank, epochs):
        sampler = EpochSampler(list(range(10)), num_replicas=2, rank=rank, shuffle=True, seed=7)
        for epoch in epochs:
            sampler.set_epoch(epoch)
            out = list(sampler)
        return out

    for rank in range(2):
        assert keys(rank, [0, 1, 2, 3]) == keys(rank, [3])  # a restart at epoch 3 (0-based)
    both = keys(0, [3]) + keys(1, [3])
    assert {epoch for epoch, _ in both} == {3} and sorted(i for _, i in both) == list(range(10))
    assert [i for _, i in keys(0, [2])] != [i for _, i in keys(0, [3])]


def test_wrong_path_prefix_and_empty_list_are_list_errors(tmp_path, video_dir):
    cfg = _cfg(tmp_path, video_dir, {name: (i,) for i, name in enumerate(GOOD)})
    cfg.DATA.PATH_PREFIX = str(tmp_path / "elsewhere")
    with pytest.raises(ListFormatError) as err:
        construct_loader(cfg, "train")
    assert str(err.value) == (
        f"{tmp_path / 'train-t.csv'}: none of its 4 videos exists (first: {tmp_path / 'elsewhere' / GOOD[0]}); "
        "check DATA.PATH_PREFIX and DATA.PATH_TO_DATA_DIR"
    )
    (tmp_path / "val-t.csv").write_text("\n")
    with pytest.raises(ListFormatError, match="val-t.csv: the list holds no videos"):
        construct_loader(cfg, "val")


def _distributed_worker(rank, world, port, data_dir, video_dir, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cfg = small_cfg(data_dir, PATH_PREFIX=video_dir)
        cfg.TEST.BATCH_SIZE = 4
        loader = construct_loader(cfg, "test")
        indices = [i for batch in loader for i in batch[2].tolist()]
        torch.save({"batch_size": loader.batch_size, "indices": indices}, os.path.join(out, f"{rank}.pt"))
        dist.barrier()  # as m3a.utils.distributed does: no rank leaves while a peer still talks
    finally:
        dist.destroy_process_group()


def test_distributed_test_loader_splits_videos_between_processes(tmp_path, video_dir):
    names = GOOD + ["short.mp4"]
    write_list(os.path.join(tmp_path, "test-t.csv"), {n: (0,) for n in names})
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = (2, port, str(tmp_path), video_dir, str(tmp_path))
    mp.spawn(_distributed_worker, args=args, nprocs=2)
    results = [torch.load(os.path.join(tmp_path, f"{r}.pt"), weights_only=True) for r in range(2)]
    assert [r["batch_size"] for r in results] == [2, 2]
    seen = results[0]["indices"] + results[1]["indices"]
    # 5 videos over 2 processes: one index is padded in twice; the engine de-duplicates by index
    assert sorted(set(seen)) == list(range(5)) and len(seen) == 6


def test_combine_views():
    scores = torch.tensor([[[0.1, 0.9], [0.5, 0.2], [0.3, 0.4]]])
    torch.testing.assert_close(combine_views(scores, "sum"), torch.tensor([[0.9, 1.5]]))
    torch.testing.assert_close(combine_views(scores, "max"), torch.tensor([[0.5, 0.9]]))
    with pytest.raises(ValueError, match="ensemble"):
        combine_views(scores, "mean")
    with pytest.raises(ValueError, match="batch, views, classes"):
        combine_views(scores[0], "sum")


def test_worker_threads_stay_quiet_when_the_main_process_goes_away():
    """A loader worker's thread that loses its connection (the main process stopped while fetching a
    batch) prints nothing; other errors of its threads are reported as usual; SIGINT is ignored."""
    script = (
        "import signal, threading\n"
        "from m3a.datasets.loader import prepare_worker\n"
        "prepare_worker(0)\n"
        "assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN\n"
        "def fail(exc):\n"
        "    raise exc\n"
        "for exc in (ConnectionResetError(104, 'Connection reset by peer'), BrokenPipeError(32, 'pipe'),\n"
        "            EOFError(), ValueError('a real bug')):\n"
        "    t = threading.Thread(target=fail, args=(exc,)); t.start(); t.join()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ValueError: a real bug" in done.stderr
    assert "ConnectionResetError" not in done.stderr and "BrokenPipeError" not in done.stderr
    assert "EOFError" not in done.stderr


class _Niceness(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index):
        return os.nice(0)


def test_loader_workers_run_below_the_training_process(tmp_path, video_dir):
    cfg = _cfg(tmp_path, video_dir, {name: (i,) for i, name in enumerate(GOOD)})
    cfg.DATA_LOADER.WORKER_NICENESS = 7
    for split in ("train", "val", "test"):
        assert construct_loader(cfg, split).worker_init_fn.keywords == {"niceness": 7}
    assert construct_train_epochs(cfg).loader.worker_init_fn.keywords == {"niceness": 7}
    own = os.nice(0)
    for niceness in (0, 7):
        init = functools.partial(prepare_worker, niceness=niceness)
        loader = torch.utils.data.DataLoader(_Niceness(), batch_size=2, num_workers=1, worker_init_fn=init)
        assert next(iter(loader)).tolist() == [min(19, own + niceness)] * 2
