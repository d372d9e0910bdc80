"""The student model folder: checked before anything is trained, and the contract a trained one
was made for (`taskc-train.json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskc.backends.trained import TRAIN_RECORD, read_train_record, student_contract_check  # noqa: F401 (re-exported)
from taskc.errors import TaskcError

#: Files of a model folder that describe how text becomes tokens and back (copied verbatim into
#: a trained model, so that its prompts render exactly as the base model's did).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
                   "generation_config.json")


@dataclass(frozen=True)
class Student:
    """A checked student folder: its config (as a dict), architecture and vocabulary size."""

    path: Path
    config: dict[str, Any]
    architecture: str
    vocab_size: int

    @property
    def dtype(self) -> str:
        """The dtype its weights are stored in (float32 when the config does not say)."""
        return str(self.config.get("torch_dtype") or self.config.get("dtype") or "float32")


def check_student(model_dir: str | Path) -> Student:
    """The student folder, or a clear error when it is not a local causal language model with a
    tokenizer and a chat template."""
    path = Path(model_dir)
    if not path.is_dir():
        raise TaskcError(f"student {path} is not a folder (a local model folder with config.json is needed; "
                         "nothing is downloaded)")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskcError(f"student {path} has no config.json: not a model folder") from None
    except (OSError, ValueError) as exc:
        raise TaskcError(f"student {path}: config.json is unreadable: {exc}") from None
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    causal = [a for a in architectures if a.endswith("ForCausalLM") or a.endswith("LMHeadModel")]
    if not causal:
        shown = ", ".join(architectures) or f"model_type {config.get('model_type', '?')!r}"
        raise TaskcError(f"student {path} is not a causal language model ({shown}); taskc trains models whose "
                         "architecture ends in ForCausalLM")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise TaskcError(f"student {path} has no tokenizer files")
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise TaskcError(f"student {path} has no weights (*.safetensors)")
    vocab = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    if not isinstance(vocab, int):
        raise TaskcError(f"student {path}: config.json has no vocab_size")
    return Student(path=path, config=config, architecture=causal[0], vocab_size=vocab)


def load_tokenizer(student: Student):
    """The student's tokenizer; an error when it has no chat template."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(student.path))
    except Exception as exc:  # transformers raises many kinds for a broken tokenizer folder
        raise TaskcError(f"student {student.path}: cannot load its tokenizer: {exc}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise TaskcError(f"student {student.path} has no chat template: the prompts inference sends cannot be rendered")
    return tokenizer
