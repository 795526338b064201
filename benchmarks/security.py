"""Security benchmarks.

Part 1, credentials: the latency of reading a credential from the encrypted store on SQLite,
uncached (a database read plus an AES-256-GCM decryption) against cached (a dictionary hit),
and the decryption alone.

    python benchmarks/security.py            # a table
    python benchmarks/security.py --json     # one JSON object

Each ``bench_*`` function returns a dict; ``main`` runs them all. Audit write throughput is
added here later as ``bench_audit()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from connectors.secrets.crypto import (
    DataKey,
    MasterKeyring,
    credential_aad,
    generate_master_key_entry,
)
from connectors.secrets.store import CredentialStore
from connectors.storage.db import Database

TENANTS = 10
FIELDS = {"client_id": "3MVG9" + "x" * 80, "client_secret": "s" * 64, "refresh_token": "r" * 120}


async def _per_call_us(call: Callable[[], Awaitable[object]], count: int) -> dict[str, float]:
    """Mean and median microseconds per call over ``count`` calls (after a short warm-up)."""
    for _ in range(min(50, count)):
        await call()
    samples: list[float] = []
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1e6)
    total = time.perf_counter() - start
    return {
        "mean_us": total / count * 1e6,
        "p50_us": statistics.median(samples),
        "p99_us": sorted(samples)[int(count * 0.99) - 1],
    }


async def _bench_credentials(reads: int, directory: Path) -> dict[str, object]:
    db = Database(f"sqlite+aiosqlite:///{directory}/bench.db")
    await db.create_all()
    keyring = MasterKeyring.parse(generate_master_key_entry("bench"))
    try:
        writer = CredentialStore(db, keyring)
        for i in range(TENANTS):
            await writer.put(f"tenant-{i}", "salesforce", FIELDS, actor="bench")
        uncached = CredentialStore(db, keyring, cache_ttl=0)
        cached = CredentialStore(db, keyring, cache_ttl=3600)
        counter = 0

        async def read(store: CredentialStore) -> object:
            nonlocal counter
            counter += 1
            return await store.get(f"tenant-{counter % TENANTS}", "salesforce")

        results: dict[str, object] = {
            "reads": reads,
            "tenants": TENANTS,
            "uncached": await _per_call_us(lambda: read(uncached), reads),
            "cached": await _per_call_us(lambda: read(cached), reads * 10),
        }

        data_key = DataKey("tenant-0", keyring.new_data_key())
        aad = credential_aad("tenant-0", "salesforce", 1)
        nonce, ciphertext = data_key.encrypt(json.dumps({"fields": FIELDS}).encode(), aad)

        async def decrypt() -> object:
            return data_key.decrypt(nonce, ciphertext, aad)

        results["decrypt_only"] = await _per_call_us(decrypt, reads * 10)
        results["put"] = await _per_call_us(
            lambda: writer.put("tenant-0", "salesforce", FIELDS, actor="bench"),
            max(reads // 10, 20),
        )
        return results
    finally:
        await db.dispose()


def bench_credentials(reads: int = 2000) -> dict[str, object]:
    """Credential read latency (µs): uncached, cached, decryption alone, and a put."""
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(_bench_credentials(reads, Path(directory)))


def _table(results: dict[str, dict[str, object]]) -> str:
    lines = [f"{'benchmark':<32} {'mean µs':>10} {'p50 µs':>10} {'p99 µs':>10}"]
    for group, values in results.items():
        for name, value in values.items():
            if isinstance(value, dict):
                lines.append(
                    f"{group + '.' + name:<32} {value['mean_us']:>10.1f} "
                    f"{value['p50_us']:>10.1f} {value['p99_us']:>10.1f}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--reads", type=int, default=2000, help="uncached reads to time")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, object]] = {"credentials": bench_credentials(args.reads)}
    if args.json:
        print(json.dumps(results))
    else:
        print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
