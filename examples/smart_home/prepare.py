"""Build examples/smart_home/ from the Home Assistant intents English tests (CC BY 4.0).

Every Home Assistant intent in intents.yaml (33) becomes one tool (OpenAI function format, in
tools.json): its slots are the parameters, in intents.yaml order, with the slot descriptions.
Types: integers for counts and 0-100 levels, a number for the temperature, strings otherwise.
Closed sets become enums: areas and floors from tests_en/_fixtures.yaml; domains from the
fixture entities' ids plus the domains intents.yaml lists for its slot combinations; device classes from the fixture
entities plus Home Assistant's cover device classes; `state` from the states the tests ask
about; `media_class` from the list in its intents.yaml description. Entity, list and timer
names, items, messages and queries are open strings. A parameter is required when
intents.yaml marks its slot required.

Each test sentence (ha_intents_en_tests.jsonl, the tests_en/*.yaml files flattened in file
order) becomes {"sentence", "answer": {"name": intent, "parameters": slots}, "file"}. A slot
given as a list of accepted spellings that differ only in surrounding spaces (e.g. the timer
name ["pizza ", "pizza"]) becomes that one stripped string. Every value is checked against
its parameter's schema (the script fails otherwise).
Split, deterministic: a sentence goes to train when the sha256 of its text, read as a number,
is 0, 1 or 2 modulo 10 (about 30%), else to test; each split keeps the source order.
The licence is copied beside the data.
Run: python examples/smart_home/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
COVER_DEVICE_CLASSES = ("awning", "blind", "curtain", "damper", "door", "garage", "gate", "shade", "shutter", "window")
STATES = ("on", "off", "open", "closed", "locked", "unlocked", "home")
INTEGER_0_100 = ("brightness", "position", "volume_level")
COUNTS = ("hours", "minutes", "seconds", "start_hours", "start_minutes", "start_seconds")
STRINGS = ("name", "message", "item", "color", "search_query", "response", "conversation_command")


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def closed_sets(intents: dict, fixtures: dict) -> dict[str, list[str]]:
    """The enums, from the fixtures (and intents.yaml where it names the values)."""
    domains = {e["id"].split(".", 1)[0] for e in fixtures["entities"]}
    # intents.yaml lists domains per importance group; two lists hold a stray group or slot
    # name ("optional", "name"): those are not domains.
    not_domains = {"required", "usable", "complete", "optional"}
    for intent in intents.values():
        not_domains.update(intent.get("slots") or {})
    for intent in intents.values():
        for combo in (intent.get("slot_combinations") or {}).values():
            for key in ("inferred_domains", "name_domains"):
                for group in (combo.get(key) or {}).values():
                    domains.update(d for d in group if d not in not_domains)
    device_classes = {(e.get("attributes") or {}).get("device_class") for e in fixtures["entities"]} - {None}
    device_classes.update(COVER_DEVICE_CLASSES)
    media = intents["HassMediaSearchAndPlay"]["slots"]["media_class"]["description"]
    media_classes = [m.strip() for m in re.search(r"\((.*)\)", media).group(1).split(",")]
    return {
        "area": [a["name"] for a in fixtures["areas"]],
        "floor": [f["name"] for f in fixtures["floors"]],
        "domain": sorted(domains),
        "device_class": sorted(device_classes),
        "state": list(STATES),
        "media_class": media_classes,
    }


def parameter(slot: str, description: str, enums: dict[str, list[str]]) -> dict:
    if slot in enums:
        return {"type": "string", "enum": enums[slot], "description": description}
    if slot in INTEGER_0_100:
        return {"type": "integer", "minimum": 0, "maximum": 100, "description": description}
    if slot in COUNTS:
        return {"type": "integer", "minimum": 0, "description": description}
    if slot == "temperature":
        return {"type": "number", "description": description}
    if slot in STRINGS:
        return {"type": "string", "description": description}
    raise ValueError(f"no type for slot '{slot}'")


def tools_of(intents: dict, enums: dict[str, list[str]]) -> list[dict]:
    tools = []
    for name, intent in intents.items():
        slots = intent.get("slots") or {}
        properties = {slot: parameter(slot, spec["description"], enums) for slot, spec in slots.items()}
        required = [slot for slot, spec in slots.items() if spec.get("required")]
        tools.append({"type": "function", "function": {
            "name": name,
            "description": intent["description"],
            "parameters": {"type": "object", "properties": properties, "required": required,
                           "additionalProperties": False},
        }})
    return tools


def slot_value(value):
    """A list of spellings that differ only in surrounding spaces -> the stripped string."""
    if isinstance(value, list):
        spellings = {v.strip() for v in value}
        if len(spellings) != 1:
            raise ValueError(f"slot alternatives differ: {value!r}")
        return spellings.pop()
    return value


def check(call: dict, tool: dict) -> None:
    """Fail unless the call's parameters satisfy the tool's schema."""
    schema = tool["parameters"]
    params = call["parameters"]
    where = f"{call['name']} {params}"
    missing = set(schema["required"]) - set(params)
    if missing:
        raise ValueError(f"{where}: missing required {sorted(missing)}")
    for key, value in params.items():
        prop = schema["properties"].get(key)
        if prop is None:
            raise ValueError(f"{where}: unknown parameter '{key}'")
        kind = prop["type"]
        ok = {"string": isinstance(value, str),
              "integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool)}[kind]
        ok = ok and ("enum" not in prop or value in prop["enum"])
        ok = ok and ("minimum" not in prop or value >= prop["minimum"]) and ("maximum" not in prop or value <= prop["maximum"])
        if not ok:
            raise ValueError(f"{where}: '{key}' = {value!r} does not satisfy {prop}")


def is_train(sentence: str) -> bool:
    return int(hashlib.sha256(sentence.encode("utf-8")).hexdigest(), 16) % 10 < 3


def read_rows(source: Path, tools: dict[str, dict]) -> list[dict]:
    rows = []
    for line in (source / "ha_intents_en_tests.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        params = {k: slot_value(v) for k, v in (record["slots"] or {}).items()}
        call = {"name": record["intent"], "parameters": params}
        check(call, tools[record["intent"]])
        rows.append({"sentence": record["sentence"], "answer": call, "file": record["file"],
                     "response": record["response"]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def build(shared: Path) -> tuple[list[dict], list[dict]]:
    """(tools in OpenAI function format, rows in source order)."""
    source = shared / "data/smart_home"
    intents = load_yaml(source / "intents.yaml")
    fixtures = load_yaml(source / "tests_en/_fixtures.yaml")
    tools = tools_of(intents, closed_sets(intents, fixtures))
    rows = read_rows(source, {t["function"]["name"]: t["function"] for t in tools})
    return tools, rows


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    tools, rows = build(shared)
    (out / "tools.json").write_text(json.dumps({"tools": tools}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    public = [{k: r[k] for k in ("sentence", "answer", "file")} for r in rows]
    write_jsonl(out / "test.jsonl", [r for r in public if not is_train(r["sentence"])])
    write_jsonl(out / "train.jsonl", [r for r in public if is_train(r["sentence"])])
    (out / "LICENSE.md").write_bytes((shared / "data/smart_home/LICENSE.md").read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
