"""Running a function over many items in worker processes, with a tqdm progress bar."""
import multiprocessing
from typing import Callable, Iterable, Iterator, Optional, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def _limit_threads() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is a dependency; this only keeps the helper usable without it
        pass


def parallel_imap(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int = 1,
    desc: str = "",
    initializer: Optional[Callable] = None,
    initargs: tuple = (),
    chunksize: int = 4,
    disable_progress: bool = False,
) -> Iterator[R]:
    """Yield ``func(item)`` in input order, in ``workers`` processes (or in-process for 1)."""
    bar = tqdm(total=len(items), desc=desc, unit="file", disable=disable_progress, dynamic_ncols=True)
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        results: Iterable[R] = map(func, items)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_Init(initializer), initargs=initargs)
        results = pool.imap(func, items, chunksize=chunksize)
    try:
        for result in results:
            bar.update(1)
            yield result
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()


class _Init:
    """Picklable worker initialiser: one torch thread per worker, then the caller's initialiser."""

    def __init__(self, initializer: Optional[Callable]):
        self.initializer = initializer

    def __call__(self, *args) -> None:
        _limit_threads()
        if self.initializer is not None:
            self.initializer(*args)
