"""The terminal side of `taskc compile`, `validate`, `show` and `export` (CLI layer: it may use
any stage, here the backends' request templates)."""

from __future__ import annotations

import sys
from pathlib import Path

from taskc.errors import TaskcError


def compile_command(contracts, out: Path, check: bool) -> int:
    """Write (or with `check`, compare) `out/<task>/` for each contract; 1 when one is stale."""
    from taskc.backends.templates import compiled_files
    from taskc.compiler.artifacts import stale_files, write_files

    stale_any = False
    for contract in contracts:
        files = compiled_files(contract)
        target = out / contract.name
        if check:
            if not (target / "contract.json").is_file():
                stale_any = True
                print(f"{target}: not compiled (run: taskc compile {contract.loaded.source.path})")
                continue
            stale = stale_files(target, files)
            if stale:
                stale_any = True
                print(f"{target}: stale ({len(stale)} files differ: {', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''})")
            else:
                print(f"{target}: up to date (contract {contract.short_id})")
        else:
            write_files(target, files)
            print(f"{contract.name}: contract {contract.short_id} -> {target}/ ({len(files)} files)")
    return 1 if stale_any else 0


def validate_command(contracts) -> int:
    """One line per valid spec (errors were reported while compiling)."""
    for contract in contracts:
        print(f"{contract.loaded.source.path}: ok (contract {contract.short_id})")
    return 0


def show_command(contract, example: int, split: str) -> int:
    """The exact messages one example sends, the constraint kind and the gold answer."""
    if split not in contract.splits:
        raise TaskcError(f"no {split} split in {contract.loaded.source.path}")
    rows = len(contract.splits[split].rows)
    if not 0 <= example < rows:
        raise TaskcError(f"--example must be between 0 and {rows - 1}")
    print(f"# {contract.name} (contract {contract.short_id}), {split} example {example} of {rows}")
    prefix = contract.body["prefix"]
    tokens = contract.analysis.get("prefix_tokens")
    print(f"# static prefix ({prefix['scope']}): {prefix['messages']} whole messages, {prefix['chars']} chars"
          + (f", {tokens} Qwen tokens" if tokens is not None else ""))
    for message in contract.messages(split, example):
        print(f"\n--- {message['role']} ---\n{message['content']}")
    constraint = contract.constraint_for(split, example)
    print(f"\n--- constraint ---\n{constraint.type if constraint else 'none'}")
    print(f"\n--- gold ---\n{contract.gold_text(split, example)}")
    return 0


def export_command(contract, fmt: str, split: str = "train", out: Path | None = None) -> int:
    """Write the fine-tuning JSONL to `out` (or stdout); report errors on stderr. Exit code."""
    from taskc.compiler.export import export

    try:
        text = export(contract, fmt, split)
    except TaskcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(text.encode("utf-8"))
    rows = text.count("\n")
    print(f"{contract.name}: {rows} {split} records ({fmt}) -> {out}", file=sys.stderr)
    return 0
