"""``${...}`` substitution in configuration values, per tenant, at connect time.

Walks mappings and lists; each string is handled by what it holds:

- exactly one reference and nothing else (``"${secret:slack}"``) → the resolved :class:`Secret`
  (or, for ``${tenant.id}``, the plain tenant id);
- references inside other text (``"https://hooks.example/${secret:path}"``) → a :class:`Secret`
  whose value is the whole rendered text, so a secret never leaks into a plain string; when every
  reference in the text is a context reference (``${tenant.id}``) the result stays a plain string;
- no reference → the string unchanged (``$${`` unescaped to a literal ``${``).

An unresolvable reference raises :class:`~connectors.errors.CredentialMissing` naming the tenant
and the reference (never a value); ``where`` names the setting for the message.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.errors import ConnectorError
from connectors.secrets.refs import find_refs, unescape
from connectors.secrets.resolvers import ResolverRegistry
from connectors.secrets.secret import Secret

__all__ = ["resolve_values"]


async def resolve_values(
    value: object, registry: ResolverRegistry, *, tenant: str, where: str = "settings"
) -> object:
    """``value`` with every ``${...}`` reference resolved for ``tenant``."""
    if isinstance(value, str):
        return await _resolve_text(value, registry, tenant=tenant, where=where)
    if isinstance(value, Mapping):
        return {
            str(k): await resolve_values(v, registry, tenant=tenant, where=f"{where}.{k}")
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = [
            await resolve_values(v, registry, tenant=tenant, where=f"{where}[{i}]")
            for i, v in enumerate(value)
        ]
        return items if isinstance(value, list) else tuple(items)
    return value


async def _resolve_text(
    text: str, registry: ResolverRegistry, *, tenant: str, where: str
) -> str | Secret:
    if "${" not in text:
        return text
    matches = find_refs(text)
    if not matches:
        return unescape(text)
    try:
        if len(matches) == 1 and matches[0].start == 0 and matches[0].end == len(text):
            resolved = await registry.resolve_text(matches[0].ref, tenant=tenant)
            return resolved
        parts: list[str] = []
        secret = False
        pos = 0
        for match in matches:
            parts.append(unescape(text[pos : match.start]))
            resolved = await registry.resolve_text(match.ref, tenant=tenant)
            if isinstance(resolved, Secret):
                secret = True
                parts.append(resolved.reveal())
            else:
                parts.append(resolved)
            pos = match.end
        parts.append(unescape(text[pos:]))
    except ConnectorError as exc:
        if exc.hint is None:
            exc.hint = f"referenced from {where}"
        raise
    rendered = "".join(parts)
    return Secret(rendered, name=where) if secret else rendered
