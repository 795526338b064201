"""Describe global and sObject describe bodies, generated from the schema.

The keys and JSON types follow the bodies Salesforce returns (see the restforce reference files
``describe_sobjects_success_response.json`` and ``sobject_describe_success_response.json``).
"""

from __future__ import annotations

from .schema import FieldDef, Schema, SObjectDef

__all__ = ["describe_global", "describe_sobject", "sobject_summary"]

JsonObject = dict[str, object]

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
_NOT_GROUPABLE = {"double", "currency", "percent", "textarea", "datetime"}


def _urls(sobject: SObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{sobject.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def sobject_summary(sobject: SObjectDef, version: str) -> JsonObject:
    """One entry of describe global's ``sobjects`` list."""
    return {
        "name": sobject.name,
        "label": sobject.label,
        "custom": sobject.custom,
        "keyPrefix": sobject.key_prefix,
        "labelPlural": sobject.label_plural,
        "layoutable": True,
        "activateable": False,
        "updateable": True,
        "urls": _urls(sobject, version),
        "searchable": True,
        "createable": True,
        "customSetting": False,
        "deletable": True,
        "deprecatedAndHidden": False,
        "feedEnabled": not sobject.custom,
        "mergeable": sobject.name in ("Account", "Contact", "Lead"),
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "undeletable": True,
        "triggerable": True,
    }


def describe_global(schema: Schema, version: str) -> JsonObject:
    """``GET /sobjects``."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [sobject_summary(o, version) for o in schema.sobjects],
    }


def _field(fdef: FieldDef) -> JsonObject:
    text_like = fdef.type not in _SOAP_TYPES or fdef.type in ("id", "reference")
    return {
        "length": fdef.length if text_like else 0,
        "name": fdef.name,
        "type": fdef.type,
        "defaultValue": fdef.default if isinstance(fdef.default, str | bool) else None,
        "label": fdef.label,
        "updateable": fdef.updateable,
        "calculated": False,
        "controllerName": None,
        "nillable": fdef.nillable,
        "unique": fdef.unique,
        "precision": fdef.precision if fdef.type in ("double", "currency", "percent") else 0,
        "scale": fdef.scale,
        "caseSensitive": False,
        "byteLength": fdef.length * 3
        if text_like and fdef.type not in ("id", "reference")
        else fdef.length,
        "inlineHelpText": None,
        "nameField": fdef.name_field,
        "externalId": fdef.external_id,
        "idLookup": fdef.name == "Id" or fdef.external_id or fdef.name_field,
        "filterable": True,
        "soapType": _SOAP_TYPES.get(fdef.type, "xsd:string"),
        "createable": fdef.createable,
        "deprecatedAndHidden": False,
        "autoNumber": False,
        "calculatedFormula": None,
        "defaultValueFormula": None,
        "defaultedOnCreate": fdef.default is not None or not fdef.createable,
        "digits": fdef.precision if fdef.type == "int" else 0,
        "groupable": fdef.type not in _NOT_GROUPABLE,
        "picklistValues": [
            {
                "value": value,
                "active": True,
                "label": value,
                "defaultValue": value == fdef.default,
                "validFor": None,
            }
            for value in fdef.picklist
        ],
        "referenceTo": list(fdef.reference_to),
        "relationshipName": fdef.relationship_name,
        "relationshipOrder": None,
        "restrictedPicklist": False,
        "namePointing": False,
        "custom": fdef.custom,
        "htmlFormatted": False,
        "dependentPicklist": False,
        "writeRequiresMasterRead": False,
        "sortable": fdef.type != "textarea",
    }


def _child_relationships(schema: Schema, sobject: SObjectDef) -> list[JsonObject]:
    out: list[JsonObject] = []
    for child in schema.sobjects:
        for fdef in child.fields:
            if sobject.name not in fdef.reference_to or fdef.name in (
                "CreatedById",
                "LastModifiedById",
            ):
                continue
            plural = child.label_plural.replace(" ", "")
            out.append(
                {
                    "field": fdef.name,
                    "deprecatedAndHidden": False,
                    "relationshipName": f"{plural}__r" if child.custom else plural,
                    "cascadeDelete": False,
                    "childSObject": child.name,
                }
            )
    return out


def describe_sobject(
    schema: Schema, sobject: SObjectDef, version: str, instance_url: str
) -> JsonObject:
    """``GET /sobjects/{type}/describe``."""
    summary = sobject_summary(sobject, version)
    urls: dict[str, str] = {
        "uiEditTemplate": f"{instance_url}/{{ID}}/e",
        **_urls(sobject, version),
        "uiDetailTemplate": f"{instance_url}/{{ID}}",
        "uiNewRecord": f"{instance_url}/{sobject.key_prefix}/e",
    }
    return {
        "name": sobject.name,
        "fields": [_field(f) for f in sobject.fields],
        "label": sobject.label,
        "custom": sobject.custom,
        "keyPrefix": sobject.key_prefix,
        "labelPlural": sobject.label_plural,
        "layoutable": True,
        "activateable": False,
        "updateable": True,
        "urls": urls,
        "searchable": True,
        "childRelationships": _child_relationships(schema, sobject),
        "createable": True,
        "customSetting": False,
        "deletable": True,
        "deprecatedAndHidden": False,
        "feedEnabled": summary["feedEnabled"],
        "listviewable": None,
        "lookupLayoutable": None,
        "mergeable": summary["mergeable"],
        "queryable": True,
        "recordTypeInfos": [
            {
                "name": "Master",
                "available": True,
                "recordTypeId": "012000000000000AAA",
                "defaultRecordTypeMapping": True,
            }
        ],
        "replicateable": True,
        "retrieveable": True,
        "searchLayoutable": None,
        "undeletable": True,
        "triggerable": True,
    }
