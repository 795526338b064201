"""``connectors credentials rotate NAME --tenant T``: rotate one credential now.

The policy is the stored one (``connector_rotation_policies``), or, with ``--kind``, one built
from the options (and saved with ``--save``). The rotation is verified and rolled back on failure
like a scheduled one; ``--revoke-now`` ends the grace window at once (the old value stops
working immediately: use it only when nothing else still holds the old value).
"""

from __future__ import annotations

import typer

from connectors.access.roles import Permission
from connectors.cli._common import ACTOR_OPTION, TENANT_OPTION, actor_or_default, console, with_hub
from connectors.errors import InvalidRequest
from connectors.hub import Hub
from connectors.rotation.engine import RotationEngine, RotationResult
from connectors.rotation.policy import KINDS, RotationPolicy
from connectors.rotation.store import PolicyStore

__all__ = ["register_credentials", "rotate"]


def rotate(
    name: str = typer.Argument(..., help="The credential to rotate."),
    tenant: str = TENANT_OPTION,
    kind: str | None = typer.Option(
        None, help=f"Rotate with an ad-hoc policy of this kind ({', '.join(sorted(KINDS))})."
    ),
    connector: str | None = typer.Option(
        None, help="The connector whose health check verifies the new credential."
    ),
    field: str = typer.Option("value", help="The secret field that rotates."),
    grace: float = typer.Option(3600.0, min=0, help="Seconds both values stay valid."),
    rotator: str | None = typer.Option(None, help="The rotator name (default: by connector)."),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", help="Outbound webhook endpoint(s) signing with this secret."
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip the health check."),
    save: bool = typer.Option(False, help="Store the ad-hoc policy for scheduled rotations."),
    revoke_now: bool = typer.Option(False, help="Revoke the old value at once (no grace)."),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Rotate a credential now: new value, verification, commit or rollback; all audited."""
    who = actor_or_default(actor)

    async def main(hub: Hub) -> tuple[RotationResult, RotationResult | None]:
        await hub.services.access.check(who, tenant, Permission.CREDENTIAL_WRITE)
        policies = PolicyStore(hub.services.database, clock=hub.clock)
        if kind is not None:
            policy = RotationPolicy.from_mapping(
                {
                    "credential": name,
                    "kind": kind,
                    "connector": connector,
                    "field": field,
                    "grace": grace,
                    "rotator": rotator,
                    "endpoints": list(endpoint),
                    "verify": "none" if no_verify else "health",
                }
            )
            if save:
                await policies.set(tenant, policy)
        else:
            if save:
                raise InvalidRequest("--save needs --kind (an ad-hoc policy to save)")
            policy = (await policies.get(tenant, name)).policy
        engine = RotationEngine.for_hub(hub)
        result = await engine.rotate(tenant, policy, actor=who)
        revoked = None
        if revoke_now and result.outcome == "committed":
            revoked = await engine.revoke_old(tenant, policy, actor=who, early=True)
        return result, revoked

    result, revoked = with_hub(main)
    if result.outcome == "committed":
        console.print(
            f"rotated {name!r} for tenant {tenant!r}: version {result.from_version} → "
            f"{result.to_version}"
        )
        if revoked is not None:
            console.print(f"old value revoked (version {revoked.to_version})")
        elif result.revoke_at is not None:
            console.print("the old value stays valid for the grace window, then is revoked")
        return
    console.print(f"[yellow]{result.outcome}[/]: {result.detail}")
    raise typer.Exit(1)


def register_credentials(credentials_app: typer.Typer) -> None:
    """Add ``rotate`` to the ``connectors credentials`` family."""
    credentials_app.command("rotate")(rotate)
