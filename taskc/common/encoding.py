"""JSON encodings and the hashes built on them, one definition each.

- `compact_json`: keys in the order given, no spaces, UTF-8 kept: what a constrained decoder
  emits and what the contract's gold answers are serialized as.
- `canonical_json`: `compact_json` with sorted keys: the text hashed for contract ids, cache keys
  and messages hashes (formatting and key order never change a hash).
- `dumps` / `loads`: fast compact bytes (orjson, with the standard library for what orjson
  refuses, such as integers beyond 64 bits), for request bodies and samples.jsonl lines.
"""

from __future__ import annotations

import hashlib
import json as _json
from typing import Any, Iterable, Mapping

try:  # orjson is a dependency; the fallback keeps an environment without it working.
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def compact_json(value: Any) -> str:
    """JSON text without spaces, keys in the order given, UTF-8 kept."""
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: the form hashed for ids and cache keys."""
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def sha256_hex(text: str) -> str:
    """The sha256 hex digest of `text` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def messages_hash(messages: Iterable[Mapping[str, Any]]) -> str:
    """The hash recorded with every sample: sha256 of the canonical JSON of the chat messages."""
    return sha256_hex(canonical_json([dict(m) for m in messages]))


def _stdlib_dumps(value: Any) -> bytes:
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


if _orjson is not None:

    def dumps(value: Any) -> bytes:
        """Compact UTF-8 JSON bytes (orjson; the standard library for what orjson refuses)."""
        try:
            return _orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return _stdlib_dumps(value)

    loads = _orjson.loads
else:  # pragma: no cover - depends on the environment
    dumps = _stdlib_dumps
    loads = _json.loads
