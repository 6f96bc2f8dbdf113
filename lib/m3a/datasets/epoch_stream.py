"""Training batches that run on across epoch boundaries.

A DataLoader iterates one epoch: when it ends, its workers sit idle until the next epoch's
iterator asks for new batches, and the first step of every epoch waits for a whole batch to be
decoded. On a small data set that wait is a large share of the epoch (the demo's 13 batches per
epoch lose about a batch's loading time each, several per cent of training throughput).

Here the training loader's batch sampler yields epoch after epoch without end
(:class:`EpochBatchSampler`), so one loader iterator spans the epochs and its workers load the
first batches of epoch e + 1 while the last steps of epoch e run. :class:`TrainEpochs` hands the
training loop one epoch at a time from that iterator. The batches of epoch e are exactly those
of a plain loader whose sampler is set to epoch e (same keys, same order, same seeds), so
resuming, precise BN and every result are unchanged.
"""
import itertools
from typing import Iterator, List, Optional, Tuple

from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler


class EpochBatchSampler(Sampler[List[Tuple[int, int]]]):
    """Batches of ``sampler`` for epochs ``first_epoch``, ``first_epoch + 1``, ... without end.

    ``sampler`` yields the ``(epoch, index)`` keys of the epoch it is set to (the loader's
    EpochSampler); epoch e's batches are those of torch's BatchSampler over it, set to e.
    ``len()`` is the number of batches of one epoch.
    """

    def __init__(self, sampler: DistributedSampler, batch_size: int, drop_last: bool):
        self.sampler = sampler
        self.batches = BatchSampler(sampler, batch_size, drop_last)
        self.first_epoch = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        if len(self.batches) == 0:
            return
        for epoch in itertools.count(self.first_epoch):
            self.sampler.set_epoch(epoch)
            yield from self.batches


class EpochBatches:
    """The batches of one epoch of a :class:`TrainEpochs` (``len()``: batches per epoch)."""

    def __init__(self, epochs: "TrainEpochs", epoch: int):
        self._epochs = epochs
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._epochs)

    def __iter__(self) -> Iterator:
        return self._epochs.batches_of(self.epoch)


class TrainEpochs:
    """One epoch at a time from a training loader built on an :class:`EpochBatchSampler`.

    ``epoch(e)`` right after epoch e - 1 goes on with the running iterator, whose workers have
    already started on epoch e. Any other request (the first epoch, a resumed run, epoch e once
    more for precise BN, or epoch e + 1 when many batches of e were not taken) restarts the
    iterator at e. Batches of e - 1 that were not taken are skipped when they are no more than
    the loader has in flight anyway (``prefetch_factor`` per worker), e.g. the micro-batches
    that gradient accumulation leaves over; with more left over it restarts.
    """

    def __init__(self, loader: DataLoader):
        if not isinstance(loader.batch_sampler, EpochBatchSampler):
            raise TypeError("TrainEpochs needs a loader built with an EpochBatchSampler")
        self.loader = loader
        self._batches: Optional[Iterator] = None
        self._epoch = -1  # the epoch the running iterator is in
        self._left = 0  # batches of that epoch not taken yet

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self) -> Dataset:
        """The loader's dataset."""
        return self.loader.dataset

    def epoch(self, epoch: int) -> EpochBatches:
        """The batches of ``epoch`` (iterate them once)."""
        return EpochBatches(self, epoch)

    def _in_flight(self) -> int:
        """Batches the loader requests ahead (``prefetch_factor`` per worker; None without workers)."""
        return self.loader.num_workers * (self.loader.prefetch_factor or 0)

    def batches_of(self, epoch: int) -> Iterator:
        """Yield the batches of ``epoch`` from the running iterator (restarted if needed)."""
        try:
            if self._batches is not None and epoch == self._epoch + 1 and self._left <= self._in_flight():
                for _ in range(self._left):
                    next(self._batches)
            else:
                self.close()  # without persistent workers, the old workers stop before new ones start
                self.loader.batch_sampler.first_epoch = epoch
                self._batches = iter(self.loader)
            self._epoch, self._left = epoch, len(self)
            while self._left > 0:
                batch = next(self._batches)
                self._left -= 1
                yield batch
        except GeneratorExit:  # the consumer stopped taking batches: the position is known
            raise
        except BaseException:
            self.close()  # a failed batch leaves the iterator's position unknown: start over next time
            raise

    def close(self) -> None:
        """Drop the running iterator (its workers stop unless they are persistent)."""
        self._batches = None
