"""The Jinja2 environment staff templates run in: immutable sandbox, strict, no loader, bounded."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2 import Environment, Undefined, nodes, pass_context, pass_environment
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace

from hub.templates.limits import (
    MAX_INT_BITS,
    PROJECTED,
    STRUCTURAL,
    LimitExceeded,
    bounded_range,
    counted,
    format_fields,
    printf_size,
    shapes,
    tick,
    weigh,
)
from hub.templates.missing import PlainUndefined

# Methods callable on builtin values. Everything else (translate, expandtabs, ljust, append...)
# is refused: the non-mutating amplifiers would bypass the size limits, and filters cover the
# useful ones with checks of their own. str.format is wrapped, see `wrap_str_format`.
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower",
        "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rindex", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
        "upper",
    }
)  # fmt: skip
_METHODS: tuple[tuple[Any, frozenset[str]], ...] = (
    (str, _STR_METHODS),
    (Mapping, frozenset({"get", "items", "keys", "values"})),
    ((list, tuple), frozenset({"count", "index"})),
    ((bytes, int, float, set, frozenset), frozenset()),
)


@pass_environment
def _linear_sum(
    environment: Environment, iterable: Iterable[Any], attribute: Any = None, start: Any = 0
) -> Any:
    """Jinja's `sum`, but lists and tuples are joined once: `sum()` copies the total so far at
    every item, so 100,000 one-item lists would take minutes inside one C call."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    if isinstance(start, list | tuple):
        return type(start)(itertools.chain(start, *iterable))
    return sum(iterable, start)


_COUNTED = "counted_loop_steps"  # an internal filter; harmless if a template calls it


class _CodeGenerator(CodeGenerator):
    """Routes `a ~ b` and every list, tuple and dict a template writes through size checks:
    doubling a string or a list in a loop must stop early."""

    def _bounded_literal(self, visit: Callable[..., None], node: nodes.Expr, frame: Frame) -> None:
        if getattr(node, "ctx", "load") != "load":  # `{% for a, b in ... %}`: a target
            visit(self, node, frame)
            return
        self.write("environment.bounded(")
        visit(self, node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._bounded_literal(CodeGenerator.visit_List, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        self._bounded_literal(CodeGenerator.visit_Tuple, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._bounded_literal(CodeGenerator.visit_Dict, node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # CodeGenerator.visit_Concat, with each operand weighed before str() and the result after.
        join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        self.write(f"environment.bounded({join}((")
        for arg in node.nodes:
            self.write("environment.printable(")
            self.visit(arg, frame)
            self.write("), ")
        self.write(")))")


class Sandbox(ImmutableSandboxedEnvironment):
    """One per Renderer and escaping mode; no loader, so a template cannot read anything."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, *, autoescape: bool, max_chars: int) -> None:
        super().__init__(
            autoescape=autoescape, undefined=PlainUndefined, finalize=self.printable, cache_size=0
        )
        self.max_chars = max_chars
        # No lipsum (a CPU toy); the other defaults are harmless helpers.
        self.globals = {
            "range": bounded_range,
            "dict": dict,
            "namespace": Namespace,
            "cycler": Cycler,
            "joiner": Joiner,
        }
        for name in ("pprint", "random", "urlize"):  # reprs, nondeterminism, unneeded markup
            del self.filters[name]
        self.filters["sum"] = _linear_sum
        self.filters = {name: self._guard(name, f) for name, f in self.filters.items()}
        self.filters[_COUNTED] = counted

    def parse(
        self, source: str, name: str | None = None, filename: str | None = None
    ) -> nodes.Template:
        """Parse, then route every loop's iterable through `counted`: a loop over a list has no
        other hook where a runaway template could be stopped."""
        tree = super().parse(source, name, filename)
        for loop in list(tree.find_all(nodes.For)):
            loop.iter = nodes.Filter(loop.iter, _COUNTED, [], [], None, None, lineno=loop.lineno)
        return tree

    def printable(self, value: Any) -> Any:
        """Every `{{ }}` and `~` operand passes here before it becomes text."""
        if isinstance(value, str | int | float | Undefined | None):  # Undefined raises when printed
            return value
        if callable(value):
            raise SecurityError("cannot print a function or a class; call it, or pick a value")
        self._fits(weigh(value, self.max_chars))
        return value

    def bounded(self, value: Any) -> Any:
        """Refuse a value longer than a whole part may be, or a container whose expanded size
        or depth is past the structure limits: every value a template makes passes here."""
        if isinstance(value, str | bytes | list | tuple | dict) and len(value) > self.max_chars:
            raise LimitExceeded(f"a value of {len(value)} items; at most {self.max_chars}")
        shapes().check(value)
        return value

    def _fits(self, projected: int) -> None:
        if projected > self.max_chars:
            raise LimitExceeded(f"would build {projected} characters; at most {self.max_chars}")

    def concat(self, parts: Iterable[str]) -> str:
        """Joins the buffers of macros, `{% set %}` blocks and `{% filter %}` blocks."""
        parts = parts if isinstance(parts, list) else list(parts)
        self._fits(sum(map(len, parts)))
        return "".join(parts)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `contact.name` on the plain dicts Hub passes in is a key lookup, as safe as
        # `contact["name"]`; answering it first skips the failing getattr Jinja tries before
        # the key (about a tenth of a personalised mail's render time).
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value):
            for kinds, allowed in _METHODS:
                if isinstance(obj, kinds):
                    return attr in allowed
        return True

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        tick()
        # The arguments together: a macro keeps them as `varargs` and `kwargs`, new containers
        # made outside any other hook.
        self.bounded(args)
        self.bounded(kwargs)
        return self.bounded(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
                raise LimitExceeded(f"a number over {MAX_INT_BITS} bits")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise LimitExceeded(f"a number over {MAX_INT_BITS} bits")
            elif isinstance(right, int) and hasattr(left, "__len__"):
                self._fits(len(left) * right)
            elif isinstance(left, int) and hasattr(right, "__len__"):
                self._fits(len(right) * left)
        elif operator == "+" and hasattr(left, "__len__") and hasattr(right, "__len__"):
            self._fits(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            values = right.values() if isinstance(right, Mapping) else right
            values = values if isinstance(values, tuple) else [values]
            self._fits(printf_size(left, values, self.max_chars))
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, list | tuple):  # measured from the operands, not walked
            if operator == "+":
                shapes().concatenated(result, [(left, 1), (right, 1)])
            elif operator == "*":
                seq, times = (left, right) if isinstance(right, int) else (right, left)
                shapes().concatenated(result, [(seq, max(times, 0))])
        return self.bounded(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        fmt: str = value.__self__
        fields, widths = format_fields(fmt, self.max_chars)

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            tick()
            values = [*args, *kwargs.values()]
            longest = max((weigh(v, self.max_chars) for v in values), default=0)
            self._fits(len(fmt) + widths + fields * longest)
            return formatter(*args, **kwargs)

        return bounded_format

    def _guard(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a filter: check the clock, refuse inputs that would amplify, bound the result.

        The wrapper takes the context, which also stops Jinja running filters at compile time
        (constant folding): they run in the render, with its budget, and their result is
        finalized before it is escaped.
        """
        needs = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
        projected = PROJECTED.get(name)
        structural = name in STRUCTURAL
        materialise = name in ("join", "sum")  # measured first, so not left a spent iterator

        @functools.wraps(func, assigned=("__name__", "__qualname__", "__doc__"), updated=())
        def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
            tick()
            if materialise and not isinstance(value, list | tuple):
                value = list(value)
            if not structural:
                self.printable(value)
            if projected is not None:
                self._fits(projected(self.max_chars, value, *args, **kwargs))
            if needs == "context":
                return self.bounded(func(context, value, *args, **kwargs))
            if needs == "eval_context":
                return self.bounded(func(context.eval_ctx, value, *args, **kwargs))
            if needs == "environment":
                return self.bounded(func(context.environment, value, *args, **kwargs))
            return self.bounded(func(value, *args, **kwargs))

        return pass_context(guarded)
