"""Random ids from the buffered pool: the right width, never repeated (threads, fork, refills)."""

from __future__ import annotations

import os
import threading

from connectors import ids
from connectors.audit.events import new_event_id
from connectors.context import new_request_id


def test_random_hex_has_twice_the_bytes_in_lowercase_hex() -> None:
    for n in (1, 10, 16, 5000):  # 5000 > the pool: drawn in one piece
        value = ids.random_hex(n)
        assert len(value) == 2 * n
        assert int(value, 16) >= 0
        assert value == value.lower()


def test_ids_do_not_repeat_across_many_pool_refills() -> None:
    seen = {ids.random_hex(16) for _ in range(20_000)}  # ~80 refills of the 4 KiB pool
    assert len(seen) == 20_000


def test_request_and_event_ids_use_the_pool_and_stay_unique() -> None:
    requests = {new_request_id() for _ in range(2_000)}
    events = {new_event_id(1_700_000_000.0) for _ in range(2_000)}
    assert len(requests) == 2_000
    assert all(len(r) == 32 for r in requests)
    assert len(events) == 2_000
    assert all(e.startswith(f"{1_700_000_000_000:012x}") for e in events)


def test_threads_drawing_at_once_never_get_the_same_bytes() -> None:
    results: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def draw(out: list[str]) -> None:
        start.wait()
        out.extend(ids.random_hex(16) for _ in range(3_000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drawn = [value for out in results for value in out]
    assert len(set(drawn)) == len(drawn) == 24_000


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    ids.random_hex(16)  # the parent's pool is now filled, most of it unused
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.close(read_end)
        os.write(write_end, ids.random_hex(16).encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != ids.random_hex(16)  # the parent's next slice, which a copied pool would repeat
