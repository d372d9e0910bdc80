"""parse_tool_call on the shapes models emit, built from real git_assistant answers."""

from __future__ import annotations

import json

import pytest

from taskc.metrics.tool_call_parse import parse_tool_call


def shapes(call: dict) -> dict[str, str]:
    """The same call in every accepted shape."""
    name, params = call["name"], call["parameters"]
    args = json.dumps(params)
    openai_call = {"id": "call_1", "type": "function",
                   "function": {"name": name, "arguments": args}}
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": name, "input": params}
    return {
        "name_parameters": json.dumps(call),
        "indented": json.dumps(call, indent=4),
        "tabs": json.dumps(call, indent="\t"),
        "name_arguments_object": json.dumps({"name": name, "arguments": params}),
        "name_arguments_string": json.dumps({"name": name, "arguments": args}),
        "openai_call": json.dumps(openai_call),
        "openai_message": json.dumps({"role": "assistant", "content": None,
                                      "tool_calls": [openai_call]}),
        "openai_list": json.dumps([openai_call]),
        "openai_response": json.dumps({"choices": [{"message": {"role": "assistant",
                                                                "tool_calls": [openai_call]}}]}),
        "hermes": f"<tool_call>\n{json.dumps({'name': name, 'arguments': params})}\n</tool_call>",
        "hermes_with_text": ("I'll run that for you.\n<tool_call>\n"
                             f"{json.dumps({'name': name, 'arguments': params}, indent=2)}"
                             "\n</tool_call>\nDone."),
        "hermes_unclosed": f"<tool_call>{json.dumps(call)}",
        "anthropic_block": json.dumps(tool_use),
        "anthropic_content": json.dumps([{"type": "text", "text": "Sure."}, tool_use]),
        "anthropic_message": json.dumps({"role": "assistant", "content": [
            {"type": "text", "text": "Sure."}, tool_use]}),
        "fenced": f"```json\n{json.dumps(call, indent=2)}\n```",
        "fenced_bare": f"Here you go:\n```\n{json.dumps(call)}\n```\n",
        "prose_around": f"The call is {json.dumps(call)} as requested.",
        "whitespace": f"\n\n  {json.dumps(call)}  \n",
    }


def test_every_shape_of_every_gold_call(git_rows):
    for row in git_rows:
        expected = {"name": row["answer"]["name"], "parameters": row["answer"]["parameters"]}
        for shape, text in shapes(row["answer"]).items():
            assert parse_tool_call(text) == expected, (shape, text)


@pytest.mark.parametrize("text", [
    "", "   ", "git_status", "I cannot help with that.", "{", "{\"name\": 3}",
    "[]", "{\"tool_calls\": []}", "{\"name\": \"git_add\", \"arguments\": \"{not json\"}",
    "{\"name\": \"git_add\", \"parameters\": [\"a\"]}", "<tool_call>oops</tool_call>",
    "```json\n{\"verdict\": \"correct\"}\n```",
])
def test_unparseable(text):
    assert parse_tool_call(text) is None


def test_missing_or_empty_arguments_mean_no_parameters():
    assert parse_tool_call('{"name": "git_status"}') == {"name": "git_status", "parameters": {}}
    assert parse_tool_call('{"type": "function", "function": {"name": "git_status", '
                           '"arguments": ""}}') == {"name": "git_status", "parameters": {}}
    assert parse_tool_call('{"name": "git_status", "arguments": null}') == {
        "name": "git_status", "parameters": {}}


def test_first_of_several_calls():
    text = ('<tool_call>{"name": "git_add", "arguments": {"files": ["."]}}</tool_call>\n'
            '<tool_call>{"name": "git_commit", "arguments": {"message": "wip"}}</tool_call>')
    assert parse_tool_call(text) == {"name": "git_add", "parameters": {"files": ["."]}}


def test_does_not_mutate_or_alias_input_objects():
    raw = '{"name": "git_add", "parameters": {"files": ["a.py"]}}'
    first = parse_tool_call(raw)
    first["parameters"]["files"].append("b.py")
    assert parse_tool_call(raw) == {"name": "git_add", "parameters": {"files": ["a.py"]}}
