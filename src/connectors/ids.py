"""Random identifiers (request and event ids) drawn from a buffered pool of OS randomness.

Every operation makes a request id and an audit event id. One ``os.urandom`` call each is a
system call, cheap on an idle machine but tens of microseconds on a busy one; drawing 4 KiB at a
time and slicing it keeps the same source (the OS's CSPRNG) and the same unpredictability, at
one system call per ~250 ids. A forked child starts with an empty pool, so parent and child never
hand out the same bytes.
"""

from __future__ import annotations

import os
import threading
from typing import Final

__all__ = ["random_hex"]

_POOL_BYTES: Final = 4096


class _Pool:
    __slots__ = ("buffer", "lock", "offset")

    def __init__(self) -> None:
        self.buffer = b""
        self.offset = 0
        self.lock = threading.Lock()

    def reset(self) -> None:
        self.buffer = b""
        self.offset = 0
        self.lock = threading.Lock()


_pool: Final = _Pool()
os.register_at_fork(after_in_child=_pool.reset)


def random_hex(nbytes: int) -> str:
    """``nbytes`` fresh random bytes from the OS's CSPRNG, as ``2 * nbytes`` hex characters.

    For identifiers; keys and tokens come from :mod:`secrets`. Safe across threads (a lock
    keeps two callers from taking the same slice) and across ``fork``.
    """
    pool = _pool
    with pool.lock:
        start = pool.offset
        end = start + nbytes
        if end > len(pool.buffer):
            pool.buffer = os.urandom(max(_POOL_BYTES, nbytes))
            start, end = 0, nbytes
        pool.offset = end
        return pool.buffer[start:end].hex()
