"""Text normalizers for the string metrics (exact_match, f1, rouge_l).

`strip` trims surrounding whitespace, `casefold` folds case, `squad` is the SQuAD answer
normalization (lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace).
The `normalize` option is one name or a list of names, applied in order.
"""

from __future__ import annotations

import re
import string
from typing import Any, Callable

NORMALIZERS = ("strip", "casefold", "squad")

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 answer normalization."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


_FUNCS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "casefold": str.casefold,
    "squad": squad_normalize,
}


def normalizer_names(value: Any) -> tuple[str, ...]:
    """The option value as a tuple of names (no validation)."""
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def check_normalize(metric: str, value: Any) -> list[tuple[str, str]]:
    """Problems with a `normalize` option value, as (key, message) pairs."""
    expected = ", ".join(NORMALIZERS)
    if not isinstance(value, (str, list, tuple)) or not all(isinstance(v, str) for v in (
            [value] if isinstance(value, str) else value)):
        return [("normalize", f"option 'normalize' of metric {metric} must be a name or a list "
                              f"of names from: {expected}")]
    bad = [v for v in normalizer_names(value) if v not in _FUNCS]
    return [("normalize", f"option 'normalize' of metric {metric}: unknown normalizer '{b}' "
                          f"(expected one of: {expected})") for b in bad]


def make_normalizer(value: Any) -> Callable[[str], str]:
    """A function applying the named normalizers in order."""
    funcs = tuple(_FUNCS[name] for name in normalizer_names(value))

    def apply(text: str) -> str:
        for f in funcs:
            text = f(text)
        return text

    return apply
