"""Built-in resolvers (env, file, secret), the caching wrapper and the registry with plugins."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging

import pytest

from connectors.clock import FakeClock
from connectors.errors import ConfigurationError, CredentialMissing, DefinitionError
from connectors.secrets.refs import SecretRef, parse_ref
from connectors.secrets.resolvers import (
    ENTRY_POINT_GROUP,
    CachingResolver,
    EnvResolver,
    FileResolver,
    ResolverRegistry,
    SecretResolver,
    StoreResolver,
)
from connectors.secrets.secret import Secret

from ._support import open_store

# --- env -----------------------------------------------------------------------------------------


def test_env_resolves_a_set_variable_as_a_secret():
    resolver = EnvResolver({"SLACK_TOKEN": "xoxb-1"})
    secret = asyncio.run(resolver.resolve(parse_ref("${env:SLACK_TOKEN}"), tenant="acme"))
    assert isinstance(secret, Secret)
    assert secret.reveal() == "xoxb-1"
    assert secret.name == "${env:SLACK_TOKEN}"


def test_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("CONNECTORS_TEST_ENV_SECRET", "from-env")
    secret = asyncio.run(
        EnvResolver().resolve(parse_ref("${env:CONNECTORS_TEST_ENV_SECRET}"), tenant="t")
    )
    assert secret.reveal() == "from-env"


@pytest.mark.parametrize("environ", [{}, {"SLACK_TOKEN": ""}])
def test_env_unset_or_empty_is_missing_naming_tenant_and_reference(environ):
    with pytest.raises(CredentialMissing) as info:
        asyncio.run(EnvResolver(environ).resolve(parse_ref("${env:SLACK_TOKEN}"), tenant="acme"))
    text = str(info.value)
    assert "${env:SLACK_TOKEN}" in text
    assert "'acme'" in text
    assert "set the environment variable SLACK_TOKEN" in text


# --- file ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("tok\n", "tok"),
        ("tok\r\n", "tok"),
        ("tok\n\n", "tok\n"),
        ("tok", "tok"),
        (" a b ", " a b "),
    ],
)
def test_file_strips_exactly_one_trailing_newline(tmp_path, content, expected):
    path = tmp_path / "secret"
    path.write_text(content)
    path.chmod(0o600)
    secret = asyncio.run(FileResolver().resolve(SecretRef("file", str(path)), tenant="t"))
    assert secret.reveal() == expected


def test_file_relative_paths_start_at_base_dir(tmp_path):
    (tmp_path / "sf.key").write_text("k\n")
    resolver = FileResolver(base_dir=tmp_path)
    assert asyncio.run(resolver.resolve(parse_ref("${file:sf.key}"), tenant="t")).reveal() == "k"


def test_file_missing_or_empty_or_directory_is_credential_missing(tmp_path):
    (tmp_path / "empty").write_text("\n")
    for path in (tmp_path / "nope", tmp_path / "empty", tmp_path):
        with pytest.raises(CredentialMissing) as info:
            asyncio.run(FileResolver().resolve(SecretRef("file", str(path)), tenant="acme"))
        assert "'acme'" in str(info.value)


def test_file_readable_by_everyone_resolves_with_a_logged_warning(tmp_path, caplog):
    path = tmp_path / "open"
    path.write_text("world-readable-value\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="connectors.secrets"):
        secret = asyncio.run(FileResolver().resolve(SecretRef("file", str(path)), tenant="t"))
    assert secret.reveal() == "world-readable-value"
    assert any("readable by every user" in r.getMessage() for r in caplog.records)
    assert all("world-readable-value" not in r.getMessage() for r in caplog.records)


def test_private_file_resolves_without_warning(tmp_path, caplog):
    path = tmp_path / "closed"
    path.write_text("v")
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="connectors.secrets"):
        asyncio.run(FileResolver().resolve(SecretRef("file", str(path)), tenant="t"))
    assert caplog.records == []


def test_file_that_is_not_utf8_is_a_configuration_error(tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        asyncio.run(FileResolver().resolve(SecretRef("file", str(path)), tenant="t"))


# --- secret: (the tenant store) ------------------------------------------------------------------


def test_secret_scheme_reads_the_calling_tenants_store_only(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("acme", "slack", {"value": "acme-v", "bot": "acme-bot"}, actor="x")
            await store.put("globex", "slack", {"value": "globex-v"}, actor="x")
            resolver = StoreResolver(store)
            ref = parse_ref("${secret:slack}")
            assert (await resolver.resolve(ref, tenant="acme")).reveal() == "acme-v"
            assert (await resolver.resolve(ref, tenant="globex")).reveal() == "globex-v"
            field = parse_ref("${secret:slack#bot}")
            assert (await resolver.resolve(field, tenant="acme")).reveal() == "acme-bot"
            with pytest.raises(CredentialMissing) as info:
                await resolver.resolve(field, tenant="globex")
            assert "${secret:slack#bot}" in str(info.value)
            assert "'globex'" in str(info.value)
            assert "acme" not in str(info.value)
            with pytest.raises(CredentialMissing) as info:
                await resolver.resolve(ref, tenant="initech")
            assert "${secret:slack}" in str(info.value)
            assert "'initech'" in str(info.value)

    asyncio.run(main())


# --- caching wrapper -----------------------------------------------------------------------------


class CountingResolver:
    scheme = "count"

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        self.calls += 1
        return Secret(f"{tenant}:{ref.path}:{self.calls}")


def test_caching_resolver_caches_per_tenant_until_ttl():
    async def main():
        clock = FakeClock()
        inner = CountingResolver()
        cached = CachingResolver(inner, ttl=30, clock=clock)
        ref = SecretRef("count", "x")
        a1 = await cached.resolve(ref, tenant="a")
        assert (await cached.resolve(ref, tenant="a")) is a1
        b1 = await cached.resolve(ref, tenant="b")
        assert b1.reveal().startswith("b:")
        assert inner.calls == 2
        clock.advance(31)
        assert (await cached.resolve(ref, tenant="a")).reveal() == "a:x:3"
        b2 = await cached.resolve(ref, tenant="b")  # expired too
        assert inner.calls == 4
        cached.invalidate("a")
        await cached.resolve(ref, tenant="a")
        assert (await cached.resolve(ref, tenant="b")) is b2
        assert inner.calls == 5
        cached.invalidate()
        await cached.resolve(ref, tenant="b")
        assert inner.calls == 6

    asyncio.run(main())


# --- registry ------------------------------------------------------------------------------------


def test_registry_resolves_through_the_scheme_and_names_unknown_schemes():
    async def main():
        registry = ResolverRegistry.with_builtins(environ={"A": "1"}, discover=False)
        assert registry.schemes == ("env", "file")
        assert (await registry.resolve(parse_ref("${env:A}"), tenant="t")).reveal() == "1"
        with pytest.raises(DefinitionError) as info:
            await registry.resolve(parse_ref("${vault:x#y}"), tenant="t")
        assert "no secret resolver for scheme 'vault'" in str(info.value)
        assert "env, file" in str(info.value)
        with pytest.raises(DefinitionError):
            registry.check(parse_ref("${onepassword:x}"))
        registry.check(parse_ref("${tenant.id}"))

    asyncio.run(main())


def test_registry_adds_the_tenant_to_errors_and_resolves_tenant_id_as_text():
    async def main():
        registry = ResolverRegistry([EnvResolver({})])
        with pytest.raises(CredentialMissing) as info:
            await registry.resolve(parse_ref("${env:NOPE}"), tenant="acme")
        assert info.value.tenant == "acme"
        assert await registry.resolve_text(parse_ref("${tenant.id}"), tenant="acme") == "acme"
        with pytest.raises(ValueError, match="context reference"):
            await registry.resolve(parse_ref("${tenant.id}"), tenant="acme")
        with pytest.raises(ValueError, match="calling tenant"):
            await registry.resolve(parse_ref("${env:NOPE}"), tenant="")

    asyncio.run(main())


def test_registry_refuses_a_duplicate_scheme_unless_replacing():
    registry = ResolverRegistry([EnvResolver({})])
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(EnvResolver({}))
    replacement = EnvResolver({"X": "y"})
    registry.register(replacement, replace=True)
    assert registry.get("env") is replacement


def test_registry_refuses_a_resolver_that_returns_clear_text():
    class Leaky:
        scheme = "leaky"

        async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
            return "clear"  # type: ignore[return-value]

    registry = ResolverRegistry([Leaky()])
    with pytest.raises(ConfigurationError, match="not a Secret"):
        asyncio.run(registry.resolve(parse_ref("${leaky:x}"), tenant="t"))


# --- entry-point discovery -----------------------------------------------------------------------


class PluginResolver:
    """What a third-party package would expose through the entry point."""

    scheme = "plugin"

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        return Secret(f"plugin:{tenant}:{ref.path}")


class WrongSchemeResolver(PluginResolver):
    scheme = "other"


def _broken_factory() -> SecretResolver:
    raise RuntimeError("plugin import failed")


def _fake_entry_points(monkeypatch, *points: importlib.metadata.EntryPoint) -> list[str]:
    groups: list[str] = []

    def entry_points(*, group: str) -> importlib.metadata.EntryPoints:
        groups.append(group)
        return importlib.metadata.EntryPoints(points)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return groups


def _ep(name: str, target: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP)


def test_plugins_are_discovered_from_the_entry_point_group(monkeypatch):
    groups = _fake_entry_points(monkeypatch, _ep("plugin", f"{__name__}:PluginResolver"))
    registry = ResolverRegistry.with_builtins(environ={})
    assert groups == [ENTRY_POINT_GROUP]
    assert "plugin" in registry.schemes
    secret = asyncio.run(registry.resolve(parse_ref("${plugin:path/x}"), tenant="acme"))
    assert secret.reveal() == "plugin:acme:path/x"


def test_a_plugin_cannot_take_over_a_builtin_scheme(monkeypatch, caplog):
    _fake_entry_points(monkeypatch, _ep("env", f"{__name__}:PluginResolver"))
    with caplog.at_level(logging.WARNING, logger="connectors.secrets"):
        registry = ResolverRegistry.with_builtins(environ={"X": "real"})
    assert isinstance(registry.get("env"), EnvResolver)
    assert any("already provided" in r.getMessage() for r in caplog.records)


def test_a_broken_plugin_is_a_configuration_error_naming_it(monkeypatch):
    _fake_entry_points(monkeypatch, _ep("broken", f"{__name__}:_broken_factory"))
    with pytest.raises(ConfigurationError) as info:
        ResolverRegistry.with_builtins(environ={})
    assert "_broken_factory" in str(info.value)
    assert "'broken'" in str(info.value)


def test_a_plugin_must_serve_the_scheme_it_is_registered_under(monkeypatch):
    _fake_entry_points(monkeypatch, _ep("plugin", f"{__name__}:WrongSchemeResolver"))
    with pytest.raises(ConfigurationError, match="does not provide a resolver"):
        ResolverRegistry.with_builtins(environ={})


def test_discovery_against_the_real_installed_metadata_finds_nothing_unexpected():
    registry = ResolverRegistry.with_builtins(environ={})
    assert {"env", "file"} <= set(registry.schemes)
