"""Training sequences are the tokens inference sends, plus the canonical answer and end of turn."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.train

#: A Qwen3-style template written for these tests: with `enable_thinking` false the generation
#: prompt carries an empty thinking block, as Qwen3's own template does.
THINKING_TEMPLATE = (
    "{%- for m in messages %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


def thinking_student(student: Path, folder: Path) -> Path:
    """A copy of the student whose chat template has the thinking switch (weights linked)."""
    folder.mkdir()
    for item in student.iterdir():
        if item.suffix == ".safetensors":
            (folder / item.name).symlink_to(item)
        elif item.is_file():
            shutil.copyfile(item, folder / item.name)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = THINKING_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def label_prepared(student, tmp_path_factory):
    """The label task prepared once for this module."""
    from tests.distill.tasks import write_label_task

    return _prepared(write_label_task(tmp_path_factory.mktemp("label")), student)


def _prepared(spec: Path, student: Path, **kw):
    from taskc.compiler.build import compile_spec
    from taskc.distill.settings import TrainSettings
    from taskc.distill.train import prepare

    return prepare(compile_spec(spec), student, TrainSettings(), **kw)


def test_sequences_are_the_rendered_prompt_then_the_gold_answer_and_end_of_turn(label_prepared, student):
    from transformers import AutoTokenizer

    p = label_prepared
    tok = AutoTokenizer.from_pretrained(str(student))
    assert len(p.sequences) == 30 and p.end_of_turn == tok.convert_tokens_to_ids("<|im_end|>")
    first = p.sequences[0]
    text = tok.decode(list(first.prompt_ids))
    assert text == ("<|im_start|>system\nRoute the case. Answer with exactly one of these labels and nothing else:\n"
                    "- billing\n- shipping\n- returns\n- account\n- other<|im_end|>\n"
                    "<|im_start|>user\ncase 1: ember sierra zephyr<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(list(first.answer_ids)) == p.contract.gold_text("train", 0) + "<|im_end|>"
    assert first.labels == [-100] * len(first.prompt_ids) + list(first.answer_ids)
    assert all(sum(s.answer_mask) == len(s.answer_ids) >= 2 for s in p.sequences)


def test_thinking_block_of_the_inference_prompt_is_in_every_training_prompt(tasks, student, tmp_path):
    from transformers import AutoTokenizer

    folder = thinking_student(student, tmp_path / "thinking")
    p = _prepared(tasks("tool"), folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    for seq in p.sequences:
        assert tok.decode(list(seq.prompt_ids)).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        assert tok.decode(list(seq.answer_ids)) == p.contract.gold_text("train", seq.index) + "<|im_end|>"
    # the backend's chat_template_kwargs decide it: with thinking on, no empty block
    on = _prepared(tasks("tool"), folder, chat_template_kwargs={"enable_thinking": True})
    assert tok.decode(list(on.sequences[0].prompt_ids)).endswith("<|im_start|>assistant\n")


def test_the_mask_check_refuses_a_row_without_answer_tokens(label_prepared):
    from taskc.distill.parity import check_masks
    from taskc.errors import TaskcError

    p = label_prepared
    rows = [{"input_ids": s.input_ids, "labels": s.labels} for s in p.sequences]
    check_masks(p.sequences, rows)
    rows[4] = {"input_ids": rows[4]["input_ids"], "labels": [-100] * len(rows[4]["input_ids"])}
    with pytest.raises(TaskcError, match=r"^train row 4: the answer mask is empty \(nothing would be learned\)$"):
        check_masks(p.sequences, rows)
    rows[4] = {"input_ids": rows[4]["input_ids"], "labels": list(rows[4]["input_ids"])}
    with pytest.raises(TaskcError, match=r"^train row 4: the loss mask does not cover exactly the answer tokens$"):
        check_masks(p.sequences, rows)


def test_prompt_mismatches_name_the_row_and_the_first_differing_token(label_prepared):
    from taskc.distill.parity import prompt_mismatches

    p = label_prepared
    sent = [list(s.prompt_ids) for s in p.sequences]
    assert prompt_mismatches(p.sequences, sent) == []
    sent[7] = sent[7][:5] + [42] + sent[7][6:]
    sent[9] = sent[9] + [198]
    first, second = prompt_mismatches(p.sequences, sent)
    assert (first.index, first.position, second.index, second.position) == (7, 5, 9, len(p.sequences[9].prompt_ids))
    assert first.format(p.tokenizer) == (
        f"train row 7: prompt differs from vLLM's at token 5: trained {p.tokenizer.convert_ids_to_tokens(list(p.sequences[7].prompt_ids[5:8]))} "
        f"vs sent {p.tokenizer.convert_ids_to_tokens(sent[7][5:8])}")


def test_the_grammar_check_takes_every_gold_answer_and_refuses_a_bad_one(tasks, student, tmp_path):
    from taskc.compiler.build import compile_spec
    from taskc.distill.parity import with_train_file
    from taskc.distill.settings import TrainSettings
    from taskc.distill.train import prepare
    from taskc.errors import TaskcError

    contract = compile_spec(tasks("tool"))
    assert len(prepare(contract, student, TrainSettings()).sequences) == 30  # all 30 accepted
    bad = tmp_path / "bad.jsonl"
    rows = [{"request": "leave a note", "answer": {"name": "note", "parameters": {"to": "ana", "urgent": True, "text": "hi<|im_end|>there"}}},
            {"request": "a timer", "answer": {"name": "set_timer", "parameters": {"minutes": 5}}}]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TaskcError) as err:
        prepare(with_train_file(contract, bad), student, TrainSettings())
    assert str(err.value) == (
        "1 of 2 train answers are refused by the compiled grammar (a constrained model could never produce them):\n"
        '  train row 0: the grammar refuses the answer at character 64: …"ana","urgent":true,"text":"hi‸<|im_end|>there"}} '
        "(token '<|im_end|>' refused)")


def test_a_train_file_row_that_is_not_a_valid_answer_is_an_error_at_its_line(tasks, tmp_path):
    from taskc.compiler.build import compile_spec
    from taskc.distill.parity import with_train_file
    from taskc.errors import TaskcError

    contract = compile_spec(tasks("label"))
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a", "answer": "billing"}\n\n{"text": "b", "answer": "refunds"}\n{"answer": "other"}\n')
    with pytest.raises(TaskcError) as err:
        with_train_file(contract, path)
    assert str(err.value) == (f"{path}:3:1: gold label 'refunds' is not in the label set\n"
                              f"{path}:4:1: missing 'text' (a row holds text and answer)")
    path.write_text('{"text": "a", "answer": "billing"}\n')
    swapped = with_train_file(contract, path)
    assert swapped.id == contract.id and swapped.messages("train", 0)[-1]["content"] == "a"
    assert swapped.gold_text("train", 0) == "billing"
