"""Invariant 1 for the secrets package: a canary value set through every path never shows.

The canary goes in through the store, every resolver and the master-key parser; every error,
repr and log record produced on the way (caplog at DEBUG, all loggers) is searched for it, and
so is the SQLite file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import update

from connectors.errors import ConnectorError
from connectors.secrets.aws import AwsSecretsManagerResolver
from connectors.secrets.crypto import MasterKeyring
from connectors.secrets.refs import SecretRef, parse_ref
from connectors.secrets.resolvers import EnvResolver, FileResolver, ResolverRegistry
from connectors.secrets.secret import Secret
from connectors.secrets.store import ChangeEvent
from connectors.secrets.vault import VaultResolver
from connectors.storage.credentials import CredentialRow

from ._support import CANARY, VAULT_TOKEN, kv_server, open_store


class Seen:
    """Everything that could leak: error texts and reprs collected along the way."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *objects: object) -> None:
        for obj in objects:
            self.texts.append(repr(obj))
            self.texts.append(str(obj))
            if isinstance(obj, BaseException):
                self.texts.append(" ".join(map(str, obj.args)))
                if isinstance(obj, ConnectorError):
                    self.texts.append(json.dumps(obj.context(), default=str))
                    self.texts.append(str(obj.hint))

    async def error(self, awaitable: object) -> BaseException:
        try:
            await awaitable  # type: ignore[misc]
        except Exception as exc:
            self.add(exc)
            return exc
        raise AssertionError("expected an error")


def _records_text(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.__dict__))
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


def test_canary_never_appears_in_errors_reprs_logs_or_the_database(
    db_url, tmp_path, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    seen = Seen()
    events: list[ChangeEvent] = []

    async def hook(event: ChangeEvent) -> None:
        events.append(event)

    async def main() -> None:
        async with open_store(db_url, on_change=hook) as store:
            # --- the store
            await store.put(
                "acme", "sf", {"value": CANARY, "other": Secret(CANARY)}, actor="a", metadata={}
            )
            cred = await store.get("acme", "sf")
            assert cred.fields["value"].reveal() == CANARY
            seen.add(cred, cred.fields, cred.fields["value"], await store.list("acme"), store)
            seen.add(await store.get_field("acme", "sf"))
            await seen.error(store.get_field("acme", "sf", "missing"))
            await seen.error(
                store.put("acme", "sf", {"value": CANARY}, actor="a", expected_version=9)
            )
            await seen.error(store.get("globex", "sf"))
            await seen.error(store.put("acme", "bad name", {"value": CANARY}, actor="a"))
            await seen.error(
                store.put(
                    "acme", "sf", {"value": CANARY}, actor="a", metadata={"x": Secret(CANARY)}
                )
            )
            # a tampered row
            await store.put("globex", "sf", {"value": "globex"}, actor="a")
            async with store._db.session() as session:
                row = await session.get(CredentialRow, 1)
                assert row is not None
                await session.execute(
                    update(CredentialRow)
                    .where(CredentialRow.tenant == "globex")
                    .values(ciphertext=row.ciphertext, nonce=row.nonce)
                )
            store.clear_cache()
            await seen.error(store.get("globex", "sf"))
            await store.update_metadata("acme", "sf", {"m": 1}, actor="a", expected_version=1)
            await store.delete("acme", "sf", actor="a")

            # --- env, file and secret resolvers through the registry
            secret_file = tmp_path / "canary.txt"
            secret_file.write_text(CANARY + "\n")
            secret_file.chmod(0o644)  # world-readable: logs a warning, which must not leak
            await store.put("acme", "api", {"value": CANARY}, actor="a")
            registry = ResolverRegistry.with_builtins(
                store, environ={"CANARY": CANARY}, base_dir=tmp_path, discover=False
            )
            for text in ("${env:CANARY}", "${file:canary.txt}", "${secret:api}"):
                value = await registry.resolve(parse_ref(text), tenant="acme")
                assert value.reveal() == CANARY
                seen.add(value)
            await seen.error(registry.resolve(parse_ref("${secret:api#nope}"), tenant="acme"))
            await seen.error(registry.resolve(parse_ref("${env:NOPE}"), tenant="acme"))
            seen.add(EnvResolver({"CANARY": CANARY}), FileResolver(tmp_path), registry)

            # --- vault
            with kv_server() as (url, state):
                state.secrets["secret/app"] = {"k": CANARY}
                state.denied.add("secret/locked")
                vault = VaultResolver(url, Secret(VAULT_TOKEN))
                value = await vault.resolve(parse_ref("${vault:app#k}"), tenant="acme")
                assert value.reveal() == CANARY
                seen.add(value, vault)
                await seen.error(vault.resolve(parse_ref("${vault:app#nope}"), tenant="acme"))
                await seen.error(vault.resolve(parse_ref("${vault:locked#k}"), tenant="acme"))
                bad_token = VaultResolver(url, Secret(CANARY))
                seen.add(bad_token)
                await seen.error(bad_token.resolve(parse_ref("${vault:app#k}"), tenant="acme"))
                await bad_token.aclose()
                await vault.aclose()

            # --- aws
            client = boto3.client("secretsmanager", region_name="eu-west-1")
            with caplog.at_level(logging.WARNING):  # test set-up, not a framework path
                client.create_secret(Name="json", SecretString=json.dumps({"k": CANARY}))
                client.create_secret(Name="plain", SecretString=CANARY)
            aws = AwsSecretsManagerResolver(client=client)
            value = await aws.resolve(parse_ref("${aws-sm:json#k}"), tenant="acme")
            assert value.reveal() == CANARY
            seen.add(value, aws)
            await seen.error(aws.resolve(parse_ref("${aws-sm:json#nope}"), tenant="acme"))
            await seen.error(aws.resolve(parse_ref("${aws-sm:plain#k}"), tenant="acme"))
            client.close()

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        asyncio.run(main())

    # --- master keys and references made of the canary
    canary_key = base64.b64encode(CANARY.encode().ljust(32, b"x")[:32]).decode()
    for text in (f"k1:{CANARY}", f"{CANARY}", f"k1:{canary_key[:-4]}"):
        with pytest.raises(ConnectorError) as info:
            MasterKeyring.parse(text)
        seen.add(info.value)
    seen.add(MasterKeyring.parse(f"k1:{canary_key}"))
    # Malformed references are quoted (up to 40 characters) in their errors: a reference is a
    # name, not a value, and the quote is what lets a user find it. So they are not fed the
    # canary here; test_refs checks that long text is excerpted, not echoed.
    seen.add(SecretRef("env", "NAME"))
    seen.add(*events)

    assert len(events) >= 5
    leaks = [t for t in seen.texts + _records_text(caplog) if CANARY in t or canary_key in t]
    assert leaks == [], leaks[:3]
    assert any("readable by every user" in r.getMessage() for r in caplog.records)
    database = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    assert CANARY.encode() not in database
