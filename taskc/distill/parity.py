"""Training sequences that are, token for token, what inference sends, and the checks that prove it.

A training sequence is `prompt_ids + answer_ids`:

- `prompt_ids`: the row's request as the vllm backend renders it (`VLLMBackend.render`: the same
  messages, the same `chat_template_kwargs`, e.g. ``enable_thinking: false``), through the
  student's own chat template with the generation prompt, tokenized without added special
  tokens - vLLM 0.32's `LLM.chat` path (`renderers/hf.py`: render to text, then
  ``encode(text, add_special_tokens=False)``);
- `answer_ids`: the gold answer in the canonical serialization the constrained decoder emits
  (`contract.gold_text`), tokenized on its own (generation starts at a token boundary right after
  the prompt), then the end-of-turn token the chat template closes an assistant turn with.

Loss is on `answer_ids` only; every row's answer mask is asserted non-empty here, never assumed
from a template's generation markers. `check_prompts_with_vllm` re-renders every row with
vLLM's own renderer (no engine, no weights) and compares token ids; `GrammarCheck` feeds the
answer ids, token by token, to xgrammar compiled for the student's tokenizer (what vLLM's
xgrammar backend does) and requires the end-of-turn token to end the output there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from taskc.constraints.verify import context_at
from taskc.errors import TaskcError


@dataclass(frozen=True)
class TrainSequence:
    """One training row: `index` in the train rows, its prompt and answer token ids."""

    index: int
    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]

    @property
    def input_ids(self) -> list[int]:
        """Prompt then answer."""
        return [*self.prompt_ids, *self.answer_ids]

    @property
    def labels(self) -> list[int]:
        """-100 on the prompt (no loss), the token ids on the answer."""
        return [-100] * len(self.prompt_ids) + list(self.answer_ids)

    @property
    def answer_mask(self) -> list[int]:
        """1 where the loss applies."""
        return [0] * len(self.prompt_ids) + [1] * len(self.answer_ids)


@dataclass(frozen=True)
class RowRejection:
    """A row the grammar (or the tokenizer) refuses: split, row, character position, context."""

    split: str
    index: int
    position: int | None
    context: str
    reason: str

    def format(self) -> str:
        """One line, as `taskc verify` reports a refusal."""
        where = f"at character {self.position}" if self.position is not None else "at its end"
        return f"{self.split} row {self.index}: the grammar refuses the answer {where}: {self.context} ({self.reason})"


# -- which rows ------------------------------------------------------------------------------------


def with_train_file(contract, path: Path):
    """The contract with its train split replaced by a JSONL file of `{<inputs>..., answer}`
    rows (what `taskc synth` writes); each answer is parsed as the spec's gold answers are.
    The contract id stays the spec's: the data is recorded separately (`data_sha256`)."""
    from taskc.compiler.data import Split
    from taskc.compiler.prompts import render

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskcError(f"cannot read train file {path}: {exc.strerror or exc}") from None
    rows, lines, values, problems = [], [], [], []
    names = list(contract.body["inputs"])
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskcError(f"{path}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise TaskcError(f"{path}:{number}:1: each line must be a JSON object")
        missing = [k for k in names + ["answer"] if k not in record]
        if missing:
            problems.append(f"{path}:{number}:1: missing '{missing[0]}' (a row holds {', '.join(names)} and answer)")
            continue
        value, problem = contract.output.parse_gold(record["answer"])
        if problem:
            problems.append(f"{path}:{number}:1: {problem}")
            continue
        rows.append({k: record[k] for k in names + ["answer"]})
        lines.append(number)
        values.append(value)
    if problems:
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise TaskcError("\n".join(problems[:20]) + more)
    split = Split(name="train", path=path, shown=str(path), rows=tuple(rows), lines=tuple(lines),
                  fields=tuple(names + ["answer"]), sha256=hashlib.sha256(raw).hexdigest())
    changes: dict[str, Any] = {"splits": {**contract.splits, "train": split}, "gold": {**contract.gold, "train": tuple(values)}}
    if contract.output.kind == "sql":
        keys = []
        for i, row in enumerate(rows):
            key = render(contract.output.database or "", row).strip()
            if key not in contract.databases:
                raise TaskcError(f"{path}:{lines[i]}:1: database {key!r} is not one of the spec's databases")
            keys.append(key)
        changes["row_databases"] = {**contract.row_databases, "train": tuple(keys)}
    return replace(contract, **changes)


def train_rows(contract) -> int:
    """How many train rows there are; an error when there are none."""
    split = contract.splits.get("train")
    if split is None or not split.rows:
        where = f" ({split.shown})" if split is not None else ""
        raise TaskcError(f"{contract.name} has no train rows{where}: nothing to train on")
    return len(split.rows)


# -- rendering -------------------------------------------------------------------------------------


def inference_backend(model_dir: str | Path, chat_template_kwargs: dict[str, Any] | None = None):
    """The vllm backend whose `render` is what inference sends (no engine is built)."""
    from taskc.backends.vllm_local import VLLMBackend

    return VLLMBackend(model=str(model_dir), chat_template_kwargs=chat_template_kwargs)


def rendered_requests(contract, backend) -> list[tuple[Any, dict[str, Any]]]:
    """(request, backend.render(request)) for every train row, in row order."""
    return [(r, backend.render(r)) for r in contract.requests(split="train")]


def prompt_ids(tokenizer, rendered: dict[str, Any]) -> list[int]:
    """The prompt token ids of one rendered request: the chat template with the generation
    prompt and the request's `chat_template_kwargs`, then encoded without special tokens."""
    kwargs = dict(rendered.get("chat_template_kwargs") or {})
    text = tokenizer.apply_chat_template(list(rendered["messages"]), tools=rendered.get("tools"), tokenize=False,
                                         add_generation_prompt=True, **kwargs)
    return list(tokenizer.encode(text, add_special_tokens=False))


def stop_token_ids(tokenizer, model_dir: str | Path) -> list[int]:
    """The ids that end a generation: generation_config's eos ids, else the tokenizer's eos."""
    ids: list[int] = []
    path = Path(model_dir) / "generation_config.json"
    if path.is_file():
        try:
            eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError):
            eos = None
        ids.extend([eos] if isinstance(eos, int) else list(eos or []))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def end_of_turn_id(tokenizer, stop_ids: Sequence[int]) -> int:
    """The token the chat template closes an assistant turn with (found by rendering one), which
    must also be a stop token, or a trained model would not stop where it was taught to."""
    probe = "taskc-end-of-turn-probe"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": probe}],
                                         tokenize=False)
    suffix = text[text.rfind(probe) + len(probe):] if probe in text else ""
    ids = tokenizer.encode(suffix, add_special_tokens=False) if suffix else []
    special = set(tokenizer.all_special_ids)
    candidate = ids[0] if ids and ids[0] in special else tokenizer.eos_token_id
    if candidate is None or candidate not in stop_ids:
        shown = tokenizer.convert_ids_to_tokens(candidate) if candidate is not None else "nothing"
        raise TaskcError(f"the student's chat template ends an assistant turn with {shown!r}, which is not one of its "
                         f"stop tokens ({', '.join(map(str, stop_ids)) or 'none'}): a trained model would not stop there")
    return int(candidate)


def build_sequences(contract, tokenizer, backend, eot: int) -> list[TrainSequence]:
    """One `TrainSequence` per train row (see the module docstring); raises when a row's answer
    mask would be empty."""
    out = []
    for request, rendered in rendered_requests(contract, backend):
        prompt = prompt_ids(tokenizer, rendered)
        answer = list(tokenizer.encode(contract.gold_text("train", request.index), add_special_tokens=False)) + [eot]
        out.append(TrainSequence(request.index, tuple(prompt), tuple(answer)))
    return out


def check_masks(sequences: Sequence[TrainSequence], prepared: Sequence[dict[str, Any]]) -> None:
    """Assert on the rows as the trainer will see them: the same input ids, and labels that
    cover exactly the answer tokens (a non-empty mask on every row, none on the prompt)."""
    if len(prepared) != len(sequences):
        raise TaskcError(f"the trainer kept {len(prepared)} of {len(sequences)} rows")
    for seq, row in zip(sequences, prepared):
        labels = list(row["labels"])
        if list(row["input_ids"]) != seq.input_ids:
            raise TaskcError(f"train row {seq.index}: the trainer changed the token sequence")
        learned = [i for i, x in enumerate(labels) if x != -100]
        if not learned:
            raise TaskcError(f"train row {seq.index}: the answer mask is empty (nothing would be learned)")
        if learned != list(range(len(seq.prompt_ids), len(seq.prompt_ids) + len(seq.answer_ids))):
            raise TaskcError(f"train row {seq.index}: the loss mask does not cover exactly the answer tokens")


def sequences_sha256(sequences: Sequence[TrainSequence]) -> str:
    """A digest of the exact token sequences (and masks) trained on."""
    h = hashlib.sha256()
    for s in sequences:
        h.update(json.dumps([s.prompt_ids, s.answer_ids], separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


# -- the grammar check -------------------------------------------------------------------------------


_COMPILERS: dict[tuple, Any] = {}


def _compiler(tokenizer, vocab_size: int, stop_ids: tuple[int, ...]):
    """xgrammar's compiler for a tokenizer (its vocabulary setup takes seconds: made once per
    process for each tokenizer folder and file)."""
    import xgrammar as xgr

    source = Path(str(getattr(tokenizer, "name_or_path", ""))) / "tokenizer.json"
    stamp = (source.stat().st_size, source.stat().st_mtime_ns) if source.is_file() else id(tokenizer)
    key = (str(source), stamp, vocab_size, stop_ids)
    if key not in _COMPILERS:
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids))
        _COMPILERS[key] = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    return _COMPILERS[key]


class GrammarCheck:
    """Each row's answer ids through xgrammar compiled for the student's tokenizer."""

    def __init__(self, tokenizer, vocab_size: int, stop_ids: Sequence[int]):
        self._tokenizer = tokenizer
        self._stop_ids = list(stop_ids)
        self._compiler = _compiler(tokenizer, vocab_size, tuple(stop_ids))
        self._compiled: dict[Any, Any] = {}

    def refusal(self, request, sequence: TrainSequence, text: str, split: str = "train") -> RowRejection | None:
        """None when the grammar takes every answer token and then ends; else where it refused."""
        import xgrammar as xgr

        from taskc.constraints.lower import to_xgrammar_grammar

        constraint = request.constraint  # what the vllm backend sends as structured_outputs
        if constraint is None:
            return None
        if constraint not in self._compiled:
            self._compiled[constraint] = to_xgrammar_grammar(constraint, self._compiler)
        matcher = xgr.GrammarMatcher(self._compiled[constraint], override_stop_tokens=self._stop_ids)
        *body, eot = sequence.answer_ids
        for i, token in enumerate(body):
            if not matcher.accept_token(token):
                done = len(self._tokenizer.decode(body[:i], skip_special_tokens=False))
                piece = self._tokenizer.convert_ids_to_tokens(token)
                return RowRejection(split, sequence.index, done, context_at(text, done), f"token {piece!r} refused")
        if not (matcher.accept_token(eot) and matcher.is_terminated()):
            return RowRejection(split, sequence.index, None, context_at(text, len(text)), "the output may not end there")
        return None


def grammar_refusals(contract, tokenizer, vocab_size: int, stop_ids, backend, sequences) -> list[RowRejection]:
    """Every row whose answer tokens the compiled grammar refuses (empty when all pass)."""
    check = GrammarCheck(tokenizer, vocab_size, stop_ids)
    by_index = {r.index: r for r in contract.requests(split="train")}
    out = []
    for seq in sequences:
        found = check.refusal(by_index[seq.index], seq, contract.gold_text("train", seq.index))
        if found:
            out.append(found)
    return out


# -- the prompt check against vLLM's own renderer ------------------------------------------------------


def vllm_prompt_ids(model_dir: str | Path, rendered: Sequence[dict[str, Any]], max_model_len: int | None = None) -> list[list[int]]:
    """The prompt token ids vLLM's `LLM.chat` would submit for each rendered request, from vLLM's
    own renderer built for `model_dir` (configuration and tokenizer only: no engine, no weights).
    Raises ImportError when vLLM is not installed."""
    import os

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from taskc.backends.offline import quiet_local_libraries

    quiet_local_libraries()
    from vllm.engine.arg_utils import EngineArgs
    from vllm.renderers.params import ChatParams, merge_kwargs
    from vllm.renderers.registry import renderer_from_config

    args = EngineArgs(model=str(model_dir), load_format="dummy", enforce_eager=True, gpu_memory_utilization=0.1,
                      **({"max_model_len": max_model_len} if max_model_len else {}))
    renderer = renderer_from_config(args.create_engine_config())
    tok_params = renderer.default_chat_tok_params.with_kwargs(add_special_tokens=False)
    out = []
    for item in rendered:
        params = ChatParams(chat_template=None, chat_template_content_format="auto",
                            chat_template_kwargs=merge_kwargs(dict(item.get("chat_template_kwargs") or {}), dict(
                                add_generation_prompt=True, continue_final_message=False, tools=item.get("tools"),
                                tokenize=False)))
        _, prompts = renderer.render_chat([list(item["messages"])], params, tok_params)
        out.append(list(prompts[0]["prompt_token_ids"]))
    return out


@dataclass(frozen=True)
class PromptMismatch:
    """A row whose training prompt differs from what vLLM sends: the first differing token."""

    index: int
    position: int
    trained: tuple[int, ...]
    sent: tuple[int, ...]

    def format(self, tokenizer=None) -> str:
        """One line naming the row, the first differing position and the tokens there."""
        a, b = self.trained[self.position:self.position + 3], self.sent[self.position:self.position + 3]
        if tokenizer is not None:
            a, b = tokenizer.convert_ids_to_tokens(list(a)), tokenizer.convert_ids_to_tokens(list(b))
        return f"train row {self.index}: prompt differs from vLLM's at token {self.position}: trained {a} vs sent {b}"


def prompt_mismatches(sequences: Sequence[TrainSequence], sent: Sequence[Sequence[int]]) -> list[PromptMismatch]:
    """Rows whose prompt ids are not exactly the ids vLLM sends."""
    out = []
    for seq, ids in zip(sequences, sent):
        ids = tuple(ids)
        if seq.prompt_ids != ids:
            pos = next((i for i, (a, b) in enumerate(zip(seq.prompt_ids, ids)) if a != b), min(len(ids), len(seq.prompt_ids)))
            out.append(PromptMismatch(seq.index, pos, seq.prompt_ids, ids))
    return out
