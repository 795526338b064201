"""Salesforce record ids: 15-character base-62 ids and their 18-character case-safe form.

An id is ``<3-char key prefix><3-char pod/reserved><9-char base-62 counter>``; the 18-character
form appends a 3-character suffix computed from the case of the 15 characters, so that ids stay
unique when compared case-insensitively. The emulator encodes a seeded record's index in its id
(marker ``0``) and gives records created at run time their own counter space (marker ``1``), so a
seeded record can be found from its id without storing it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASE62",
    "IdParts",
    "case_safe_suffix",
    "make_id",
    "normalize_id",
    "parse_id",
]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "5g"
_COUNTER_WIDTH = 9
_MAX_COUNTER = 62**_COUNTER_WIDTH - 1
_DIGIT = {c: i for i, c in enumerate(BASE62)}
SEEDED_MARKER = "0"
CREATED_MARKER = "1"


# Every base-62 character as "1" if it is an upper-case letter, else "0".
_UPPER_BITS = str.maketrans({c: "1" if "A" <= c <= "Z" else "0" for c in BASE62})
_PAIRS = tuple(a + b for a in BASE62 for b in BASE62)  # 00..zz: two digits per divmod


def case_safe_suffix(id15: str) -> str:
    """The three checksum characters that turn a 15-character id into its 18-character form.

    Chunk ``i`` of five characters gives a 5-bit number whose bit ``j`` is set when character
    ``j`` of the chunk is an upper-case letter; that number indexes ``A..Z0..5``.
    """
    if len(id15) != 15:
        raise ValueError("a Salesforce id has 15 characters before its suffix")
    bits = id15.translate(_UPPER_BITS)
    if bits.replace("0", "").replace("1", ""):  # characters outside base 62 are not upper-case
        bits = "".join("1" if "A" <= c <= "Z" else "0" for c in id15)
    return (
        _SUFFIX_ALPHABET[int(bits[4::-1], 2)]
        + _SUFFIX_ALPHABET[int(bits[9:4:-1], 2)]
        + _SUFFIX_ALPHABET[int(bits[14:9:-1], 2)]
    )


def _encode(counter: int) -> str:
    if not 0 <= counter <= _MAX_COUNTER:
        raise ValueError("id counter out of range")
    counter, low = divmod(counter, 3844)
    counter, mid = divmod(counter, 3844)
    counter, high = divmod(counter, 3844)
    top, upper = divmod(counter, 3844)
    return BASE62[top] + _PAIRS[upper] + _PAIRS[high] + _PAIRS[mid] + _PAIRS[low]


def make_id(key_prefix: str, counter: int, *, seeded: bool) -> str:
    """An 18-character id for the object with ``key_prefix`` (e.g. ``001``) and ``counter``."""
    marker = SEEDED_MARKER if seeded else CREATED_MARKER
    id15 = f"{key_prefix}{_POD}{marker}{_encode(counter)}"
    return id15 + case_safe_suffix(id15)


@dataclass(frozen=True, slots=True)
class IdParts:
    """What an emulator-issued id encodes."""

    key_prefix: str
    seeded: bool
    counter: int


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or ``None`` if it is not an id.

    An 18-character id whose suffix does not match its first 15 characters is not an id.
    """
    if len(value) not in (15, 18) or any(c not in _DIGIT for c in value):
        return None
    id15 = value[:15]
    suffix = case_safe_suffix(id15)
    if len(value) == 18 and value[15:].upper() != suffix:
        return None
    return id15 + suffix


def parse_id(value: str) -> IdParts | None:
    """Decode an emulator-issued id (15 or 18 characters); ``None`` for anything else."""
    full = normalize_id(value)
    if full is None or full[3:5] != _POD or full[5] not in (SEEDED_MARKER, CREATED_MARKER):
        return None
    counter = 0
    for char in full[6:15]:
        counter = counter * 62 + _DIGIT[char]
    return IdParts(key_prefix=full[:3], seeded=full[5] == SEEDED_MARKER, counter=counter)
