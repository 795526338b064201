"""The spool file: FIFO order, committed offsets across restarts, torn and corrupt lines."""

from __future__ import annotations

import asyncio

from connectors.audit.spool import Spool
from connectors.clock import FakeClock

from ._support import make_event


def events(*ns: int):
    clock = FakeClock()
    return [make_event(clock, n=n) for n in ns]


def ns(batch) -> list[int]:
    return [e.details["n"] for e in batch]


def test_events_come_back_in_the_order_they_were_spooled(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(events(1, 2))
    spool.append(events(3))
    batch, end, rejected = spool.read_batch(10)
    assert ns(batch) == [1, 2, 3]
    assert rejected == 0
    assert spool.pending == 3
    spool.commit(end, 3)
    assert not spool.has_pending
    assert spool.pending == 0
    assert (tmp_path / "spool.jsonl").stat().st_size == 0
    spool.close()


def test_the_committed_offset_survives_a_restart(tmp_path):
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append(events(1, 2, 3, 4))
    batch, end, _ = spool.read_batch(2)
    assert ns(batch) == [1, 2]
    spool.commit(end, 2)
    asyncio.run(spool.sync())
    spool.close()
    again = Spool(path)
    assert again.pending == 2
    assert again.has_pending
    assert ns(again.read_batch(10)[0]) == [3, 4]
    again.close()


def test_a_torn_last_line_is_cut_on_open(tmp_path):
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append(events(1))
    spool.close()
    with open(path, "ab") as f:
        f.write(b'{"id": "trunc')
    again = Spool(path)
    assert again.pending == 1
    assert ns(again.read_batch(10)[0]) == [1]
    assert path.read_bytes().endswith(b"\n")
    again.close()


def test_prepend_puts_older_events_before_pending_ones(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(events(5, 6, 7))
    _batch, end, _ = spool.read_batch(1)
    spool.commit(end, 1)  # 5 delivered
    spool.prepend(events(3, 4))
    assert spool.pending == 4
    assert ns(spool.read_batch(10)[0]) == [3, 4, 6, 7]
    spool.append(events(8))
    assert ns(spool.read_batch(10)[0]) == [3, 4, 6, 7, 8]
    spool.close()


def test_a_corrupt_line_is_set_aside_not_replayed_forever(tmp_path):
    path = tmp_path / "spool.jsonl"
    spool = Spool(path)
    spool.append(events(1))
    spool.close()
    with open(path, "ab") as f:
        f.write(b"not json\n")
    spool = Spool(path)
    spool.append(events(2))
    batch, end, rejected = spool.read_batch(10)
    assert ns(batch) == [1, 2]
    assert rejected == 1
    spool.commit(end, 3)
    assert spool.rejected_path.read_bytes() == b"not json\n"
    spool.close()
