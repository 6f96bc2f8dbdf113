"""Training batches across epoch boundaries: the same batches as a plain loader per epoch, and
workers that go on into the next epoch."""
import itertools
import os
import time

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from m3a.datasets.epoch_stream import EpochBatchSampler, TrainEpochs
from m3a.datasets.loader import EpochSampler


class LoggedKeys(Dataset):
    """Item ``(epoch, index)`` is ``[epoch, index]``; with ``log``, every load appends its key to
    that file (loader workers are other processes)."""

    def __init__(self, size: int, log: str = ""):
        self.size, self.log = size, log

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{key[0]} {key[1]}\n")
        return torch.tensor(key)


def plain_epoch(size, epoch, batch_size, drop_last, world=1, rank=0):
    """Keys per batch of torch's BatchSampler over the EpochSampler set to ``epoch``."""
    sampler = EpochSampler(list(range(size)), num_replicas=world, rank=rank, shuffle=True, seed=5)
    sampler.set_epoch(epoch)
    return [list(batch) for batch in BatchSampler(sampler, batch_size, drop_last)]


@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize("world", [1, 2])
def test_endless_sampler_yields_each_epoch_as_the_plain_sampler(drop_last, world):
    for rank in range(world):
        sampler = EpochSampler(list(range(11)), num_replicas=world, rank=rank, shuffle=True, seed=5)
        batches = EpochBatchSampler(sampler, 3, drop_last)
        batches.first_epoch = 2
        per_epoch = len(plain_epoch(11, 0, 3, drop_last, world, rank))
        assert len(batches) == per_epoch
        got = list(itertools.islice(batches, 3 * per_epoch))
        expected = [b for e in (2, 3, 4) for b in plain_epoch(11, e, 3, drop_last, world, rank)]
        assert got == expected
        assert {key[0] for batch in got[:per_epoch] for key in batch} == {2}


def train_epochs(size, workers, log=""):
    sampler = EpochSampler(list(range(size)), num_replicas=1, rank=0, shuffle=True, seed=5)
    loader = DataLoader(LoggedKeys(size, log), batch_sampler=EpochBatchSampler(sampler, 2, True),
                        num_workers=workers, persistent_workers=workers > 0)
    return TrainEpochs(loader)


def keys(batches):
    return [b.tolist() for b in batches]


@pytest.mark.parametrize("workers", [0, 1])
def test_train_epochs_match_plain_epochs_in_any_order(workers):
    epochs = train_epochs(8, workers)
    assert len(epochs) == len(epochs.epoch(0)) == 4
    expect = {e: [[[e, i] for _, i in batch] for batch in plain_epoch(8, e, 2, True)] for e in range(7)}
    for e in (0, 1, 2):  # consecutive: one running iterator
        assert keys(epochs.epoch(e)) == expect[e]
    assert keys(epochs.epoch(1)) == expect[1]  # again (as precise BN does): restarts at 1
    assert keys(itertools.islice(epochs.epoch(3), 1)) == expect[3][:1]
    assert keys(epochs.epoch(4)) == expect[4]  # 3 batches of epoch 3 were left: more than in flight
    assert keys(itertools.islice(epochs.epoch(5), 3)) == expect[5][:3]
    assert keys(epochs.epoch(6)) == expect[6]  # 1 batch left over (skipped with workers)


def test_workers_load_the_next_epoch_before_it_is_asked_for(tmp_path):
    log = str(tmp_path / "loaded.txt")
    epochs = train_epochs(8, 1, log)
    first = keys(epochs.epoch(0))
    deadline = time.monotonic() + 30
    loaded = set()
    while time.monotonic() < deadline and 1 not in loaded:  # the worker goes on into epoch 1
        time.sleep(0.05)
        if os.path.exists(log):
            loaded = {int(line.split()[0]) for line in open(log)}
    assert 1 in loaded, "the loader worker did not start on epoch 1 before it was asked for"
    assert keys(epochs.epoch(1)) == [[[1, i] for _, i in batch] for batch in plain_epoch(8, 1, 2, True)]
    assert len(first) == 4


def test_train_epochs_need_the_endless_sampler():
    with pytest.raises(TypeError, match="EpochBatchSampler"):
        TrainEpochs(DataLoader(LoggedKeys(4), batch_size=2))


class FailingKey(LoggedKeys):
    """Loading key ``bad`` raises."""

    def __init__(self, size: int, bad):
        super().__init__(size)
        self.bad = list(bad)

    def __getitem__(self, key):
        if list(key) == self.bad:
            raise ValueError(f"cannot load {key}")
        return super().__getitem__(key)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failed_batch_restarts_the_next_epoch_in_line(workers):
    """A batch that raises (caught by the caller) must not shift the next epoch's batches."""
    bad_batch = plain_epoch(8, 0, 2, True)[1]
    sampler = EpochSampler(list(range(8)), num_replicas=1, rank=0, shuffle=True, seed=5)
    loader = DataLoader(FailingKey(8, bad_batch[0]), batch_sampler=EpochBatchSampler(sampler, 2, True),
                        num_workers=workers, persistent_workers=workers > 0)
    epochs = TrainEpochs(loader)
    with pytest.raises(ValueError, match="cannot load"):
        list(epochs.epoch(0))
    assert keys(epochs.epoch(1)) == [[[1, i] for _, i in batch] for batch in plain_epoch(8, 1, 2, True)]


def test_close_stops_the_workers_of_a_running_iterator():
    """Without persistent workers (with them, the loader keeps its workers for the next start)."""
    sampler = EpochSampler(list(range(8)), num_replicas=1, rank=0, shuffle=True, seed=5)
    epochs = TrainEpochs(DataLoader(LoggedKeys(8), batch_sampler=EpochBatchSampler(sampler, 2, True), num_workers=1))
    list(epochs.epoch(0))
    workers = epochs._batches._workers
    assert all(w.is_alive() for w in workers)
    epochs.close()
    for w in workers:
        w.join(timeout=30)
    assert not any(w.is_alive() for w in workers)
