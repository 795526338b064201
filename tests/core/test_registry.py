from importlib.metadata import EntryPoint

import pytest

from connectors import registry as registry_module
from connectors.errors import ConfigurationError, UnknownConnector
from connectors.registry import AdapterRegistry
from tests.conftest import EchoConnector


def test_unknown_name_lists_known_names_and_suggests():
    reg = AdapterRegistry(discover=False, builtins={})
    reg.register(EchoConnector)
    with pytest.raises(UnknownConnector) as info:
        reg.get("ecko")
    assert info.value.suggestions == ("echo",)
    assert "did you mean 'echo'" in str(info.value)
    assert "known connectors: echo" in str(info.value)


def test_builtins_are_imported_lazily():
    reg = AdapterRegistry(discover=False, builtins={"echo": "tests.conftest:EchoConnector"})
    assert "echo" in reg
    assert reg.get("echo") is EchoConnector


def test_entry_point_adapters_are_discovered(monkeypatch):
    ep = EntryPoint(name="thirdparty", value="tests.conftest:EchoConnector", group="x")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep])
    reg = AdapterRegistry(builtins={})
    assert reg.names() == ["thirdparty"]
    assert reg.get("thirdparty") is EchoConnector
    [info] = reg.info()
    assert (info.source, info.version) == ("entry-point", "1.2.3")


def test_entry_points_cannot_shadow_builtins(monkeypatch):
    ep = EntryPoint(name="echo", value="os:path", group="x")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep])
    reg = AdapterRegistry(builtins={"echo": "tests.conftest:EchoConnector"})
    assert reg.get("echo") is EchoConnector


def test_a_broken_plugin_fails_clearly():
    reg = AdapterRegistry(discover=False, builtins={"broken": "no_such_module_xyz:Thing"})
    with pytest.raises(ConfigurationError, match="failed to load"):
        reg.get("broken")
    [info] = reg.info()
    assert info.description.startswith("unavailable")


def test_register_rejects_non_connectors():
    reg = AdapterRegistry(discover=False, builtins={})
    with pytest.raises(ConfigurationError):
        reg.register(dict)  # type: ignore[arg-type]
