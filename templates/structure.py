"""How big a value a template holds really is: its size with every shared part counted again.

A template can build `[x, x]` from one list x, again and again: forty steps make a value of
forty small lists whose *expanded* size is 2**40. Every C-level operation on it — `==`, `in`,
`hash`, `repr`, `json.dumps`, `sort` — walks the expanded tree without returning to the
interpreter, so no clock check can stop it and the process holds the GIL for hours. Bounding
the expanded size (and depth) of every container a template makes bounds the time of each such
operation; the render's clock then bounds how many of them run.

The measure is memoised per render by object identity, so measuring a new container costs its
own length, never the expanded size: `[x, x]` looks up x's size instead of walking it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2.exceptions import SecurityError

# Units: one per container, number or other object, and one per 8 characters of a string
# (comparing, hashing and copying text runs many characters per step). The slowest single
# operation on a value this size, a sort comparing elements deep, takes tens of milliseconds:
# that is how long one C call may hold the interpreter. Templates get their data as JSON
# of at most 16 KB, so no message needs more.
MAX_SIZE = 100_000
_CHARS_PER_UNIT = 8
MAX_DEPTH = 64  # lists in lists; JSON input is limited to less
# Measured values are kept alive (an id is only a key while its object lives); past this many
# items held, the memory is dropped and later values are measured again.
KEEP_ITEMS = 1_000_000  # 8 MB of references at most

CONTAINERS = (list, tuple, dict, set, frozenset)


class StructureTooLarge(SecurityError):
    """A template built a value whose expanded size or nesting is past the limit."""


@dataclass(slots=True)
class Shapes:
    """Sizes measured during one render, by id; the values are kept so no id is reused."""

    known: dict[int, tuple[Any, int, int]] = field(default_factory=dict)
    kept: int = 0  # items of the values in `known`

    def check(self, value: Any) -> None:
        """Refuse `value` when it is a container past MAX_SIZE or MAX_DEPTH.

        Raises:
            StructureTooLarge: naming the limit.
        """
        if isinstance(value, CONTAINERS) and id(value) not in self.known:
            self._forget_if_full()
            self._measure(value)

    def concatenated(self, result: Any, parts: list[tuple[Any, int]]) -> None:
        """Record `result`, made of each part's items repeated so many times (`a + b`, `a * n`),
        from the parts' sizes: building a list in a loop must not walk it at every step.

        Raises:
            StructureTooLarge: as `check`.
        """
        if not isinstance(result, list | tuple) or id(result) in self.known:
            return
        self._forget_if_full()
        size, depth = 1, 1
        for part, times in parts:
            self.check(part)
            _, part_size, part_depth = self.known[id(part)]
            size += (part_size - 1) * times
            depth = max(depth, part_depth if times else 1)
        self._record(result, size, depth)

    def _record(self, value: Any, size: int, depth: int) -> None:
        if size > MAX_SIZE:
            raise StructureTooLarge(
                f"a list, tuple or dict of {size:,} units, counting each repeat of a"
                f" shared part (an item, or 8 characters of text); at most {MAX_SIZE:,}"
            )
        if depth > MAX_DEPTH:
            raise StructureTooLarge(f"values nested {depth} deep; at most {MAX_DEPTH}")
        self.known[id(value)] = (value, size, depth)
        self.kept += len(value)

    def _forget_if_full(self) -> None:
        # Only between measurements: a walk needs the sizes of the parts it has just measured.
        if self.kept > KEEP_ITEMS:
            self.known.clear()
            self.kept = 0

    def _measure(self, root: Any) -> None:
        # Post-order over the distinct containers not measured yet, without recursion: a
        # deeply nested value must not exhaust the interpreter's stack while it is refused.
        known = self.known
        stack: list[tuple[Any, bool, int]] = [(root, False, 1)]
        while stack:
            value, children_done, level = stack.pop()
            if id(value) in known:
                continue
            items = _items(value)
            if not children_done:
                if level > MAX_DEPTH:
                    raise StructureTooLarge(f"values nested more than {MAX_DEPTH} deep")
                stack.append((value, True, level))
                stack.extend(
                    (item, False, level + 1)
                    for item in items
                    if isinstance(item, CONTAINERS) and id(item) not in known
                )
                continue
            size, depth = 1, 1
            for item in items:
                if isinstance(item, str | bytes):
                    size += 1 + len(item) // _CHARS_PER_UNIT
                elif isinstance(item, CONTAINERS):
                    _, item_size, item_depth = known[id(item)]
                    size += item_size
                    depth = max(depth, item_depth + 1)
                else:
                    size += 1
            self._record(value, size, depth)


def _items(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        return [*value.keys(), *value.values()]
    items: Iterable[Any] = value  # list, tuple, set: read twice; the sandbox changes none
    return items
