"""VaultResolver against a small KV v2-compatible server on 127.0.0.1 (see ``_support``).

There is no Vault binary here: the test server implements ``GET /v1/<mount>/data/<path>`` with
Vault's real response shapes (200 with ``{"data": {"data": ..., "metadata": ...}}``, 404 with
``{"errors": []}``, 403 ``permission denied``) and checks the ``X-Vault-Token`` header. The real
hvac client talks to it over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from connectors.errors import (
    AuthorizationError,
    ConfigurationError,
    ConnectionFailed,
    CredentialMissing,
    DefinitionError,
    ServiceUnavailable,
)
from connectors.secrets.refs import parse_ref
from connectors.secrets.secret import Secret
from connectors.secrets.vault import VaultResolver

from ._support import VAULT_TOKEN, KvState, kv_server

TOKEN = VAULT_TOKEN


@pytest.fixture
def kv() -> Iterator[tuple[str, KvState]]:
    with kv_server() as server:
        yield server


def resolve(resolver: VaultResolver, text: str, tenant: str = "acme") -> Secret:
    async def main() -> Secret:
        try:
            return await resolver.resolve(parse_ref(text), tenant=tenant)
        finally:
            await resolver.aclose()

    return asyncio.run(main())


def test_reads_a_key_of_a_kv2_secret(kv):
    url, state = kv
    state.secrets["secret/connectors/slack"] = {"token": "xoxb-123", "signing": "s"}
    secret = resolve(VaultResolver(url, Secret(TOKEN)), "${vault:connectors/slack#token}")
    assert isinstance(secret, Secret)
    assert secret.reveal() == "xoxb-123"
    path, headers = state.requests[-1]
    assert path == "/v1/secret/data/connectors/slack"
    assert headers["X-Vault-Token"] == TOKEN


def test_non_string_values_are_json_encoded(kv):
    url, state = kv
    state.secrets["secret/cfg"] = {"port": 5432, "hosts": ["a", "b"]}
    resolver = VaultResolver(url, Secret(TOKEN))
    assert resolve(resolver, "${vault:cfg#port}").reveal() == "5432"
    assert resolve(resolver, "${vault:cfg#hosts}").reveal() == '["a", "b"]'


def test_mount_and_namespace_are_configurable(kv):
    url, state = kv
    state.secrets["kv-prod/app"] = {"k": "v"}
    resolver = VaultResolver(url, Secret(TOKEN), mount="/kv-prod/", namespace="team-a")
    assert resolve(resolver, "${vault:app#k}").reveal() == "v"
    path, headers = state.requests[-1]
    assert path == "/v1/kv-prod/data/app"
    assert headers["X-Vault-Namespace"] == "team-a"


def test_path_template_scopes_reads_to_the_calling_tenant(kv):
    url, state = kv
    state.secrets["secret/tenants/acme/sf"] = {"k": "acme-value"}
    state.secrets["secret/tenants/globex/sf"] = {"k": "globex-value"}
    resolver = VaultResolver(url, Secret(TOKEN), path_template="tenants/{tenant}/{path}")
    assert resolve(resolver, "${vault:sf#k}", tenant="acme").reveal() == "acme-value"
    assert resolve(resolver, "${vault:sf#k}", tenant="globex").reveal() == "globex-value"
    for escape in ("${vault:../globex/sf#k}", "${vault:a/./b#k}", "${vault:a//b#k}"):
        with pytest.raises(DefinitionError, match="segments"):
            resolve(resolver, escape, tenant="acme")


def test_missing_path_is_credential_missing_naming_tenant_and_reference(kv):
    url, _ = kv
    with pytest.raises(CredentialMissing) as info:
        resolve(VaultResolver(url, Secret(TOKEN)), "${vault:nope#k}")
    text = str(info.value)
    assert "${vault:nope#k}" in text
    assert "'acme'" in text
    assert "secret/nope" in text


def test_missing_key_lists_the_keys_that_exist(kv):
    url, state = kv
    state.secrets["secret/app"] = {"a": "value-a", "b": "value-b"}
    with pytest.raises(CredentialMissing) as info:
        resolve(VaultResolver(url, Secret(TOKEN)), "${vault:app#c}")
    text = str(info.value)
    assert "['a', 'b']" in text
    assert "value-a" not in text


def test_deleted_current_version_is_missing(kv):
    url, state = kv
    state.deleted.add("secret/old")
    with pytest.raises(CredentialMissing):
        resolve(VaultResolver(url, Secret(TOKEN)), "${vault:old#k}")


def test_wrong_token_and_denied_path_are_authorization_errors(kv):
    url, state = kv
    state.secrets["secret/app"] = {"k": "v"}
    state.denied.add("secret/locked")
    with pytest.raises(AuthorizationError) as info:
        resolve(VaultResolver(url, Secret("hvs.wrong")), "${vault:app#k}")
    assert info.value.status == 403
    assert "hvs.wrong" not in str(info.value)
    with pytest.raises(AuthorizationError, match="secret/data/locked"):
        resolve(VaultResolver(url, Secret(TOKEN)), "${vault:locked#k}")


def test_server_error_is_service_unavailable(kv):
    url, state = kv
    state.failing.add("secret/app")
    with pytest.raises(ServiceUnavailable):
        resolve(VaultResolver(url, Secret(TOKEN)), "${vault:app#k}")


def test_unreachable_vault_is_connection_failed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionFailed):
        resolve(VaultResolver(f"http://127.0.0.1:{port}", Secret(TOKEN)), "${vault:a#k}")


def test_token_must_be_a_secret_and_never_shows():
    with pytest.raises(ConfigurationError):
        VaultResolver("http://127.0.0.1:1", TOKEN)  # type: ignore[arg-type]
    resolver = VaultResolver("http://127.0.0.1:1", Secret(TOKEN))
    assert TOKEN not in repr(resolver)


def test_path_template_must_contain_the_path():
    with pytest.raises(ConfigurationError, match=r"\{path\}"):
        VaultResolver("http://127.0.0.1:1", Secret(TOKEN), path_template="tenants/{tenant}")
