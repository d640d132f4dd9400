"""Run in a subprocess with Debian's unpacked cloud-init on PYTHONPATH (see test_schema.py).

Reads {"name": user_data_text, ...} as JSON on stdin; prints, as JSON, each document's schema
errors and deprecations (cloud-init's own validator, strict), and the top-level keys the schema
knows. A separate process per release: two versions of the `cloudinit` package cannot be
imported into one interpreter.
"""

import json
import logging
import sys

import yaml
from cloudinit.config.schema import SchemaValidationError, get_schema, validate_cloudconfig_schema

from cloudinit import version

logging.disable(logging.CRITICAL)


def known_keys(schema: dict) -> list:
    keys = set(schema.get("properties", {}))
    for definition in schema.get("$defs", {}).values():
        keys.update(definition.get("properties", {}))
    return sorted(keys)


def main() -> None:
    documents = json.load(sys.stdin)
    schema = get_schema()
    results = {}
    for name, text in documents.items():
        if not text.startswith("#cloud-config\n"):
            results[name] = ["does not start with '#cloud-config'"]
            continue
        config = yaml.safe_load(text)
        try:
            validate_cloudconfig_schema(config, schema, strict=True, log_details=False)
            results[name] = []
        except SchemaValidationError as exc:
            results[name] = [str(exc)]
    json.dump(
        {"version": version.version_string(), "known_keys": known_keys(schema), "results": results},
        sys.stdout,
    )


main()
