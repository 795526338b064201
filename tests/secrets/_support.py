"""Helpers shared by the secrets tests (not a test module)."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from connectors.clock import Clock, FakeClock
from connectors.secrets.crypto import MasterKeyring
from connectors.secrets.store import ChangeHook, CredentialStore
from connectors.storage.db import Database

CANARY = "CANARY-9f2c7e1d-never-shown"


def key_entry(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def keyring(*kids: str) -> MasterKeyring:
    return MasterKeyring.parse(",".join(key_entry(k) for k in kids or ("k1",)))


@asynccontextmanager
async def open_db(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    try:
        await db.create_all()
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def open_store(
    url: str,
    ring: MasterKeyring | None = None,
    *,
    clock: Clock | None = None,
    cache_ttl: float = 60.0,
    on_change: ChangeHook | None = None,
) -> AsyncIterator[CredentialStore]:
    async with open_db(url) as db:
        yield CredentialStore(
            db,
            ring or keyring(),
            clock=clock or FakeClock(),
            cache_ttl=cache_ttl,
            on_change=on_change,
        )


# --- a KV v2-compatible Vault stand-in -----------------------------------------------------------
#
# There is no Vault binary here. This server implements ``GET /v1/<mount>/data/<path>`` with
# Vault's real response shapes (200 ``{"data": {"data": ..., "metadata": ...}}``, 404
# ``{"errors": []}`` or the deleted-version body, 403 ``permission denied``) and checks the
# ``X-Vault-Token`` header; the real hvac client talks to it over HTTP on 127.0.0.1.

VAULT_TOKEN = "hvs.test-token-value"


def _metadata(version: int = 1, deleted: bool = False) -> dict[str, object]:
    return {
        "created_time": "2025-01-01T00:00:00.000000Z",
        "custom_metadata": None,
        "deletion_time": "2025-02-01T00:00:00.000000Z" if deleted else "",
        "destroyed": False,
        "version": version,
    }


@dataclass
class KvState:
    secrets: dict[str, dict[str, object]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _handler(state: KvState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: object) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            state.requests.append((path, dict(self.headers.items())))
            if self.headers.get("X-Vault-Token") != VAULT_TOKEN:
                self._send(403, {"errors": ["permission denied"]})
                return
            parts = path.split("/")  # "", "v1", mount, "data", *path
            if len(parts) < 5 or parts[1] != "v1" or parts[3] != "data":
                self._send(404, {"errors": []})
                return
            key = f"{parts[2]}/{'/'.join(parts[4:])}"
            if key in state.denied:
                self._send(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
            elif key in state.failing:
                self._send(500, {"errors": ["internal error"]})
            elif key in state.deleted:
                self._send(404, {"data": {"data": None, "metadata": _metadata(2, deleted=True)}})
            elif key in state.secrets:
                self._send(
                    200,
                    {
                        "request_id": "5b2b5f0e-0000-0000-0000-000000000000",
                        "lease_id": "",
                        "renewable": False,
                        "lease_duration": 0,
                        "data": {"data": state.secrets[key], "metadata": _metadata()},
                        "wrap_info": None,
                        "warnings": None,
                        "auth": None,
                    },
                )
            else:
                self._send(404, {"errors": []})

    return Handler


@contextmanager
def kv_server() -> Iterator[tuple[str, KvState]]:
    """A running KV v2 server: ``(base_url, state)``."""
    state = KvState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
