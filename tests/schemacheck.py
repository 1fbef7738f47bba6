"""A small validator for the part of JSON Schema that doc/*.schema.json use.

Keywords: type (one or a list), const, enum, properties, required,
additionalProperties (false or a schema), patternProperties, items.  A
keyword it does not know fails, so a schema cannot say more than is checked.
"""

from __future__ import annotations

import re
from typing import Any

KNOWN = {"$schema", "title", "description", "type", "const", "enum", "properties", "required",
         "additionalProperties", "patternProperties", "items"}
TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


def _is(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema``, as "path: reason"; empty when it is valid."""
    unknown = set(schema) - KNOWN
    if unknown:
        return [f"{where}: the schema uses {sorted(unknown)}, which this validator lacks"]
    found: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, name) for name in names):
            return [f"{where}: {value!r} is not of type {names}"]
    if "const" in schema and (value != schema["const"] or type(value) is not type(
            schema["const"])):
        found.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}: {key!r} is missing")
        properties = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for key, item in value.items():
            path = f"{where}.{key}"
            matched = False
            if key in properties:
                found += errors(item, properties[key], path)
                matched = True
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    found += errors(item, sub, path)
                    matched = True
            if matched:
                continue
            extra = schema.get("additionalProperties", True)
            if extra is False:
                found.append(f"{where}: {key!r} is not in the schema")
            elif isinstance(extra, dict):
                found += errors(item, extra, path)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += errors(item, schema["items"], f"{where}[{index}]")
    return found
