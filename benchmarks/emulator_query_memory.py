"""Page a large SOQL query through the Salesforce emulator in process; report speed and memory.

Usage::

    python benchmarks/emulator_query_memory.py                 # 1,000,000 contacts
    python benchmarks/emulator_query_memory.py --count 200000 --json

The emulator generates seeded records lazily and keeps only a cursor per query, so peak RSS
growth should stay flat (a few MB) whatever the record count.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time

import httpx2
import psutil

from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec, create_salesforce_app
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER


async def measure(count: int, batch_size: int, query: str) -> dict[str, object]:
    emulator = create_salesforce_app(SalesforceEmulatorConfig(seed=SeedSpec(contacts=count)))
    process = psutil.Process()
    transport = httpx2.ASGITransport(app=emulator.app)
    try:
        async with httpx2.AsyncClient(
            transport=transport, base_url="https://emulated.my.salesforce.com"
        ) as http:
            token = (
                await http.post(
                    "/services/oauth2/token",
                    data={
                        "grant_type": "password",
                        "client_id": DEFAULT_APP.consumer_key,
                        "client_secret": DEFAULT_APP.consumer_secret,
                        "username": DEFAULT_USER.username,
                        "password": DEFAULT_USER.password,
                    },
                )
            ).json()["access_token"]
            headers = {
                "Authorization": f"Bearer {token}",
                "Sforce-Query-Options": f"batchSize={batch_size}",
            }
            gc.collect()
            baseline = peak = process.memory_info().rss
            started = time.perf_counter()
            page = (
                await http.get("/services/data/v62.0/query", params={"q": query}, headers=headers)
            ).json()
            seen, pages = len(page["records"]), 1
            while not page["done"]:
                page = (await http.get(page["nextRecordsUrl"], headers=headers)).json()
                seen += len(page["records"])
                pages += 1
                peak = max(peak, process.memory_info().rss)
            elapsed = time.perf_counter() - started
    finally:
        emulator.close()
    return {
        "query": query,
        "records": seen,
        "pages": pages,
        "seconds": round(elapsed, 3),
        "records_per_second": round(seen / elapsed, 1),
        "peak_rss_growth_mb": round((peak - baseline) / 1e6, 2),
        # issue 4: the query pages with flat memory (a few MB, whatever the record count)
        "targets": {"memory_flat_lt_50mb": (peak - baseline) / 1e6 < 50},
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--query", default="SELECT Id, Name, Email FROM Contact")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # Issue 4 asks for the 1,000,000-record figure; it takes under a minute, so --quick keeps it.
    parser.add_argument("--quick", action="store_true", help="accepted; the count stays")
    args = parser.parse_args(argv)
    count = args.count
    result = asyncio.run(measure(count, args.batch_size, args.query))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return result


if __name__ == "__main__":
    main()
