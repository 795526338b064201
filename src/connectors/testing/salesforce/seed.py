"""Deterministic, lazy seed data: record ``i`` of a type is a pure function of ``(seed, type, i)``.

Nothing is stored: :meth:`SeedData.record` reseeds one ``random.Random`` from the seed, the type
and the index and draws the record's fields, so a million-record org costs no memory and a query
can walk it front to back. Ids encode the index (see :mod:`.ids`), external ids are
``<PREFIX>-<index>``, so reading a seeded record by id or by external id needs no index either.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from .ids import make_id
from .schema import INDUSTRIES, LEAD_SOURCES, LEAD_STATUSES, STAGES, Record, Schema

__all__ = ["SeedData", "SeedSpec"]

T = TypeVar("T")
Bits = Callable[[int], int]

_FIRST = ("Alice", "Bruno", "Chen", "Dana", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jules")
_LAST = ("Smith", "Garcia", "Nguyen", "Okafor", "Rossi", "Schmidt", "Tanaka", "Walsh", "Young")
_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell", "Cyberdyne")
_KINDS = ("Industries", "Holdings", "Labs", "Systems", "Partners", "Logistics")
_CITIES = (("Paris", "France"), ("Lagos", "Nigeria"), ("Osaka", "Japan"), ("Austin", "USA"))
_TITLES = ("CEO", "CTO", "Buyer", "Engineer", "Analyst", "Director")
_TYPE_CODES = {"account": 1, "contact": 2, "lead": 3, "opportunity": 4, "user": 5, "invoice__c": 6}
#: External id field and value prefix per type.
EXTERNAL_IDS: dict[str, tuple[str, str]] = {
    "account": ("Account_Number__c", "ACC"),
    "contact": ("External_Id__c", "CON"),
    "lead": ("External_Id__c", "LEAD"),
    "invoice__c": ("External_Id__c", "INV"),
}


@dataclass(frozen=True, slots=True)
class SeedSpec:
    """How many seeded records of each type, and the random seed."""

    seed: int = 1
    accounts: int = 0
    contacts: int = 0
    leads: int = 0
    opportunities: int = 0
    users: int = 0
    invoices: int = 0
    #: CreatedDate values fall in the year before this instant (default: emulator start).
    anchor: datetime | None = None

    def count(self, sobject: str) -> int:
        """Seeded records of ``sobject`` (case-insensitive name)."""
        return {
            "account": self.accounts,
            "contact": self.contacts,
            "lead": self.leads,
            "opportunity": self.opportunities,
            "user": self.users,
            "invoice__c": self.invoices,
        }.get(sobject.lower(), 0)


def below(bits: Bits, n: int) -> int:
    """``random.Random.randrange(n)`` for ``n > 0``, from the generator's ``getrandbits``.

    The same draw ``randrange`` and ``choice`` make (``Random._randbelow``: ``n.bit_length()``
    bits, redrawn until below ``n``) without their argument checks, which cost more than the
    draw on the path that builds every seeded record a query reads. The seed tests check it
    against ``randrange`` and ``choice``, so the generated records stay what they were.
    """
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def pick(bits: Bits, seq: Sequence[T]) -> T:
    """``random.Random.choice(seq)`` for a non-empty ``seq`` (see :func:`below`)."""
    return seq[below(bits, len(seq))]


class SeedData:
    """Generates seeded records on demand."""

    def __init__(self, schema: Schema, spec: SeedSpec, *, anchor: datetime, owner_id: str) -> None:
        self.schema = schema
        self.spec = spec
        self.anchor = (spec.anchor or anchor).astimezone(UTC).replace(microsecond=0)
        self.owner_id = owner_id
        self._rng = random.Random(spec.seed)
        self._prefixes = {o.name.lower(): o.key_prefix for o in schema.sobjects}

    def count(self, sobject: str) -> int:
        """Number of seeded records of ``sobject``."""
        return self.spec.count(sobject)

    def id_for(self, sobject: str, index: int) -> str:
        """The id of seeded record ``index`` of ``sobject``."""
        return make_id(self._prefixes[sobject.lower()], index + 1, seeded=True)

    def index_for_id(self, counter: int) -> int:
        """The index encoded in a seeded id's counter."""
        return counter - 1

    def index_for_external_id(self, sobject: str, field: str, value: str) -> int | None:
        """The seeded record whose external id ``field`` was generated as ``value``, if any."""
        spec = EXTERNAL_IDS.get(sobject.lower())
        if spec is None or spec[0].lower() != field.lower():
            return None
        prefix = spec[1] + "-"
        if not value.upper().startswith(prefix) or not value[len(prefix) :].isdigit():
            return None
        index = int(value[len(prefix) :])
        if index >= self.count(sobject) or f"{prefix}{index:07d}" != value.upper():
            return None
        return index

    def record(self, sobject: str, index: int) -> Record:
        """Seeded record ``index`` of ``sobject`` (every field the schema defines)."""
        key = sobject.lower()
        rng = self._rng
        rng.seed((self.spec.seed * 1_000_003 + _TYPE_CODES[key]) * 10_000_019 + index)
        bits = rng.getrandbits
        created = self.anchor - timedelta(seconds=below(bits, 365 * 86_400))
        modified = created + timedelta(
            seconds=below(bits, int((self.anchor - created).total_seconds()) + 1)
        )
        users = self.spec.users
        owner = self.id_for("User", index % users) if users and key != "user" else self.owner_id
        record: Record = {
            "Id": self.id_for(sobject, index),
            "IsDeleted": False,
            "CreatedDate": created,
            "CreatedById": owner,
            "LastModifiedDate": modified,
            "LastModifiedById": owner,
            "SystemModstamp": modified,
        }
        if key != "user":
            record["OwnerId"] = owner
        builder = _BUILDERS[key]
        builder(self, rng, bits, index, record)
        return record

    # -- per-type field builders ------------------------------------------------------------

    def _account_id(self, index: int) -> str | None:
        accounts = self.spec.accounts
        return self.id_for("Account", index % accounts) if accounts else None

    def _account(self, rng: random.Random, bits: Bits, i: int, r: Record) -> None:
        city, country = pick(bits, _CITIES)
        word = pick(bits, _WORDS)
        r.update(
            Name=f"{word} {pick(bits, _KINDS)} {i}",
            Type=pick(bits, ("Customer", "Partner", "Prospect")),
            Industry=pick(bits, INDUSTRIES),
            AnnualRevenue=float((10 + below(bits, 99_990)) * 1000),
            NumberOfEmployees=1 + below(bits, 49_999),
            Phone=f"+1 555 {1000 + below(bits, 8999)}",
            Website=f"https://{word.lower()}{i}.example.com",
            BillingCity=city,
            BillingCountry=country,
            Account_Number__c=f"ACC-{i:07d}",
        )

    def _person(self, rng: random.Random, bits: Bits, i: int, r: Record) -> tuple[str, str]:
        first, last = pick(bits, _FIRST), pick(bits, _LAST)
        r.update(FirstName=first, LastName=last, Name=f"{first} {last}")
        return first, last

    def _contact(self, rng: random.Random, bits: Bits, i: int, r: Record) -> None:
        first, last = self._person(rng, bits, i, r)
        r.update(
            Email=f"{first}.{last}.{i}@example.com".lower(),
            Phone=f"+1 555 {1000 + below(bits, 8999)}",
            Title=pick(bits, _TITLES),
            AccountId=self._account_id(i),
            Birthdate=date(1950, 1, 1) + timedelta(days=below(bits, 20_000)),
            LeadSource=pick(bits, LEAD_SOURCES),
            HasOptedOutOfEmail=rng.random() < 0.1,
            External_Id__c=f"CON-{i:07d}",
        )

    def _lead(self, rng: random.Random, bits: Bits, i: int, r: Record) -> None:
        first, last = self._person(rng, bits, i, r)
        r.update(
            Company=f"{pick(bits, _WORDS)} {pick(bits, _KINDS)}",
            Email=f"{first}.{last}.lead{i}@example.com".lower(),
            Status=pick(bits, LEAD_STATUSES),
            Rating=pick(bits, ("Hot", "Warm", "Cold", None)),
            LeadSource=pick(bits, LEAD_SOURCES),
            IsConverted=False,
            External_Id__c=f"LEAD-{i:07d}",
        )

    def _opportunity(self, rng: random.Random, bits: Bits, i: int, r: Record) -> None:
        stage = pick(bits, STAGES)
        r.update(
            Name=f"{pick(bits, _WORDS)} deal {i}",
            StageName=stage,
            CloseDate=self.anchor.date() + timedelta(days=below(bits, 360) - 180),
            Amount=float((1 + below(bits, 4999)) * 100),
            Probability=float(pick(bits, (10, 20, 50, 75, 90, 100))),
            AccountId=self._account_id(i),
            IsWon=stage == "Closed Won",
        )

    def _user(self, rng: random.Random, bits: Bits, i: int, r: Record) -> None:
        first, last = self._person(rng, bits, i, r)
        r.update(
            Username=f"user{i}@emulated.example.com",
            Email=f"{first}.{last}.{i}@example.com".lower(),
            Alias=f"u{i}"[:8],
            IsActive=rng.random() < 0.9,
        )

    def _invoice(self, rng: random.Random, bits: Bits, i: int, r: Record) -> None:
        status = pick(bits, ("Draft", "Sent", "Paid"))
        r.update(
            Name=f"INV-{i:07d}",
            Amount__c=float(100 + below(bits, 999_900)) / 100,
            Status__c=status,
            Due_Date__c=self.anchor.date() + timedelta(days=below(bits, 120) - 60),
            Paid__c=status == "Paid",
            Account__c=self._account_id(i),
            External_Id__c=f"INV-{i:07d}",
        )


_BUILDERS = {
    "account": SeedData._account,
    "contact": SeedData._contact,
    "lead": SeedData._lead,
    "opportunity": SeedData._opportunity,
    "user": SeedData._user,
    "invoice__c": SeedData._invoice,
}
