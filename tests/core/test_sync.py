"""The sync face: one background loop, thread-safe, iterators, clean shutdown."""

import threading

import pytest

import connectors
from connectors.errors import LifecycleError
from connectors.sync import BackgroundLoop


def test_get_connector_blocks_and_returns_results(hub):
    conn = connectors.get_connector("echo", tenant_id="acme", hub=hub)
    try:
        assert conn.echo("hello") == "hello"
        assert conn.create("x") == "id-x"
    finally:
        conn.close()
    with pytest.raises(LifecycleError):
        conn.echo("after close")


def test_streaming_operations_become_plain_iterators(hub):
    with connectors.get_connector("echo", tenant_id="acme", hub=hub) as conn:
        assert list(conn.pages(4)) == [0, 1, 2, 3]


def test_an_iterator_can_stop_early(hub):
    with connectors.get_connector("echo", tenant_id="acme", hub=hub) as conn:
        it = conn.pages(10)
        assert next(it) == 0
        it.close()
        with pytest.raises(StopIteration):
            next(it)


def test_sync_face_is_thread_safe(hub):
    results: list[str] = []
    lock = threading.Lock()
    with connectors.get_connector("echo", tenant_id="acme", hub=hub) as conn:

        def worker(i: int) -> None:
            for j in range(20):
                value = conn.echo(f"{i}-{j}")
                with lock:
                    results.append(value)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == sorted(f"{i}-{j}" for i in range(8) for j in range(20))


def test_open_connector_is_the_async_face(hub):
    import asyncio

    async def main():
        async with connectors.open_connector("echo", tenant_id="acme", hub=hub) as conn:
            return await conn.echo("async")

    assert asyncio.run(main()) == "async"


def test_shutdown_closes_open_connectors(hub):
    loop = BackgroundLoop()
    conn = hub.connector("echo", tenant_id="acme")
    loop.run(conn.connect())
    from connectors.sync import SyncConnector

    handle = SyncConnector(conn, loop)
    assert handle.echo("x") == "x"
    loop.shutdown()
    assert conn.state.value == "closed"
    assert not loop.thread.is_alive()
