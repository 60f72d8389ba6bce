#!/usr/bin/env python3
"""validate_schema.py - validates every data/*.json against its JSON Schema
(data/schema/, draft 2020-12) with python3-jsonschema, and checks that the
schemas describe every field (each property, $def and map value has a
"description").

Run: make check-schema   (or: python3 data/consumers/validate_schema.py data)
"""
import json
import pathlib
import sys
import warnings

import jsonschema


def undescribed(node, where, out):
    """Appends to out the places in a schema where a field lacks a description."""
    if isinstance(node, dict):
        for key in ("properties", "$defs"):
            for name, sub in node.get(key, {}).items():
                if isinstance(sub, dict) and "description" not in sub:
                    out.append(f"{where}/{key}/{name}")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and "description" not in extra and "$ref" not in extra:
            out.append(f"{where}/additionalProperties")
        for key, sub in node.items():
            if key not in ("if", "then", "else", "not"):   # conditions, not fields
                undescribed(sub, f"{where}/{key}", out)
    elif isinstance(node, list):
        for k, sub in enumerate(node):
            undescribed(sub, f"{where}[{k}]", out)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "data").resolve()
    schema_dir = folder / "schema"
    schemas = {p.name: json.loads(p.read_text()) for p in sorted(schema_dir.glob("*.json"))}
    base = schema_dir.as_uri() + "/"
    store = {base + name: s for name, s in schemas.items()}
    missing = []
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        undescribed(schema, name, missing)
    for m in missing:
        print(f"  FAIL {m}: no description")
    failures = len(missing)
    print(f"check-schema: {len(schemas)} schemas are valid draft 2020-12; "
          f"{'every field has a description' if not missing else f'{len(missing)} fields lack one'}")
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        schema = schemas.get(doc.get("schema", ""))
        if schema is None:
            print(f"  FAIL {path.name}: unknown schema {doc.get('schema')!r}")
            failures += 1
            continue
        resolver = jsonschema.RefResolver(base + doc["schema"], schema, store=store)
        validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
        errors = list(validator.iter_errors(doc))
        for e in errors[:5]:
            print(f"  FAIL {path.name}: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
        failures += len(errors)
        print(f"  {path.name:26s} {doc['numberOfTests']:3d} tests: "
              f"{'valid' if not errors else f'{len(errors)} errors'} against {doc['schema']}")
    print(f"check-schema: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    # newer jsonschema deprecates RefResolver; Debian's (4.10) has nothing else
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.exit(main())
