"""A map over worker processes, or over this process for a single worker."""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def worker_map(num_processes: int) -> Iterator[Callable]:
    """Yields a lazy `map(fn, *iterables)` whose results come in order. With more than one process it runs in
    spawned workers (as nnU-Net's preprocessing does); with one, in this process, which saves starting a worker
    and keeps tracebacks and breakpoints where the work happens. Leaving the block early cancels what has not
    started."""
    if num_processes <= 1:
        yield map
        return
    with ProcessPoolExecutor(max_workers=num_processes, mp_context=multiprocessing.get_context('spawn')) as executor:
        yield executor.map
