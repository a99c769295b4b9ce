"""The JSON Schema of mapping files, for editors and `meetsync mappings schema`."""

from __future__ import annotations

from typing import Any

from .spec import ASSIGNMENT_KEYS, Mapping
from .transforms import TRANSFORMS

SCHEMA_ID = "https://meetsync.dev/schemas/mapping-v1.json"


def mapping_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) that every valid mapping file satisfies.

    It checks structure only; templates, paths, transform arguments and connections are
    checked by the loader and `validate_against`.
    """
    schema = Mapping.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    value = defs.get("Value")
    if value and "oneOf" in value:
        # An assignment is also an object of values, so the members overlap: anyOf, not oneOf.
        value["anyOf"] = value.pop("oneOf")
        value.pop("discriminator", None)
        for member in value["anyOf"]:
            if member.get("type") == "object" and "additionalProperties" in member:
                # As the loader does: an object with an assignment key is an assignment.
                member["propertyNames"] = {"not": {"enum": sorted(ASSIGNMENT_KEYS)}}
    names = sorted(TRANSFORMS)
    transform = defs.get("Assignment", {}).get("properties", {}).get("transform")
    if transform is not None:
        transform["items"] = {
            "anyOf": [
                {"enum": names},
                {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "propertyNames": {"enum": names},
                },
            ]
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
