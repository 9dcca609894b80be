"""The time, loop and size budget of one render, and what each risky operation would cost."""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

from hub.templates.structure import Shapes

MAX_RANGE = 10_000  # items in one range()
MAX_LOOP_STEPS = 100_000  # loop iterations per render, all loops together
MAX_INT_BITS = 4_096  # `**` and `*` on integers: enough for money, not for 10**10**10
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


class LimitExceeded(SecurityError):
    """A template went past a size, loop or time limit."""


@dataclass(slots=True)
class Budget:
    """What one render may still spend; shared by every part of it."""

    deadline: float
    seconds: float
    steps: int = MAX_LOOP_STEPS
    shapes: Shapes | None = None  # made when a template first builds a container
    overran: bool = False  # the clock ran out (rather than a size or loop limit)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            self.overran = True
            raise LimitExceeded(f"rendering took longer than {self.seconds:g} s")


_budget: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[Budget]:
    """Start the clock for one render; hooks in the sandbox check it while the template runs."""
    spent = Budget(deadline=time.monotonic() + seconds, seconds=seconds)
    token = _budget.set(spent)
    try:
        yield spent
    finally:
        _budget.reset(token)


def shapes() -> Shapes:
    """The current render's measured values; a fresh, empty one outside a render."""
    spent = _budget.get()
    if spent is None:
        return Shapes()
    if spent.shapes is None:
        spent.shapes = Shapes()
    return spent.shapes


def tick() -> None:
    """Raise LimitExceeded once the current render is out of time (no-op while compiling)."""
    spent = _budget.get()
    if spent is not None:
        spent.tick()


def bounded_range(*args: int) -> range:
    """`range()` in templates: at most MAX_RANGE items."""
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise LimitExceeded(f"range() of {len(items)} items; at most {MAX_RANGE}")
    return items


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: each step counts, and the clock is checked."""
    spent = _budget.get()
    for item in iterable:
        if spent is not None:
            spent.steps -= 1
            if spent.steps < 0:
                raise LimitExceeded(f"loops ran more than {MAX_LOOP_STEPS} steps")
            if not spent.steps % 16:  # the clock costs more than a step
                spent.tick()
        yield item


def weigh(value: Any, limit: int) -> int:
    """Roughly how long `str(value)` is, giving up past `limit`.

    A list can hold itself many times over ([l, l] in a loop), so its text can be exponentially
    long while `len` stays small; the walk stops at the limit instead of following it.
    """
    if isinstance(value, str):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 3  # quotes and a separator
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, Namespace):
            raise SecurityError("a namespace cannot be turned into text; use its attributes")
        else:
            total += 24  # numbers (bounded by MAX_INT_BITS), None, small objects
    return total


def printf_size(fmt: str, values: Any, limit: int) -> int:
    """What `fmt % values` could build: the format, its widths, each value at its longest."""
    specs = [m for m in _PRINTF.finditer(fmt) if m.group(3) != "%"]
    if any("*" in (m.group(1) or "", m.group(2) or "") for m in specs):
        raise LimitExceeded("'*' widths are not allowed in format strings")
    widths = sum(int(m.group(1) or 0) + int(m.group(2) or 0) for m in specs)
    longest = max((weigh(v, limit) for v in values), default=0)
    return len(fmt) + widths + len(specs) * longest


def format_fields(fmt: str, limit: int) -> tuple[int, int]:
    """Count the replacement fields of a str.format string and the widths they ask for."""
    fields = widths = 0
    for _, name, spec, _ in string.Formatter().parse(fmt):
        if name is None:
            continue
        if spec and "{" in spec:
            raise LimitExceeded("nested format specifications are not allowed")
        fields += 1
        widths += sum(int(n) for n in re.findall(r"\d+", spec or ""))
    if widths > limit:
        raise LimitExceeded(f"format widths of {widths} characters; at most {limit}")
    return fields, widths


def _join_size(limit: int, value: list[Any], d: str = "", attribute: Any = None) -> int:
    items = value if attribute is None else []  # attribute lookups are bounded after the fact
    return sum(weigh(v, limit) for v in items) + len(d) * len(value)


def _sum_size(limit: int, value: list[Any], attribute: Any = None, start: Any = 0) -> int:
    if isinstance(start, int | float) or attribute is not None:
        return 0
    return len(start) + sum(len(v) for v in value if hasattr(v, "__len__"))


def _replace_size(limit: int, s: Any, old: Any, new: Any, count: int | None = None) -> int:
    text, old, new = str(s), str(old), str(new)
    hits = text.count(old) if count is None or count < 0 else min(count, text.count(old))
    return len(text) + hits * max(len(new) - len(old), 0)


def _indent_size(limit: int, s: Any, *args: Any, **kwargs: Any) -> int:
    text, width = str(s), kwargs.get("width", args[0] if args else 4)
    return len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else width)


def _wordwrap_size(limit: int, s: Any, *args: Any, **kwargs: Any) -> int:
    wrapstring = kwargs.get("wrapstring", args[2] if len(args) > 2 else None)
    # Every character could start a line; the wrap string is what multiplies.
    return len(str(s)) * (1 + len(wrapstring or "\n"))


# Filter name -> the size its result could reach, from the limit and the filter's own arguments
# (the value first); checked before the filter runs. The other filters cannot grow their input.
PROJECTED: dict[str, Callable[..., int]] = {
    "center": lambda limit, s, width=80: max(len(str(s)), width),
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "replace": _replace_size,
    "join": _join_size,
    "sum": _sum_size,
    "format": lambda limit, fmt, *args, **kw: printf_size(str(fmt), [*args, *kw.values()], limit),
    "batch": lambda limit, value, count, fill_with=None: 0 if fill_with is None else count,
    "slice": lambda limit, value, slices, fill_with=None: slices,
}

# Filters that look at a container without turning it into text; every other filter's value is
# weighed first, because filters call str() on what they get.
STRUCTURAL = frozenset(
    {
        "attr", "batch", "count", "d", "default", "dictsort", "first", "groupby", "items", "last",
        "length", "list", "map", "max", "min", "reject", "rejectattr", "reverse", "select",
        "selectattr", "slice", "sort", "sum", "unique",
    }
)  # fmt: skip
