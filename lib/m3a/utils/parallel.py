"""Running a function over many items in worker processes, with a tqdm progress bar."""
import multiprocessing
import sys
from typing import Callable, Iterable, Iterator, Optional, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def _limit_threads() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _context():
    # fork is fast; it is safe while this process has not started torch's thread pools.
    if "torch" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def parallel_imap(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int = 1,
    desc: str = "",
    initializer: Optional[Callable] = None,
    initargs: tuple = (),
    chunksize: int = 4,
    disable_progress: bool = False,
    unit: str = "file",
) -> Iterator[R]:
    """Yield ``func(item)`` in input order, in up to ``workers`` processes (no more than there
    are items; in-process for 1)."""
    workers = min(workers, len(items))
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        results: Iterable[R] = map(func, items)
        pool = None
    else:
        pool = _context().Pool(workers, initializer=_Init(initializer), initargs=initargs)
        results = pool.imap(func, items, chunksize=chunksize)
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=disable_progress, dynamic_ncols=True)
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
    """Picklable worker initialiser: the caller's initialiser, then one torch thread per worker."""

    def __init__(self, initializer: Optional[Callable]):
        self.initializer = initializer

    def __call__(self, *args) -> None:
        if self.initializer is not None:
            self.initializer(*args)
        _limit_threads()
