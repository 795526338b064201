"""PKCE (RFC 7636): code verifiers and S256 challenges.

Pure functions. ``S256`` is the only method offered: ``plain`` adds nothing against an attacker
who can read the authorisation request, and Salesforce and the OAuth 2.0 Security BCP recommend
S256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from base64 import urlsafe_b64encode
from typing import Final

from connectors.errors import InvalidRequest
from connectors.secrets import Secret

__all__ = ["generate_code_verifier", "s256_challenge", "validate_code_verifier"]

# RFC 7636 §4.1: 43..128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def validate_code_verifier(verifier: str | Secret) -> str:
    """The clear verifier if it satisfies RFC 7636 §4.1, else :class:`InvalidRequest`."""
    value = verifier.reveal() if isinstance(verifier, Secret) else verifier
    if not _VERIFIER.fullmatch(value):
        raise InvalidRequest(
            f"a PKCE code verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ "
            f"(got {len(value)} characters)"
        )
    return value


def generate_code_verifier(nbytes: int = 32) -> Secret:
    """A random verifier: ``nbytes`` (32..96) of entropy, base64url-encoded (43..128 chars)."""
    if not 32 <= nbytes <= 96:
        raise InvalidRequest("a PKCE verifier needs between 32 and 96 random bytes")
    return Secret(secrets.token_urlsafe(nbytes), name="pkce_verifier")


def s256_challenge(verifier: str | Secret) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding (RFC 7636 §4.2)."""
    value = validate_code_verifier(verifier)
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
