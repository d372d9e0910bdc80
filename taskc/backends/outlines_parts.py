"""Outlines and llguidance pieces of the `transformers` backend: sampling settings, one shared
grammar backend, output types adapted to llguidance, grammar checks, and the generated-token
recorder. Everything here imports transformers/Outlines only when called."""

from __future__ import annotations

import json
from typing import Any

from taskc.constraints.lower import LLGUIDANCE_JSON_OPTIONS

DEFAULT_MAX_NEW_TOKENS = 256


def sampling_kwargs(generation: dict[str, Any], repeat: int) -> tuple[dict[str, Any], int | None]:
    """`generate` keyword arguments for a request's generation settings, and the seed to set."""
    kwargs: dict[str, Any] = {"max_new_tokens": int(generation.get("max_tokens") or DEFAULT_MAX_NEW_TOKENS)}
    temperature = generation.get("temperature")
    if temperature is None or float(temperature) <= 0.0:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs, None
    top_k = generation.get("top_k")
    kwargs.update(
        do_sample=True,
        temperature=float(temperature),
        top_p=float(generation.get("top_p", 1.0) or 1.0),
        top_k=int(top_k) if top_k is not None and int(top_k) > 0 else 0,
    )
    seed = generation.get("seed")
    return kwargs, (int(seed) + repeat if seed is not None else None)


def cut_at_stop(text: str, stop: Any) -> str:
    """`text` up to (not including) the earliest stop string."""
    if not stop:
        return text
    stops = [stop] if isinstance(stop, str) else list(stop)
    cut = len(text)
    for s in stops:
        if s:
            at = text.find(s)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


class IdRecorder:
    """A `transformers` streamer that keeps the generated ids of every step (the first `put` is
    the prompt and is skipped). Built lazily as a subclass of `BaseStreamer`."""

    _cls: type | None = None

    @classmethod
    def new(cls) -> Any:
        if cls._cls is None:
            from transformers.generation.streamers import BaseStreamer

            class Recorder(BaseStreamer):
                def __init__(self) -> None:
                    self.steps: list[list[int]] = []
                    self._prompt_seen = False

                def put(self, value: Any) -> None:
                    if not self._prompt_seen:
                        self._prompt_seen = True
                        return
                    self.steps.append([int(v) for v in value.reshape(-1).tolist()])

                def end(self) -> None:
                    pass

            cls._cls = Recorder
        return cls._cls()


def shared_grammar_backend(grammar_backend: str, outlines_model: Any) -> Any:
    """One Outlines grammar backend object for all constraints, or False when this Outlines
    version does not let one be shared (then each Generator builds its own)."""
    try:
        from outlines.backends import _get_backend

        return _get_backend(grammar_backend, outlines_model)
    except Exception:  # an Outlines without this internal: fall back to outlines.Generator
        return False


def check_grammar(gen: Any) -> None:
    """Raise for a grammar llguidance cannot compile. (Its matcher would otherwise start in an
    error state that allows only end-of-text: empty outputs and no error.)"""
    processor = getattr(gen, "logits_processor", None)
    grammar, tokenizer = getattr(processor, "grammar", None), getattr(processor, "llg_tokenizer", None)
    if not isinstance(grammar, str) or tokenizer is None:
        return
    from llguidance import LLMatcher

    problem = LLMatcher.validate_grammar(grammar, tokenizer)
    if problem:
        raise ValueError(f"llguidance rejects the grammar: {problem.strip()}")


def adapt_output_type(output_type: Any, grammar_backend: str) -> Any:
    """Make an output type acceptable to the grammar backend.

    `to_outlines` asks for compact JSON with `JsonSchema(..., whitespace_pattern="")`, which
    Outlines' llguidance backend rejects (NotImplementedError: it "does not support the
    `whitespace_pattern` argument"). For llguidance the same request is made the way llguidance
    takes it: the schema's `x-guidance` options (`LLGUIDANCE_JSON_OPTIONS`: no flexible
    whitespace, "," and ":" separators), and no whitespace_pattern."""
    if grammar_backend != "llguidance":
        return output_type
    from outlines.types import JsonSchema

    if not isinstance(output_type, JsonSchema) or output_type.whitespace_pattern is None:
        return output_type
    if output_type.whitespace_pattern != "":
        raise ValueError(
            f"llguidance cannot apply whitespace_pattern {output_type.whitespace_pattern!r}; "
            "use grammar_backend='outlines_core'"
        )
    schema = output_type.schema
    schema = json.loads(schema) if isinstance(schema, str) else dict(schema)
    if isinstance(schema, dict):
        schema.setdefault("x-guidance", dict(LLGUIDANCE_JSON_OPTIONS))
    return JsonSchema(json.dumps(schema, ensure_ascii=False))


def generator_with_backend(outlines_model: Any, backend: Any, output_type: Any) -> Any:
    """What `outlines.Generator(model, output_type, backend=...)` builds, but with the given
    grammar backend object; None when this Outlines version does not allow it."""
    try:
        import outlines
        from outlines.types import CFG, JsonSchema
        from outlines.types.dsl import python_types_to_terms, to_regex
    except ImportError:
        return None
    term = python_types_to_terms(output_type)
    if isinstance(term, CFG):
        processor = backend.get_cfg_logits_processor(term.definition)
    elif isinstance(term, JsonSchema):
        processor = backend.get_json_schema_logits_processor(term.schema, term.whitespace_pattern)
    else:
        processor = backend.get_regex_logits_processor(to_regex(term))
    return outlines.Generator(outlines_model, processor=processor)


def grammar_errors(gen: Any, rows: int) -> list[str | None]:
    """Per row, an llguidance matcher error other than the expected one (a finished row keeps
    being fed pad tokens after its grammar stopped: "parser stopped ...")."""
    matchers = getattr(getattr(gen, "logits_processor", None), "ll_matchers", None)
    out: list[str | None] = [None] * rows
    if not matchers or len(matchers) != rows:
        return out
    for i, matcher in enumerate(matchers):
        try:
            error = matcher.get_error() if matcher.is_error() else None
        except Exception:  # pragma: no cover - another llguidance API
            error = None
        if error and "parser stopped" not in error:
            out[i] = error[:500]
    return out
