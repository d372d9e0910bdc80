"""Result fingerprints: the comparison rule of the SQL metrics on streamed rows.

The rule (`results_match`, on rows held in memory): values normalized as `normalize_rows` does
(integral floats as ints, other floats at 10 significant digits), then equal row sequences when
the gold query orders, else equal row multisets, under Python's == (so 2.0 equals 2, '1' does
not equal 1, NULL only equals NULL, column order matters).

`ResultDigest` decides the same without keeping rows: each row becomes an injective text (repr
of its canonical values), folded either into one running hash of the sequence (blake2b-256) or
into a multiset hash, the exact integer sum of a keyed 128-bit blake2b of each row. The key is
random per process and never leaves it, so a query cannot aim at a collision, and duplicates
count (two copies of a row add its hash twice; nothing cancels as in an XOR of row hashes).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter

# Fingerprints never leave the process that made them; a key the SQL cannot know makes the
# additive multiset hash collision-resistant (a sum of PRF outputs).
_ROW_KEY = os.urandom(32)
_ROW_HASH = hashlib.blake2b(key=_ROW_KEY, digest_size=16)


def _normalize_value(v: object) -> object:
    if type(v) is float:
        if v.is_integer():
            return int(v)
        return float("%.10g" % v)
    return v


def normalize_rows(rows: list[tuple]) -> tuple[tuple, ...]:
    """Rows with integral floats as ints and other floats at 10 significant digits."""
    return tuple(tuple(map(_normalize_value, r)) if float in map(type, r) else r for r in rows)


def results_match(pred: tuple[tuple, ...], gold: tuple[tuple, ...], ordered: bool) -> bool:
    """The comparison rule on rows held in memory (normalized): equal row sequences when
    `ordered`, else equal row multisets. Fingerprints decide exactly as this does."""
    if len(pred) != len(gold):
        return False
    if ordered:
        return pred == gold
    return pred == gold or Counter(pred) == Counter(gold)


def _canonical_value(v: object) -> object:
    # Normalized as in normalize_rows, then a float equal to an integer becomes that int:
    # Python's == (the rule above) equates 2.0 and 2, and repr must not tell them apart.
    v = _normalize_value(v)
    return int(v) if type(v) is float and v.is_integer() else v


def _row_text(row: tuple) -> str:
    """An injective text of a row under the comparison rule: repr of its canonical values
    (None, int, float, str, bytes have unambiguous literals, and repr never holds a newline)."""
    if float in map(type, row):
        row = tuple(map(_canonical_value, row))
    return repr(row)


class ResultDigest:
    """Fingerprint of a row stream: the row count plus either a hash of the row sequence
    (`ordered`) or a multiset hash (sum of keyed 128-bit row hashes, exact integer sum)."""

    __slots__ = ("ordered", "count", "_seq", "_sum")

    def __init__(self, ordered: bool):
        self.ordered = ordered
        self.count = 0
        self._seq = hashlib.blake2b(digest_size=32) if ordered else None
        self._sum = 0

    def add(self, rows: list[tuple]) -> int:
        """Fold `rows` in; returns the size of their text (to size the next chunk)."""
        texts = list(map(_row_text, rows))
        self.count += len(texts)
        if self._seq is not None:
            blob = ("\n".join(texts) + "\n").encode("utf-8", "surrogatepass")
            self._seq.update(blob)
            return len(blob)
        copy, from_bytes, total, size = _ROW_HASH.copy, int.from_bytes, self._sum, 0
        for text in texts:
            data = text.encode("utf-8", "surrogatepass")
            size += len(data)
            h = copy()
            h.update(data)
            total += from_bytes(h.digest(), "little")
        self._sum = total
        return size

    def value(self) -> object:
        """The digest (compare only with digests of the same mode made in this process)."""
        return self._seq.digest() if self._seq is not None else self._sum


def digest_rows(rows: list[tuple], ordered: bool) -> tuple[int, object]:
    """(count, digest) of rows held in memory, as `Sandbox.run` would fingerprint them."""
    d = ResultDigest(ordered)
    d.add(list(rows))
    return d.count, d.value()
