"""Structural value helpers shared by the metrics.

Equality here is JSON equality: dict key order is irrelevant, `1 == 1.0`, but `True != 1`
and there is no string/number coercion (`"1" != 1`); lists compare element-wise.
"""

from __future__ import annotations

import json
from typing import Any


def struct_eq(a: Any, b: Any) -> bool:
    """JSON-structural equality (see module docstring)."""
    # Python's == already ignores key order and equates 1 with 1.0; it differs from JSON
    # equality only by equating booleans with numbers, which _no_bool_mixup rules out.
    return a == b and _no_bool_mixup(a, b)


def _no_bool_mixup(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb
    if ta is dict:
        for k, v in a.items():
            tv, w = type(v), b[k]
            tw = type(w)
            if tv is bool or tw is bool:
                if tv is not tw:
                    return False
            elif (tv is dict or tv is list or tv is tuple) and not _no_bool_mixup(v, w):
                return False
        return True
    if ta is list or ta is tuple:
        return all(_no_bool_mixup(x, y) for x, y in zip(a, b))
    return True


def canonical(value: Any) -> Any:
    """A copy of a JSON-like value with integral floats turned into ints (bools kept)."""
    t = type(value)
    if t is float:
        return int(value) if value.is_integer() else value
    if t is dict:
        return {str(k): canonical(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [canonical(v) for v in value]
    return value


def comparable_json(value: Any) -> str:
    """JSON text for comparing answers: sorted keys, compact, integral floats as ints (so 1.0 == 1);
    not the hashing form, which is `taskc.common.encoding.canonical_json`."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
