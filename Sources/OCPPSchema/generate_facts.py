#!/usr/bin/env python3
"""Derives the schema facts the relay judges OCPP messages by from the official OCA JSON schemas.

The schemas ship inside the pinned `ocpp` package (mobilityhouse, see Tests/EndToEnd/requirements.txt) under
ocpp/v16, ocpp/v201 and ocpp/v21. This script keeps of each message's request and response schema only what a
validator needs (types, members, required members, closed objects, lengths, enumerations, formats, bounds, array
sizes), with shared definitions kept once per version, and writes one JSON file per version into Facts/, which the
EmbedSchemaFacts build plugin builds into the binary. Never edit those files by hand: run

    .venv/bin/python Sources/OCPPSchema/generate_facts.py            # rewrite Facts/
    .venv/bin/python Sources/OCPPSchema/generate_facts.py --check    # exit 1 when Facts/ differs (the tests run this)
"""

import argparse
import json
import pathlib
import sys

import ocpp

VERSIONS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}
HERE = pathlib.Path(__file__).resolve().parent
FACTS = HERE / "Facts"
# The keywords the schemas use and a validator needs; the others (titles, descriptions, javaType, comment,
# default, $schema, $id, additionalItems next to a single items schema) say nothing about validity.
IGNORED = {"$schema", "$id", "title", "description", "javaType", "comment", "default", "additionalItems", "id"}


class Facts:
    def __init__(self, version):
        self.version = version
        self.definitions = {}

    def node(self, schema, definitions, where):
        """The facts of one schema node; `definitions` are the node's file's own."""
        unknown = set(schema) - IGNORED - {
            "type", "properties", "required", "additionalProperties", "maxLength", "enum", "format", "minimum",
            "maximum", "multipleOf", "items", "minItems", "maxItems", "$ref", "definitions",
        }
        if unknown:
            sys.exit(f"{where}: keywords the facts do not carry: {sorted(unknown)}")
        if "$ref" in schema:
            prefix = "#/definitions/"
            ref = schema["$ref"]
            if not ref.startswith(prefix):
                sys.exit(f"{where}: unsupported $ref {ref}")
            return {"ref": self.define(ref[len(prefix):], definitions, where)}
        kind = schema.get("type", "any")  # no type: any JSON value (2.x DataTransfer's data)
        if kind not in {"object", "array", "string", "integer", "number", "boolean", "any"}:
            sys.exit(f"{where}: unsupported type {kind!r}")
        node = {"type": kind}
        if kind == "object":
            properties = schema.get("properties", {})
            node["properties"] = {
                name: self.node(member, definitions, f"{where}.{name}") for name, member in properties.items()
            }
            if schema.get("required"):
                node["required"] = list(schema["required"])
            if schema.get("additionalProperties") is False:
                node["closed"] = True
        elif kind == "array":
            node["items"] = self.node(schema.get("items", {"type": "object"}), definitions, f"{where}[]")
            for key in ("minItems", "maxItems"):
                if key in schema:
                    node[key] = schema[key]
        else:
            for key in ("maxLength", "enum", "format", "minimum", "maximum", "multipleOf"):
                if key in schema:
                    node[key] = schema[key]
        return node

    def define(self, name, definitions, where):
        """A definition kept once per version (a name whose content differs between files gets a suffix)."""
        if name not in definitions:
            sys.exit(f"{where}: undefined $ref {name}")
        facts = self.node(definitions[name], definitions, f"{where}<{name}>")
        key, n = name, 1
        while key in self.definitions and self.definitions[key] != facts:
            n += 1
            key = f"{name}{n}"
        self.definitions[key] = facts
        return key


def message_files(folder):
    """action -> (request file, response file or None); 1.6 names requests `X.json`, 2.x `XRequest.json`."""
    names = {p.stem for p in folder.glob("*.json")}
    actions = {}
    for name in sorted(names):
        if name.endswith("Response"):
            continue
        action = name[: -len("Request")] if name.endswith("Request") else name
        response = f"{action}Response"
        # A message without a response schema travels as a SEND (2.1's NotifyPeriodicEventStream): never answered.
        actions[action] = (folder / f"{name}.json", folder / f"{response}.json" if response in names else None)
    return actions


def generate(version, package):
    folder = pathlib.Path(ocpp.__file__).parent / package / "schemas"
    facts = Facts(version)
    messages = {}
    for action, (request, response) in message_files(folder).items():
        entry = {}
        for part, path in (("request", request), ("response", response)):
            if path is None:
                continue
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            entry[part] = facts.node(schema, schema.get("definitions", {}), f"{path.name}")
        messages[action] = entry
    return {
        "version": version,
        "source": f"ocpp {ocpp_version()} (PyPI), ocpp/{package}/schemas: generated by generate_facts.py",
        "definitions": dict(sorted(facts.definitions.items())),
        "messages": messages,
    }


def ocpp_version():
    from importlib.metadata import version

    return version("ocpp")


def text(document):
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed facts differ")
    args = parser.parse_args()
    stale = []
    for version, package in VERSIONS.items():
        path = FACTS / f"ocpp{package[1:]}.json"
        wanted = text(generate(version, package))
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != wanted:
                stale.append(path.name)
        else:
            FACTS.mkdir(exist_ok=True)
            path.write_text(wanted, encoding="utf-8")
    if stale:
        sys.exit(f"schema facts out of date (run {pathlib.Path(__file__).name}): {', '.join(stale)}")


if __name__ == "__main__":
    main()
