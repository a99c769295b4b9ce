"""Templates in a sandboxed Jinja2 environment, rendered to JSON-typed values.

A template that is exactly one `{{ expression }}` evaluates to the expression's own value
(a list stays a list, a number a number); any other template renders to a string. A
template that reads a value the meeting lacks renders to None, so the field is omitted.

What a template may cost is bounded (`TemplateBudgetExceeded` when it would cost more):
the environment is immutable (no `.update()`, `.append()` on the context), `**` and `*`
refuse results beyond `MAX_INT_BITS` bits or `MAX_LENGTH` items, width-like arguments of
filters and methods beyond `MAX_LENGTH` are refused, every `{% for %}` draws on a budget of
`MAX_ITERATIONS` per render, a render may not produce more than `MAX_LENGTH` characters
nor take more than `MAX_SECONDS`. Nothing is folded at compile time that could be costly,
so saving a mapping never runs a template's arithmetic.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .context import Shape, steps_problem

_SINGLE_EXPRESSION = re.compile(r"^\{\{-?(.*?)-?\}\}$", re.DOTALL)

MAX_INT_BITS = 4096  # a 1,233-digit number: more than any field needs
MAX_LENGTH = 100_000  # characters of output, items of a repeated sequence, widths
MAX_ITERATIONS = 10_000  # loop turns per render, nested loops counted together
MAX_SECONDS = 2.0  # per render
# a format spec's width or precision: `%9999999s`, `{:9999999}`
_HUGE_SPEC = re.compile(r"[%:][^%:{}]*?\d{6,}")
_LOOP_GUARD = "__meetsync_bounded__"


class TemplateBudgetExceeded(SecurityError):
    """A template would cost more than a mapping template may: says what and how to fix."""


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0
    notes: list[str] = field(default_factory=list)

    def spend(self, turns: int = 0) -> None:
        self.iterations += turns
        if self.iterations > MAX_ITERATIONS:
            raise TemplateBudgetExceeded(
                f"loops ran more than {MAX_ITERATIONS} times in one render; "
                "loop over less (e.g. a slice: items[:50])"
            )
        if time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded(
                f"rendering took more than {MAX_SECONDS:g}s; simplify the template"
            )


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


def _spend(turns: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(turns)


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` iterates through this: each turn is paid for."""
    for value in iterable:
        _spend(1)
        yield value


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_args(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_LENGTH:
            raise TemplateBudgetExceeded(
                f"{name}() was given {arg}, more than {MAX_LENGTH}; use a smaller number"
            )
        if isinstance(arg, str) and _HUGE_SPEC.search(arg):
            raise TemplateBudgetExceeded(f"{name}() was given a format width over {MAX_LENGTH}")


def _check_result(name: str, value: Any) -> Any:
    size = _size(value)
    if size is not None and size > MAX_LENGTH:
        raise TemplateBudgetExceeded(f"{name} made {size} items, more than {MAX_LENGTH}")
    return value


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # the first argument is the filtered value (or the context/environment)
        _check_args(f"filter {name}", args[1:], kwargs)
        if isinstance(args[0], str) and _HUGE_SPEC.search(args[0]) and name == "format":
            raise TemplateBudgetExceeded(f"filter format: a width over {MAX_LENGTH}")
        _spend()
        return _check_result(f"filter {name}", fn(*args, **kwargs))

    return bounded


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, immutable, with a price on arithmetic, calls, loops and output."""

    intercepted_binops = frozenset({"**", "*", "//", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, fn) for name, fn in self.filters.items()}
        self.globals[_LOOP_GUARD] = _bounded_iter

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        _spend()
        if operator_ == "**" and _too_big_power(left, right):
            raise TemplateBudgetExceeded(
                f"{left} ** {right} is a number of more than {MAX_INT_BITS} bits; "
                "use smaller numbers"
            )
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and _is_int(times) and size * times > MAX_LENGTH:
                    raise TemplateBudgetExceeded(
                        f"repeating {size} items {times} times makes more than {MAX_LENGTH}"
                    )
            if _is_int(left) and _is_int(right) and _bits(left) + _bits(right) > MAX_INT_BITS:
                raise TemplateBudgetExceeded(
                    f"a product of more than {MAX_INT_BITS} bits; use smaller numbers"
                )
        if operator_ == "%" and isinstance(left, str) and _HUGE_SPEC.search(left):
            raise TemplateBudgetExceeded(f"a % format with a width over {MAX_LENGTH}")
        result = super().call_binop(context, operator_, left, right)
        return _check_result(f"'{operator_}'", result)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _spend()
        name = getattr(__obj, "__name__", "call")
        if __obj is not _bounded_iter:
            _check_args(name, args, kwargs)
            owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
            if isinstance(owner, str) and _HUGE_SPEC.search(owner) and name.startswith("format"):
                raise TemplateBudgetExceeded(f"{name}() with a width over {MAX_LENGTH}")
            if name == "replace" and isinstance(owner, str) and len(args) >= 2:
                new = args[1]
                grows = owner.count(args[0]) * len(new) if isinstance(new, str) else 0
                if len(owner) + grows > MAX_LENGTH:
                    raise TemplateBudgetExceeded(f"replace() would make more than {MAX_LENGTH}")
        return _check_result(f"{name}()", super().call(__context, __obj, *args, **kwargs))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bits(value: int) -> int:
    return abs(value).bit_length()


def _too_big_power(base: Any, exponent: Any) -> bool:
    if not (_is_int(base) and _is_int(exponent)) or exponent <= 0 or abs(base) <= 1:
        return False
    return bool(exponent * math.log2(abs(base)) > MAX_INT_BITS)


@cache
def environment() -> BoundedEnvironment:
    """The one sandboxed environment every mapping template runs in."""
    return BoundedEnvironment(undefined=StrictUndefined, autoescape=False)


def _bound_loops(ast: nodes.Template) -> nodes.Template:
    """Every `{% for %}` iterates through the loop guard, which charges each turn."""
    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.Name(_LOOP_GUARD, "load", lineno=loop.lineno),
            [loop.iter],
            [],
            None,
            None,
            lineno=loop.lineno,
        )
    return ast


@dataclass(frozen=True)
class Template:
    """A compiled mapping template."""

    source: str
    render_fn: Callable[[dict[str, Any]], Any]
    ast: nodes.Template
    expression: bool = False

    def render(self, context: dict[str, Any]) -> Any:
        """The template's value in a context; None when it reads a missing value.

        TemplateBudgetExceeded when it costs more than a template may (see the module)."""
        token = _BUDGET.set(_Budget(deadline=time.monotonic() + MAX_SECONDS))
        try:
            value = self.render_fn(context)
        except UndefinedError:
            return None
        finally:
            _BUDGET.reset(token)
        if isinstance(value, Undefined):
            return None
        _check_result("the template", value)
        return value.strip() if isinstance(value, str) else value


def is_template(text: str) -> bool:
    """True when a string holds Jinja2 syntax rather than a plain constant."""
    return "{{" in text or "{%" in text or "{#" in text


@cache
def compile_template(source: str) -> Template:
    """Compile a template; raises jinja2.TemplateSyntaxError if it does not parse."""
    env = environment()
    ast = env.parse(source)
    match = _SINGLE_EXPRESSION.match(source.strip())
    if match and _is_single_expression(ast):
        expression = env.compile_expression(match.group(1).strip(), undefined_to_none=False)
        return Template(source, lambda ctx: expression(**ctx), ast, expression=True)
    code = env.compile(_bound_loops(env.parse(source)))
    compiled = env.template_class.from_code(env, code, env.make_globals(None))
    return Template(source, compiled.render, ast)


def _is_single_expression(ast: nodes.Template) -> bool:
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return False
    parts = ast.body[0].nodes
    return len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData)


def template_problems(source: str, shape: dict[str, Shape]) -> list[str]:
    """Why a template cannot work in a context of this shape; empty when it can."""
    try:
        template = compile_template(source)
    except TemplateSyntaxError as exc:
        return [f"template does not compile: {exc.message} (template line {exc.lineno})"]
    problems: list[str] = [*_mutations(template.ast), *_trial(template)]
    for steps in _variable_paths(template.ast):
        problem = steps_problem(steps, shape)
        if problem and problem not in problems:
            problems.append(problem)
    return problems


# methods that change a list, dict or set in place (the immutable sandbox refuses them)
_MUTATORS = frozenset(
    {"update", "append", "extend", "insert", "pop", "popitem", "remove", "clear",
     "setdefault", "add", "discard", "sort", "reverse", "difference_update",
     "intersection_update", "symmetric_difference_update", "__setitem__", "__delitem__"}
)  # fmt: skip


def _mutations(ast: nodes.Template) -> list[str]:
    """Calls that would change the render context: refused when saved, not at plan time."""
    found = sorted(
        {
            call.node.attr
            for call in ast.find_all(nodes.Call)
            if isinstance(call.node, nodes.Getattr) and call.node.attr in _MUTATORS
        }
    )
    return [
        f"templates cannot change the meeting's data (.{name}()); "
        "compute a new value instead, e.g. with a filter or `~`"
        for name in found
    ]


def _trial(template: Template) -> list[str]:
    """A render with no data: what the template costs regardless of the meeting."""
    try:
        template.render({})
    except TemplateBudgetExceeded as exc:
        return [f"template costs too much: {exc}"]
    except Exception:
        return []
    return []


def _variable_paths(ast: nodes.Template) -> list[list[str | int]]:
    """Attribute chains on context variables, e.g. meeting.title → ["meeting", "title"]."""
    local = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    chains: list[list[str | int]] = []
    inner: set[int] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        # Only the outermost node of a chain is walked; its inner links are part of it.
        for child in node.iter_child_nodes():
            inner.add(id(child))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in inner:
            continue
        steps = _chain(node)
        if steps and isinstance(steps[0], str) and steps[0] not in local:
            chains.append(steps)
    return chains


def _chain(node: nodes.Node) -> list[str | int] | None:
    if isinstance(node, nodes.Name):
        return [node.name] if node.ctx == "load" else None
    if isinstance(node, nodes.Getattr):
        head = _chain(node.node)
        return [*head, node.attr] if head is not None else None
    if isinstance(node, nodes.Getitem):
        head = _chain(node.node)
        if head is None:
            return None
        key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if isinstance(key, str | int):
            return [*head, key]
        return head  # a computed index: check the path up to it
    return None
