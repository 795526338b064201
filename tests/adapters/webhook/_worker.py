"""A webhook delivery worker process for the crash test and the benchmark.

``python _worker.py <sqlite-path> <whsec-secret> [concurrency] [lease-seconds]`` runs the local
job runner against the database until killed.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from connectors.adapters.webhook import (
    SERVICE_KEY,
    DeliveryService,
    StaticSecrets,
    register_jobs,
)
from connectors.jobs import JobRegistry, LocalJobRunner
from connectors.secrets import Secret
from connectors.storage.db import Database


async def main(path: str, secret: str, concurrency: int, lease: float) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    service = DeliveryService(db, secrets=StaticSecrets({"${secret:hook}": Secret(secret)}))
    registry = JobRegistry()
    register_jobs(registry)
    runner = LocalJobRunner(
        db,
        registry,
        concurrency=concurrency,
        lease=lease,
        poll=0.05,
        services={SERVICE_KEY: service},
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runner.start()
    print("ready", flush=True)
    await stop.wait()
    await runner.shutdown(grace=5)
    await service.aclose()
    await db.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            args[0],
            args[1],
            int(args[2]) if len(args) > 2 else 4,
            float(args[3]) if len(args) > 3 else 2.0,
        )
    )
