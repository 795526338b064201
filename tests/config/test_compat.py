"""Semver, ranges, and the compatibility checks (by `check` and at connect time)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import Connector, operation
from connectors.checks import check_definition, checked_resolver
from connectors.config.definition import ConnectorDefinition
from connectors.config.loader import parse_definition
from connectors.config.semver import Version, VersionRange
from connectors.config.settings import Settings
from connectors.errors import CredentialMissing, IncompatibleVersion, ScopeDenied
from connectors.hub import Hub
from connectors.registry import AdapterRegistry

# --- semver and ranges ---------------------------------------------------------------------------

nums = st.integers(0, 30)
versions = st.builds(Version, nums, nums, nums)


@given(versions)
def test_versions_round_trip_through_text(v):
    assert Version.parse(str(v)) == v


@given(versions, versions)
def test_ordering_is_lexicographic_on_the_core(a, b):
    assert (a < b) == (a.core < b.core)


@given(nums, nums, nums, nums, nums, nums)
def test_caret_accepts_exactly_the_same_leftmost_nonzero_part(a, b, c, x, y, z):
    low, v = Version(a, b, c), Version(x, y, z)
    inside = VersionRange.parse(f"^{a}.{b}.{c}").contains(v)
    if a > 0:
        expected = low <= v and x == a
    elif b > 0:
        expected = low <= v and x == 0 and y == b
    else:
        expected = v == low
    assert inside == expected


@given(nums, nums, nums, nums, nums, nums)
def test_tilde_accepts_the_same_minor(a, b, c, x, y, z):
    v = Version(x, y, z)
    assert VersionRange.parse(f"~{a}.{b}.{c}").contains(v) == (
        Version(a, b, c) <= v and (x, y) == (a, b)
    )


@given(nums, versions)
def test_wildcards_and_comparator_lists_agree(a, v):
    assert VersionRange.parse(f"{a}.x").contains(v) == (v.major == a)
    assert VersionRange.parse(f">={a}.0, <{a + 1}").contains(v) == (v.major == a)
    assert VersionRange.parse("*").contains(v)


@given(st.text(max_size=15))
def test_range_parsing_fails_only_with_value_error(text):
    with contextlib.suppress(ValueError):
        VersionRange.parse(text)


def test_prereleases_only_match_ranges_that_name_them():
    assert not VersionRange.parse("^1.2").contains("1.5.0-beta")
    assert VersionRange.parse(">=1.5.0-alpha").contains("1.5.0-beta")
    assert not VersionRange.parse("<2").contains("2.0.0-rc.1")
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0-alpha.1") < Version.parse("1.0.0")


@pytest.mark.parametrize("text", ["", "^", "1.x.3", "=>1", "1.2.3.4", "^x"])
def test_bad_ranges_list_the_accepted_forms(text):
    with pytest.raises(ValueError, match=r"\^1\.2"):
        VersionRange.parse(text)


# --- checks ---------------------------------------------------------------------------------------


class Crm(Connector):
    name = "crm"
    version = "2.1.0"
    provider_api_versions = ("v60", "v61")

    @operation(idempotent=True, scopes=("crm.read",))
    async def read(self) -> int:
        return 1

    @operation(idempotent=False, scopes=("crm.write",))
    async def write(self) -> int:
        return 2


BAD = """\
type: crm@^1.0
schema_version: 1
settings:
  api_version: v52
  oauth_credential: crm_oauth
  token: ${secret:crm_token}
  other: ${secret:crm_app#client_secret}
resilience: {timeout: 1}
"""
GOOD = "type: crm@^2.0\nsettings: {api_version: v61, token: '${secret:crm_token}'}\n"


def _hub(tmp_path, credentials=()) -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(Crm)
    hub = Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        registry=registry,
        enforce_access=False,
    )

    async def setup() -> None:
        await hub.start()
        for name, fields, meta in credentials:
            await hub.services.credentials.put("acme", name, fields, metadata=meta, actor="t")
        await hub.aclose()

    asyncio.run(setup())
    return hub


STORED = [
    ("crm_oauth", {"value": "x-token-value"}, {"scopes": ["crm.read"]}),
    ("crm_app", {"client_id": "id-1234"}, {}),
]


def _problems(hub: Hub, text: str, tenant: str | None):
    definition = parse_definition(text, file="crm.yaml").definition

    async def main():
        try:
            return await check_definition(hub, "crm", definition, tenant)
        finally:
            await hub.aclose()

    return asyncio.run(main())


def test_check_reports_every_problem_with_a_hint(tmp_path):
    hub = _hub(tmp_path, STORED)
    found: dict[str, str] = {}
    for problem in _problems(hub, BAD, "acme"):
        found.setdefault(problem.code, str(problem))  # the first of each kind
    assert found == {
        "adapter_version": "crm: the crm adapter is version 2.1.0, outside the pinned range "
        "^1.0 Hint: install a crm adapter matching ^1.0, or change the pin",
        "provider_api_version": "crm: provider API version v52 is retired or unknown to the "
        "crm adapter 2.1.0 Hint: use one of v60, v61 in settings.api_version",
        "schema_migration": "crm: the definition is written in schema_version 1 (current: 2); "
        "it is migrated in memory on every load Hint: run `connectors validate --upgrade FILE` "
        "to rewrite it",
        "credential_missing": "crm: credential '${secret:crm_token}' is not set for tenant "
        "'acme' Hint: store it: `connectors credentials set --tenant acme crm_token`",
        "scopes_not_granted": "crm: credential 'crm_oauth' of tenant 'acme' lacks scope(s) "
        "crm.write (needed by write) Hint: re-connect the credential with these scopes",
    }


def test_a_missing_field_of_a_stored_credential_is_reported(tmp_path):
    hub = _hub(tmp_path, [*STORED, ("crm_token", {"value": "t-123456"}, {})])
    missing = [p for p in _problems(hub, BAD, "acme") if p.code == "credential_missing"]
    assert [str(p).split(" Hint")[0] for p in missing] == [
        "crm: credential '${secret:crm_app#client_secret}' is not set for tenant 'acme'"
    ]


def test_without_a_tenant_only_tenant_independent_checks_run(tmp_path):
    hub = _hub(tmp_path)
    codes = {p.code for p in _problems(hub, BAD, None)}
    assert codes == {"adapter_version", "provider_api_version", "schema_migration"}


def test_a_compatible_definition_has_no_problems(tmp_path):
    hub = _hub(tmp_path, [("crm_token", {"value": "t-123456"}, {})])
    assert _problems(hub, GOOD, "acme") == []


class CheckingHub(Hub):
    """Hub.connector with the proposed two-line change applied."""

    def connector(self, name, **kwargs) -> Connector:  # type: ignore[override]
        conn = super().connector(name, **kwargs)
        conn.runtime.resolve_settings = checked_resolver(
            self, name, self.definition(name), kwargs["tenant_id"], conn.runtime.resolve_settings
        )
        return conn


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("type: crm@^1.0\n", IncompatibleVersion, "outside the pinned range ^1.0"),
        ("type: crm\nsettings: {api_version: v52}\n", IncompatibleVersion, "v52 is retired"),
        (
            "type: crm\nsettings: {t: '${secret:nope}'}\n",
            CredentialMissing,
            "'${secret:nope}' is not set",
        ),
        (
            "type: crm\nsettings: {oauth_credential: crm_oauth}\n",
            ScopeDenied,
            "lacks scope(s) crm.write",
        ),
    ],
)
def test_connect_fails_with_the_same_problem(tmp_path, text, error, message):
    base = _hub(tmp_path, STORED)
    hub = CheckingHub(base.settings, registry=base.registry, enforce_access=False)
    hub.definitions["crm"] = parse_definition(text).definition

    async def main():
        try:
            async with hub.open("crm", tenant_id="acme"):
                pass
        finally:
            await hub.aclose()

    with pytest.raises(error) as info:
        asyncio.run(main())
    assert message in str(info.value)


def test_a_schema_migration_alone_does_not_fail_connect(tmp_path):
    base = _hub(tmp_path)
    hub = CheckingHub(base.settings, registry=base.registry, enforce_access=False)
    hub.definitions["crm"] = parse_definition("type: crm\nschema_version: 1\n").definition

    async def main():
        try:
            async with hub.open("crm", tenant_id="acme") as conn:
                return await conn.read()  # type: ignore[attr-defined]
        finally:
            await hub.aclose()

    assert asyncio.run(main()) == 1
    assert isinstance(hub.definitions["crm"], ConnectorDefinition)
