"""Automated, zero-downtime credential rotation.

- :mod:`~connectors.rotation.policy` — :class:`RotationPolicy` (kind, interval, grace, verify);
- :mod:`~connectors.rotation.store` — the policy table and schedule;
- :mod:`~connectors.rotation.rotators` — the :class:`Rotator` protocol, the registry (entry-point
  group ``connectors.rotators``), generated secrets;
- :mod:`~connectors.rotation.engine` — rotate, verify, commit or roll back, revoke the old value;
- :mod:`~connectors.rotation.verification` — whether a new credential works (the connector's
  health check);
- :mod:`~connectors.rotation.jobs` — the job functions; :mod:`~connectors.rotation.scheduler` —
  the periodic scheduler;
- :mod:`~connectors.rotation.emulated` — rotators for the emulators' admin APIs (tests, demos).
"""

from connectors.rotation.engine import RotationEngine, RotationResult
from connectors.rotation.policy import RotationKind, RotationPolicy, previous_field
from connectors.rotation.rotators import (
    GeneratedSecretRotator,
    RotationRequest,
    Rotator,
    RotatorRegistry,
)
from connectors.rotation.scheduler import PeriodicScheduler, ProbeSchedule
from connectors.rotation.store import PolicyStore, StoredPolicy
from connectors.rotation.verification import HubVerifier, Verification, Verifier

__all__ = [
    "GeneratedSecretRotator",
    "HubVerifier",
    "PeriodicScheduler",
    "PolicyStore",
    "ProbeSchedule",
    "RotationEngine",
    "RotationKind",
    "RotationPolicy",
    "RotationRequest",
    "RotationResult",
    "Rotator",
    "RotatorRegistry",
    "StoredPolicy",
    "Verification",
    "Verifier",
    "previous_field",
]
