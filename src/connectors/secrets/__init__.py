"""Secrets: the ``Secret`` value type, secret references and resolvers, the credential store.

Vault (``connectors.secrets.vault``) and AWS Secrets Manager (``connectors.secrets.aws``)
resolvers live in their own modules because ``hvac`` and ``boto3`` are optional extras.
"""

from connectors.secrets.credential import ChangeEvent, ChangeHook, Credential, CredentialInfo
from connectors.secrets.crypto import MASTER_KEYS_ENV, MasterKeyring, generate_master_key_entry
from connectors.secrets.refs import (
    MalformedReference,
    RefMatch,
    SecretRef,
    find_refs,
    parse_ref,
    unescape,
)
from connectors.secrets.resolvers import (
    ENTRY_POINT_GROUP,
    CachingResolver,
    EnvResolver,
    FileResolver,
    ResolverRegistry,
    SecretResolver,
    StoreResolver,
)
from connectors.secrets.secret import MASK, Secret, live_secret_values
from connectors.secrets.store import CredentialStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "MASK",
    "MASTER_KEYS_ENV",
    "CachingResolver",
    "ChangeEvent",
    "ChangeHook",
    "Credential",
    "CredentialInfo",
    "CredentialStore",
    "EnvResolver",
    "FileResolver",
    "MalformedReference",
    "MasterKeyring",
    "RefMatch",
    "ResolverRegistry",
    "Secret",
    "SecretRef",
    "SecretResolver",
    "StoreResolver",
    "find_refs",
    "generate_master_key_entry",
    "live_secret_values",
    "parse_ref",
    "unescape",
]
