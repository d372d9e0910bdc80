"""The Jinja sandbox prompts render in, with bounds on what one render may build and how long it
may run.

Jinja's sandbox already refuses unsafe attributes and ranges over 100,000 items, but not string
or list repetition (`'a' * 10**9`), huge powers, wide format fields, or a loop that never ends.
Here every way a template can grow a value is measured before the value is built: `*`, `**`,
`+` and `%`, the `~` operator, `str.format` widths, the string methods and filters that take a
width or a count, and the output itself (the template's text and every macro or `{% set %}`
block). Each loop step, call, attribute lookup and output piece checks the render's deadline.
A render stopped by a bound raises TemplateLimit.
"""

from __future__ import annotations

import re
import threading
import time
from copy import copy
from string import Formatter
from typing import Any, Iterable

#: The most characters one render may produce, or any string or list it builds (about a
#: million tokens: more than any model's context).
MAX_RENDER_CHARS = 4_000_000
#: The most time one render may take; prompts render in microseconds.
MAX_RENDER_SECONDS = 1.0
#: The largest integer a template may compute, in bits (Python prints at most 4,300 digits).
MAX_INT_BITS = 16_384

_state = threading.local()
_WIDTH = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateLimit(Exception):
    """A render went past one of the bounds above (the message says which)."""


def start_deadline() -> float | None:
    """Start the clock of one render on this thread; returns the previous deadline to restore."""
    previous = getattr(_state, "deadline", None)
    _state.deadline = time.monotonic() + MAX_RENDER_SECONDS
    return previous


def restore_deadline(previous: float | None) -> None:
    """Stop the clock started by `start_deadline`."""
    _state.deadline = previous


def tick() -> None:
    """Raise TemplateLimit once the current render's deadline has passed."""
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimit(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")


def _too_long(size: int, what: str) -> None:
    if size > MAX_RENDER_CHARS:
        raise TemplateLimit(f"{what} would be {size:,} long, more than the {MAX_RENDER_CHARS:,} a render may build")


def bounded_join(pieces: Iterable[Any]) -> str:
    """`"".join(map(str, pieces))`, stopping once the text passes MAX_RENDER_CHARS."""
    out: list[str] = []
    total = 0
    for piece in pieces:
        text = piece if isinstance(piece, str) else str(piece)
        total += len(text)
        _too_long(total, "the rendered text")
        out.append(text)
        tick()
    return "".join(out)


def bounded_iter(iterable: Iterable[Any]):
    """The items of a `{% for %}` loop, checking the deadline at each step."""
    for item in iterable:
        tick()
        yield item


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `**`, `+` and `%` whose result would pass the bounds, before computing it."""
    sized = (str, bytes, list, tuple)
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(count, int):
                _too_long(len(seq) * max(count, 0), f"'*' repeating a {type(seq).__name__}")
        if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"'*' would make an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1 and right * left.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"'**' would make an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "+":
        if isinstance(left, sized) and isinstance(right, sized):
            _too_long(len(left) + len(right), f"'+' joining a {type(left).__name__}")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right)


def check_percent_format(text: str, args: Any) -> None:
    """Refuse a `%` format whose field widths or precisions pass MAX_RENDER_CHARS."""
    values = args.values() if isinstance(args, dict) else (args if isinstance(args, tuple) else (args,))
    for match in _WIDTH.finditer(text):
        for number in match.groups():
            if number == "*":
                _check_ints(values, "a '*' width")
            elif number is not None:
                _too_long(int(number), "a '%' format field")


def check_format_spec(text: str, args: tuple, kwargs: dict) -> None:
    """Refuse a `str.format` whose field widths or precisions pass MAX_RENDER_CHARS."""
    try:
        fields = list(Formatter().parse(text))
    except ValueError:
        return  # str.format raises its own error
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            _check_ints((*args, *kwargs.values()), "a nested format width")
        for number in re.findall(r"\d+", spec):
            _too_long(int(number), "a format field")


def check_call(obj: Any, args: tuple, kwargs: dict) -> tuple:
    """Refuse string methods that would pass the bounds (width, count, join); returns the
    arguments to call with (an iterable passed to `join` is read once, here)."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return args
    name = getattr(obj, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill") and args and _is_int(args[0]):
        _too_long(args[0], f"str.{name}()")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if _is_int(size):
            _too_long(owner.count("\t" if isinstance(owner, str) else b"\t") * max(size, 0) + len(owner), "str.expandtabs()")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and args:
        items = list(args[0])
        _too_long(_joined_size(owner, items), "str.join()")
        return (items, *args[1:])
    return args


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)) or len(new) <= len(old):
        return
    hits = len(text) + 1 if not old else text.count(old)
    if _is_int(count) and count >= 0:
        hits = min(hits, count)
    _too_long(len(text) + hits * (len(new) - len(old)), "replace()")


def _joined_size(separator: Any, items: list) -> int:
    return sum(len(x) if isinstance(x, (str, bytes)) else len(str(x)) for x in items) + len(separator) * max(len(items) - 1, 0)


def _check_ints(values: Iterable[Any], what: str) -> None:
    for value in values:
        if _is_int(value):
            _too_long(value, what)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Jinja's filters with those that take a width, a count or a separator measured first."""
    from jinja2.utils import pass_eval_context

    original = dict(filters)

    def center(value, width=80):
        if _is_int(width):
            _too_long(width, "center()")
        return original["center"](value, width)

    def indent(value, width=4, first=False, blank=False):
        text = str(value)
        prefix = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        _too_long(len(text) + (text.count("\n") + 1) * max(prefix, 0), "indent()")
        return original["indent"](value, width, first, blank)

    def format_(value, *args, **kwargs):
        check_percent_format(str(value), kwargs or args)
        return original["format"](value, *args, **kwargs)

    @pass_eval_context
    def join(eval_ctx, value, d="", attribute=None):
        items = list(value)
        if attribute is None:
            _too_long(_joined_size(str(d), items), "join()")
        return original["join"](eval_ctx, items, d, attribute)

    @pass_eval_context
    def replace(eval_ctx, value, old, new, count=None):
        _check_replace(str(value), str(old), str(new), -1 if count is None else count)
        return original["replace"](eval_ctx, value, old, new, count)

    def batch(value, linecount, fill_with=None):
        if _is_int(linecount):
            _too_long(linecount, "batch()")
        return original["batch"](value, linecount, fill_with)

    @pass_eval_context
    def slice_(eval_ctx, value, slices, fill_with=None):
        if _is_int(slices):
            _too_long(slices, "slice()")
        return original["slice"](eval_ctx, value, slices, fill_with)

    @pass_eval_context
    def tojson(eval_ctx, value, indent=None):
        if _is_int(indent) and indent > 64:
            raise TemplateLimit("tojson() indents at most 64 spaces")
        return original["tojson"](eval_ctx, value, indent)

    bounded = {"center": center, "indent": indent, "format": format_, "join": join, "replace": replace,
               "batch": batch, "slice": slice_, "tojson": tojson}
    return {**filters, **{k: v for k, v in bounded.items() if k in filters}}


def bounded_environment():
    """A new ImmutableSandboxedEnvironment (strict undefined, no autoescape) with the bounds above."""
    from jinja2 import StrictUndefined, nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generator(CodeGenerator):
        def visit_Concat(self, node, frame):  # `~`: measured as it joins
            self.write("environment.bounded_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

        def visit_For(self, node, frame):  # each step checks the deadline
            node = copy(node)
            node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None)
            super().visit_For(node, frame)

    class Bounded(ImmutableSandboxedEnvironment):
        code_generator_class = Generator
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def __init__(self):
            super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
            self.globals.pop("lipsum", None)  # lipsum(n=10**9) builds text without bound
            self.filters = _bounded_filters(self.filters)

        bounded_iter = staticmethod(bounded_iter)
        bounded_join = staticmethod(bounded_join)

        def concat(self, pieces):  # the output, and every macro / {% set %} block
            return bounded_join(pieces)

        def call_binop(self, context, operator, left, right):
            tick()
            check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
            tick()
            args = check_call(__obj, args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def getattr(self, obj, attribute):
            tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj, argument):
            tick()
            return super().getitem(obj, argument)

        def wrap_str_format(self, value):
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None
            text, is_map = value.__self__, value.__name__ == "format_map"

            def checked(*args, **kwargs):
                mapping = args[0] if is_map and args and isinstance(args[0], dict) else kwargs
                check_format_spec(text, () if is_map else args, mapping)
                return wrapped(*args, **kwargs)

            return checked

    return Bounded()
