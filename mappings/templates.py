"""Templates in a sandboxed Jinja2 environment, rendered to JSON-typed values.

A template that is exactly one `{{ expression }}` evaluates to the expression's own value
(a list stays a list, a number a number); any other template renders to a string. A
template that reads a value the meeting lacks renders to None, so the field is omitted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.sandbox import SandboxedEnvironment

from .context import Shape, steps_problem

_SINGLE_EXPRESSION = re.compile(r"^\{\{-?(.*?)-?\}\}$", re.DOTALL)


@cache
def environment() -> SandboxedEnvironment:
    """The one sandboxed environment every mapping template runs in."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Template:
    """A compiled mapping template."""

    source: str
    render_fn: Callable[[dict[str, Any]], Any]
    ast: nodes.Template
    expression: bool = False

    def render(self, context: dict[str, Any]) -> Any:
        """The template's value in a context; None when it reads a missing value."""
        try:
            value = self.render_fn(context)
        except UndefinedError:
            return None
        if isinstance(value, Undefined):
            return None
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
    compiled = env.from_string(source)
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
    problems: list[str] = []
    for steps in _variable_paths(template.ast):
        problem = steps_problem(steps, shape)
        if problem and problem not in problems:
            problems.append(problem)
    return problems


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
