"""The emulated org's object model: which sObjects exist, their fields and field types.

Everything the emulator does with records (SOQL validation, describe, required-field checks,
upsert by external id, CSV conversion) reads this one description, so the answers agree with
each other the way they do in a real org.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, TypeAlias

__all__ = [
    "DATE_TYPES",
    "NUMBER_TYPES",
    "STRING_TYPES",
    "FieldDef",
    "FieldType",
    "FieldValue",
    "Record",
    "SObjectDef",
    "Schema",
    "default_schema",
]

FieldValue: TypeAlias = str | int | float | bool | date | datetime | None
"""A field value inside the emulator (dates and datetimes are Python objects, datetimes UTC)."""

Record: TypeAlias = dict[str, FieldValue]
"""One record: canonical field name → value; always holds ``Id`` and ``IsDeleted``."""

FieldType = Literal[
    "id",
    "string",
    "textarea",
    "email",
    "phone",
    "url",
    "picklist",
    "boolean",
    "double",
    "currency",
    "percent",
    "int",
    "date",
    "datetime",
    "reference",
]

STRING_TYPES: frozenset[str] = frozenset(
    {"id", "string", "textarea", "email", "phone", "url", "picklist", "reference"}
)
NUMBER_TYPES: frozenset[str] = frozenset({"double", "currency", "percent", "int"})
DATE_TYPES: frozenset[str] = frozenset({"date", "datetime"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field as describe reports it (a useful subset of its properties)."""

    name: str
    type: FieldType
    label: str
    required: bool = False
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    length: int = 0
    picklist: tuple[str, ...] = ()
    default: FieldValue = None
    name_field: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def custom(self) -> bool:
        """Custom fields end in ``__c``."""
        return self.name.endswith("__c")

    @property
    def nillable(self) -> bool:
        """Whether the field may be null (describe's ``nillable``)."""
        return not self.required and self.type not in ("id", "boolean") and self.name != "OwnerId"


@dataclass(frozen=True)
class SObjectDef:
    """One sObject type: name, labels, key prefix and fields."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    _by_lower: dict[str, FieldDef] = field(init=False, repr=False, compare=False)
    _relationships: dict[str, FieldDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {f.name.lower(): f for f in self.fields})
        object.__setattr__(
            self,
            "_relationships",
            {f.relationship_name.lower(): f for f in self.fields if f.relationship_name},
        )

    @property
    def custom(self) -> bool:
        """Custom objects end in ``__c``."""
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (case-insensitive), if any."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship is called ``name`` (case-insensitive)."""
        return self._relationships.get(name.lower())

    @property
    def required_fields(self) -> tuple[FieldDef, ...]:
        """Fields a create must supply (no default, not nillable, createable)."""
        return tuple(f for f in self.fields if f.required and f.default is None and f.createable)


class Schema:
    """The set of sObject types, looked up by name (case-insensitive) or key prefix."""

    def __init__(self, sobjects: Iterable[SObjectDef]) -> None:
        self._objects = {o.name.lower(): o for o in sobjects}
        self._by_prefix = {o.key_prefix: o for o in self._objects.values()}

    def get(self, name: str) -> SObjectDef | None:
        """The sObject called ``name`` (case-insensitive), if any."""
        return self._objects.get(name.lower())

    def by_prefix(self, prefix: str) -> SObjectDef | None:
        """The sObject whose ids start with ``prefix``."""
        return self._by_prefix.get(prefix)

    @property
    def sobjects(self) -> tuple[SObjectDef, ...]:
        """Every sObject, in definition order."""
        return tuple(self._objects.values())


def _system_fields(owner: bool = True) -> list[FieldDef]:
    fields = [
        FieldDef("Id", "id", "Record ID", createable=False, updateable=False, length=18),
        FieldDef("IsDeleted", "boolean", "Deleted", createable=False, updateable=False),
        FieldDef("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
        FieldDef(
            "CreatedById",
            "reference",
            "Created By ID",
            createable=False,
            updateable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
            length=18,
        ),
        FieldDef(
            "LastModifiedDate", "datetime", "Last Modified Date", createable=False, updateable=False
        ),
        FieldDef(
            "LastModifiedById",
            "reference",
            "Last Modified By ID",
            createable=False,
            updateable=False,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
            length=18,
        ),
        FieldDef(
            "SystemModstamp", "datetime", "System Modstamp", createable=False, updateable=False
        ),
    ]
    if owner:
        fields.append(
            FieldDef(
                "OwnerId",
                "reference",
                "Owner ID",
                reference_to=("User",),
                relationship_name="Owner",
                length=18,
            )
        )
    return fields


def _s(
    name: str,
    label: str,
    length: int = 80,
    *,
    required: bool = False,
    name_field: bool = False,
    createable: bool = True,
    updateable: bool = True,
    unique: bool = False,
) -> FieldDef:
    return FieldDef(
        name,
        "string",
        label,
        length=length,
        required=required,
        name_field=name_field,
        createable=createable,
        updateable=updateable,
        unique=unique,
    )


def _ref(name: str, label: str, target: str, relationship: str) -> FieldDef:
    return FieldDef(
        name, "reference", label, reference_to=(target,), relationship_name=relationship, length=18
    )


def _ext(name: str = "External_Id__c") -> FieldDef:
    return FieldDef(name, "string", "External Id", external_id=True, length=64)


INDUSTRIES = ("Agriculture", "Banking", "Chemicals", "Education", "Energy", "Technology")
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Closed Won", "Closed Lost")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Other")


def default_schema() -> Schema:
    """Account, Contact, Lead, Opportunity, User and the custom ``Invoice__c``."""
    account = SObjectDef(
        "Account",
        "Account",
        "Accounts",
        "001",
        (
            *_system_fields(),
            _s("Name", "Account Name", 255, required=True, name_field=True),
            FieldDef(
                "Type",
                "picklist",
                "Account Type",
                length=255,
                picklist=("Customer", "Partner", "Prospect"),
            ),
            FieldDef("Industry", "picklist", "Industry", length=255, picklist=INDUSTRIES),
            FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18),
            FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
            FieldDef("Phone", "phone", "Account Phone", length=40),
            FieldDef("Website", "url", "Website", length=255),
            _s("BillingCity", "Billing City", 40),
            _s("BillingCountry", "Billing Country", 80),
            _ext("Account_Number__c"),
        ),
    )
    contact = SObjectDef(
        "Contact",
        "Contact",
        "Contacts",
        "003",
        (
            *_system_fields(),
            _s("FirstName", "First Name", 40),
            _s("LastName", "Last Name", 80, required=True),
            _s("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
            FieldDef("Email", "email", "Email", length=80),
            FieldDef("Phone", "phone", "Business Phone", length=40),
            _s("Title", "Title", 128),
            _ref("AccountId", "Account ID", "Account", "Account"),
            FieldDef("Birthdate", "date", "Birthdate"),
            FieldDef("LeadSource", "picklist", "Lead Source", length=255, picklist=LEAD_SOURCES),
            FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", default=False),
            _ext(),
        ),
    )
    lead = SObjectDef(
        "Lead",
        "Lead",
        "Leads",
        "00Q",
        (
            *_system_fields(),
            _s("FirstName", "First Name", 40),
            _s("LastName", "Last Name", 80, required=True),
            _s("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
            _s("Company", "Company", 255, required=True),
            FieldDef("Email", "email", "Email", length=80),
            FieldDef(
                "Status",
                "picklist",
                "Status",
                length=255,
                required=True,
                picklist=LEAD_STATUSES,
                default=LEAD_STATUSES[0],
            ),
            FieldDef("Rating", "picklist", "Rating", length=255, picklist=("Hot", "Warm", "Cold")),
            FieldDef("LeadSource", "picklist", "Lead Source", length=255, picklist=LEAD_SOURCES),
            FieldDef("IsConverted", "boolean", "Converted", default=False, createable=False),
            _ext(),
        ),
    )
    opportunity = SObjectDef(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        "006",
        (
            *_system_fields(),
            _s("Name", "Name", 120, required=True, name_field=True),
            FieldDef("StageName", "picklist", "Stage", length=255, required=True, picklist=STAGES),
            FieldDef("CloseDate", "date", "Close Date", required=True),
            FieldDef("Amount", "currency", "Amount", precision=18, scale=2),
            FieldDef("Probability", "percent", "Probability (%)", precision=3),
            _ref("AccountId", "Account ID", "Account", "Account"),
            FieldDef("IsWon", "boolean", "Won", createable=False, updateable=False),
        ),
    )
    user = SObjectDef(
        "User",
        "User",
        "Users",
        "005",
        (
            *_system_fields(owner=False),
            _s("Username", "Username", 80, required=True, unique=True),
            _s("FirstName", "First Name", 40),
            _s("LastName", "Last Name", 80, required=True),
            _s("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
            FieldDef("Email", "email", "Email", length=128, required=True),
            _s("Alias", "Alias", 8, required=True),
            FieldDef("IsActive", "boolean", "Active", default=True),
        ),
    )
    invoice = SObjectDef(
        "Invoice__c",
        "Invoice",
        "Invoices",
        "a01",
        (
            *_system_fields(),
            _s("Name", "Invoice Number", 80, required=True, name_field=True),
            FieldDef("Amount__c", "currency", "Amount", precision=16, scale=2),
            FieldDef(
                "Status__c", "picklist", "Status", length=255, picklist=("Draft", "Sent", "Paid")
            ),
            FieldDef("Due_Date__c", "date", "Due Date"),
            FieldDef("Paid__c", "boolean", "Paid", default=False),
            _ref("Account__c", "Account", "Account", "Account__r"),
            _ext(),
        ),
    )
    return Schema([account, contact, lead, opportunity, user, invoice])


def field_map(sobject: SObjectDef) -> Mapping[str, FieldDef]:
    """Canonical field name → definition, for quick membership tests."""
    return {f.name: f for f in sobject.fields}
