"""Models trained by `taskc train`: the record in their folder (`taskc-train.json`) says which
contract they were trained for, so a run of another contract can refuse them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from taskc.errors import TaskcError

TRAIN_RECORD = "taskc-train.json"


def read_train_record(model_dir: str | Path) -> dict[str, Any] | None:
    """`taskc-train.json` of a model folder, or None when it was not trained by taskc."""
    path = Path(model_dir) / TRAIN_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TaskcError(f"{path} is unreadable: {exc}") from None


def student_contract_check(model_dir: str | Path, contract_id: str, allow_other: bool = False) -> str | None:
    """Refuse to evaluate a model trained by taskc for another contract.

    Returns None when the folder was trained for `contract_id` or not by taskc at all, a warning
    line when it was trained for another contract and `allow_other` is set, and raises
    TaskcError otherwise. A model folder given by hub id (not a local folder) passes."""
    record = read_train_record(model_dir) if Path(model_dir).is_dir() else None
    if record is None:
        return None
    trained = str(record.get("contract_id", ""))
    if trained == contract_id:
        return None
    message = (f"{model_dir} was trained for contract {trained[:12]} (task {record.get('task', '?')}), "
               f"not {contract_id[:12]}")
    if allow_other:
        return f"warning: {message}; evaluating anyway (--allow-other-contract)"
    raise TaskcError(f"{message}: the spec, its prompts or its data changed since training; retrain, "
                     "or pass --allow-other-contract to evaluate it anyway")
