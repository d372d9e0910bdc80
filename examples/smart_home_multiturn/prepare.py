"""Build examples/smart_home_multiturn/ : short conversations from the Home Assistant tests.

Each conversation starts from one test sentence of examples/smart_home (same tools, same gold
call, same train/test split by the sentence's hash): the user's sentence, the assistant's
tool call (the gold call, parameters in the tool's order), the tool's result (the test's
response text, "ok" where it has none), then a follow-up the user says that changes the call.
The gold answer is the next tool call. Follow-ups, each applicable only where it makes sense:
  area        a call with an area (no name, no floor): "and the bedroom too" -> another area
  floor       a call with a floor (no name, no area): "same for the basement" -> another floor
  on_off      HassTurnOn/HassTurnOff of lights, fans or switches: "turn them back off" -> the
              other intent, same slots
  brightness  HassLightSet with a brightness: "make it 30% instead" -> another brightness
  volume      HassSetVolume: "actually, 40%" -> another volume level
  temperature HassClimateSetTemperature: "make it 22 degrees instead" -> another temperature
  position    HassSetPosition: "open it to 80% instead" -> another position
One conversation per sentence that has a follow-up: its kind, the new value and the wording are
chosen by hashes of the sentence (deterministic). When both `area` and `on_off` apply, one in
three conversations chains them: area change, tool call, result "ok", then the on/off switch.
Rows: {"conversation": [turns], "answer": {name, parameters}, "kind", "source"}; turns are
{"role": "user"|"tool", "content"} or {"role": "assistant", "tool_calls": [{name, parameters}]}.
Run: python examples/smart_home_multiturn/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
AREAS = ("Guest Room", "Kitchen", "Living Room", "Bedroom", "Garage", "Entrance", "Office")
FLOORS = ("Upstairs", "Ground Floor", "First Floor", "Second Floor", "Basement")
SWITCHABLE = ("light", "fan", "switch")
QUESTIONS = ("HassGetState", "HassClimateGetTemperature", "HassTimerStatus")
ACTION_AREA = ("and the {x} too", "the {x} as well", "now do the same in the {x}", "same for the {x}")
QUESTION_AREA = ("what about the {x}?", "and in the {x}?", "how about the {x}?")
FLOOR_ACTION = ("and {x} too", "same for {x}", "now do {x} as well")
FLOOR_QUESTION = ("what about {x}?", "and {x}?")
ON_OFF = {
    "HassTurnOff": ("now turn {p} back on", "switch {p} on again", "ok, turn {p} on"),
    "HassTurnOn": ("now turn {p} off", "turn {p} back off", "ok, switch {p} off again"),
}
LEVELS = {
    "brightness": ((10, 20, 30, 40, 60, 70, 80, 90), ("make it {v}% instead", "actually, {v} percent", "change that to {v}%")),
    "volume_level": ((10, 20, 30, 40, 50, 60, 70, 80), ("actually, {v}%", "make it {v} instead", "set it to {v} percent instead")),
    "temperature": ((18, 19, 20, 21, 22, 23, 24, 25), ("make it {v} degrees instead", "actually, {v} degrees", "change it to {v}°")),
    "position": ((10, 20, 25, 30, 75, 80), ("make it {v}% instead", "actually, {v} percent", "open it to {v}% instead")),
}
LEVEL_KIND = {"brightness": "brightness", "volume_level": "volume", "temperature": "temperature", "position": "position"}


def smart_home():
    """examples/smart_home/prepare.py as a module (its tools, rows and split)."""
    spec = importlib.util.spec_from_file_location("smart_home_prepare", HERE.parent / "smart_home/prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pick(seq, sentence: str, salt: str):
    digest = hashlib.sha256(f"{salt}:{sentence}".encode("utf-8")).hexdigest()
    return seq[int(digest, 16) % len(seq)]


def ordered(call: dict, tools: dict[str, dict]) -> dict:
    """The call with its parameters in the tool's property order (the canonical form)."""
    order = list(tools[call["name"]]["parameters"]["properties"])
    params = call["parameters"]
    return {"name": call["name"], "parameters": {k: params[k] for k in order if k in params}}


def place(name: str) -> str:
    return name if name == "Upstairs" else f"the {name.lower()}"


def followups(call: dict, sentence: str, entity_domains: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """Every follow-up that applies to `call`: kind -> (what the user says, the next call)."""
    name, params = call["name"], call["parameters"]
    out: dict[str, tuple[str, dict]] = {}
    question = name in QUESTIONS
    if "area" in params and "name" not in params and "floor" not in params:
        area = pick([a for a in AREAS if a != params["area"]], sentence, "area")
        text = pick(QUESTION_AREA if question else ACTION_AREA, sentence, "area-text").format(x=area.lower())
        out["area"] = (text, {"name": name, "parameters": {**params, "area": area}})
    if "floor" in params and "name" not in params and "area" not in params:
        floor = pick([f for f in FLOORS if f != params["floor"]], sentence, "floor")
        text = pick(FLOOR_QUESTION if question else FLOOR_ACTION, sentence, "floor-text").format(x=place(floor))
        out["floor"] = (text, {"name": name, "parameters": {**params, "floor": floor}})
    if name in ON_OFF:
        domain = params.get("domain") or entity_domains.get(params.get("name", ""))
        if domain in SWITCHABLE and "device_class" not in params:
            single = "name" in params and params["name"] != "all"
            text = pick(ON_OFF[name], sentence, "on_off-text").format(p="it" if single else "them")
            other = "HassTurnOff" if name == "HassTurnOn" else "HassTurnOn"
            out["on_off"] = (text, {"name": other, "parameters": dict(params)})
    for slot, (values, texts) in LEVELS.items():
        if slot in params:
            value = pick([v for v in values if v != params[slot]], sentence, slot)
            text = pick(texts, sentence, slot + "-text").format(v=value)
            out[LEVEL_KIND[slot]] = (text, {"name": name, "parameters": {**params, slot: value}})
    return out


def conversation(row: dict, entity_domains: dict[str, str], tools: dict[str, dict]) -> dict | None:
    sentence, call = row["sentence"], row["answer"]
    options = followups(call, sentence, entity_domains)
    if not options:
        return None
    turns = [{"role": "user", "content": sentence},
             {"role": "assistant", "tool_calls": [ordered(call, tools)]},
             {"role": "tool", "content": row["response"] or "ok"}]
    if "area" in options and "on_off" in options and pick((0, 1, 2), sentence, "chain") == 0:
        text, middle = options["area"]
        turns += [{"role": "user", "content": text},
                  {"role": "assistant", "tool_calls": [ordered(middle, tools)]},
                  {"role": "tool", "content": "ok"}]
        text, after = followups(middle, sentence, entity_domains)["on_off"]
        kind = "area+on_off"
    else:
        kind = pick(sorted(options), sentence, "kind")
        text, after = options[kind]
    turns.append({"role": "user", "content": text})
    return {"conversation": turns, "answer": ordered(after, tools), "kind": kind, "source": sentence}


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    base = smart_home()
    tool_list, rows = base.build(shared)
    tools = {t["function"]["name"]: t["function"] for t in tool_list}
    fixtures = base.load_yaml(shared / "data/smart_home/tests_en/_fixtures.yaml")
    entity_domains = {e["name"]: e["id"].split(".", 1)[0] for e in fixtures["entities"]}
    splits: dict[str, list[dict]] = {"test": [], "train": []}
    for row in rows:
        convo = conversation(row, entity_domains, tools)
        if convo is None:
            continue
        base.check(convo["answer"], tools[convo["answer"]["name"]])
        splits["train" if base.is_train(row["sentence"]) else "test"].append(convo)
    for name, part in splits.items():
        base.write_jsonl(out / f"{name}.jsonl", part)
    (out / "LICENSE.md").write_bytes((shared / "data/smart_home/LICENSE.md").read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
