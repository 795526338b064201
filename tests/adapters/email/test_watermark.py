"""Watermarks: resume after the stored UID, start over when UIDVALIDITY changed, persist."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.email.watermark import (
    MemoryWatermarkStore,
    SqlWatermarkStore,
    Watermark,
    plan_sync,
)
from connectors.storage.db import Database

validities = st.integers(min_value=1, max_value=2**32 - 1)
uids = st.integers(min_value=0, max_value=2**32 - 1)


@given(validities, uids, validities)
def test_a_plan_resumes_only_within_the_same_uidvalidity(stored_validity, last, current):
    plan = plan_sync(Watermark(stored_validity, last), current)
    if stored_validity == current:
        assert (plan.last_uid, plan.reset) == (last, False)
    else:
        assert (plan.last_uid, plan.reset) == (0, True)
        assert plan.previous_uidvalidity == stored_validity


def test_without_a_watermark_the_sync_starts_at_the_beginning_without_a_reset():
    plan = plan_sync(None, 42)
    assert (plan.last_uid, plan.reset, plan.previous_uidvalidity) == (0, False, None)


def test_the_memory_store_never_moves_backwards_within_a_uidvalidity():
    async def main():
        store = MemoryWatermarkStore()
        await store.save("t", "a", "INBOX", Watermark(1, 10))
        await store.save("t", "a", "INBOX", Watermark(1, 5))
        kept = await store.load("t", "a", "INBOX")
        await store.save("t", "a", "INBOX", Watermark(2, 3))
        return kept, await store.load("t", "a", "INBOX")

    kept, reset = asyncio.run(main())
    assert kept == Watermark(1, 10)
    assert reset == Watermark(2, 3)


def test_the_sql_store_persists_per_tenant_account_and_mailbox(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"

    async def main():
        database = Database(url)
        store = SqlWatermarkStore(database)
        await store.save("acme", "u@host", "INBOX", Watermark(7, 100))
        await store.save("acme", "u@host", "INBOX", Watermark(7, 90))  # stale commit
        await store.save("globex", "u@host", "INBOX", Watermark(7, 5))
        await database.dispose()
        database = Database(url)  # a new process reads it back
        store = SqlWatermarkStore(database)
        found = (
            await store.load("acme", "u@host", "INBOX"),
            await store.load("globex", "u@host", "INBOX"),
            await store.load("acme", "u@host", "Sent"),
        )
        await database.dispose()
        return found

    acme, globex, missing = asyncio.run(main())
    assert acme == Watermark(7, 100)
    assert globex == Watermark(7, 5)
    assert missing is None
