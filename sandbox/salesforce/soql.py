"""The SOQL subset connectors use: SELECT fields FROM object [WHERE …] [ORDER BY …] [LIMIT n].

WHERE takes =, !=, <, <=, >, >=, LIKE, IN, NOT IN joined by AND / OR / NOT and parentheses;
values are 'strings', numbers, true/false/null, dates and datetimes. String comparisons are
case-insensitive and long text areas cannot be filtered or sorted, as in a real org.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sandbox.salesforce import ids
from sandbox.salesforce.faults import SalesforceFault
from sandbox.salesforce.schema import NUMERIC, FieldDef, ObjectDef

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*|-?\d[\d\-:.TZ+]*))"
)
# The SOQL reference's escape sequences (case-insensitive letters, \uXXXX), and LIKE's \% \_
# kept escaped for the pattern; any other backslash is MALFORMED_QUERY.
_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f",
    "'": "'", '"': '"', "\\": "\\", "%": "\\%", "_": "\\_",
}  # fmt: skip
_KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "null",
    "true",
    "false",
}

Predicate = Callable[[dict[str, Any]], bool]


def malformed(message: str) -> SalesforceFault:
    return SalesforceFault(400, "MALFORMED_QUERY", message)


@dataclass
class Query:
    """A parsed query, still unbound to the org's metadata."""

    fields: list[str]
    object: str
    where: Any = None  # nested tuples: ("and"|"or", a, b) | ("not", a) | (field, op, value)
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # field, desc, nulls last
    limit: int | None = None
    offset: int = 0


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise malformed(f"unexpected token: {text[pos : pos + 20].strip()!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str:
        return self.toks[self.i][1].lower() if self.i < len(self.toks) else ""

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise malformed("unexpected end of query")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, word: str) -> None:
        _, text = self.take()
        if text.lower() != word:
            raise malformed(f"unexpected token: '{text}', expecting '{word.upper()}'")

    def name(self) -> str:
        kind, text = self.take()
        if kind != "word" or text.lower() in _KEYWORDS:
            raise malformed(f"unexpected token: '{text}'")
        return text

    def query(self) -> Query:
        self.expect("select")
        fields = [self.name()]
        while self.peek() == ",":
            self.take()
            fields.append(self.name())
        self.expect("from")
        q = Query(fields, self.name())
        if self.peek() == "where":
            self.take()
            q.where = self.disjunction()
        if self.peek() == "order":
            self.take()
            self.expect("by")
            q.order.append(self.order_item())
            while self.peek() == ",":
                self.take()
                q.order.append(self.order_item())
        if self.peek() == "limit":
            self.take()
            q.limit = self.integer()
        if self.peek() == "offset":
            self.take()
            q.offset = self.integer()
        if self.i != len(self.toks):
            raise malformed(f"unexpected token: '{self.toks[self.i][1]}'")
        return q

    def integer(self) -> int:
        _, text = self.take()
        if not text.isdigit():
            raise malformed(f"unexpected token: '{text}', expecting a number")
        return int(text)

    def order_item(self) -> tuple[str, bool, bool]:
        name = self.name()
        desc = False
        if self.peek() in ("asc", "desc"):
            desc = self.take()[1].lower() == "desc"
        nulls_last = desc  # Salesforce's default: nulls first ascending, last descending
        if self.peek() == "nulls":
            self.take()
            nulls_last = self.take()[1].lower() == "last"
        return name, desc, nulls_last

    def disjunction(self) -> Any:
        node = self.conjunction()
        while self.peek() == "or":
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Any:
        node = self.factor()
        while self.peek() == "and":
            self.take()
            node = ("and", node, self.factor())
        return node

    def factor(self) -> Any:
        if self.peek() == "not":
            self.take()
            return ("not", self.factor())
        if self.peek() == "(":
            self.take()
            node = self.disjunction()
            self.expect(")")
            return node
        name = self.name()
        op = self.take()[1].lower()
        if op == "not":
            self.expect("in")
            op = "not in"
        if op in ("in", "not in"):
            self.expect("(")
            values = [self.value()]
            while self.peek() == ",":
                self.take()
                values.append(self.value())
            self.expect(")")
            return (name, op, values)
        if op not in ("=", "!=", "<>", "<", "<=", ">", ">=", "like"):
            raise malformed(f"unexpected token: '{op}'")
        return (name, "!=" if op == "<>" else op, self.value())

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", _unescape, text[1:-1], flags=re.S)
        low = text.lower()
        if low in ("null", "true", "false"):
            return {"null": None, "true": True, "false": False}[low]
        if kind == "word" and re.match(r"^-?\d+(\.\d+)?$", text):
            return float(text) if "." in text else int(text)
        if kind == "word" and re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return ("literal", text)
        raise malformed(f"unexpected token: '{text}'")


def _unescape(match: re.Match[str]) -> str:
    sequence = match.group(1)
    if len(sequence) == 5:
        return chr(int(sequence[1:], 16))
    found = _ESCAPES.get(sequence) or _ESCAPES.get(sequence.lower())
    if found is None:
        raise malformed(
            f"Invalid string literal '\\{sequence}'. Illegal character sequence "
            f"'\\{sequence}' in string literal."
        )
    return found


@lru_cache(maxsize=512)
def parse(text: str) -> Query:
    """Parse a query; MALFORMED_QUERY when it is outside the subset."""
    return _Parser(text).query()


def _no_column(name: str, obj: str) -> SalesforceFault:
    return SalesforceFault(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference "
        "your WSDL or the describe call for the appropriate names.",
    )


def bind_field(odef: ObjectDef, name: str, use: str) -> FieldDef:
    f = odef.field(name)
    if f is None:
        raise _no_column(name, odef.name)
    if use in ("filtered", "sorted") and not f.filterable:
        raise SalesforceFault(
            400, "INVALID_FIELD", f"field '{f.name}' can not be {use} in a query call"
        )
    return f


def _normalize(f: FieldDef, value: Any) -> Any:
    if isinstance(value, tuple):
        return value[1]
    if value is None:
        return None
    if f.type in ("id", "reference") and isinstance(value, str):
        return ids.normalize(value) or value
    if isinstance(value, str) and f.type not in NUMERIC:
        return value.lower()
    return value


def _like(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\\%|\\_|%|_)", pattern.lower())
    table = {"%": ".*", "_": ".", "\\%": "%", "\\_": "_"}
    return re.compile("^" + "".join(table.get(p, re.escape(p)) for p in parts) + "$", re.S)


def _compile(odef: ObjectDef, node: Any) -> Predicate:
    if node[0] in ("and", "or"):
        left, right = _compile(odef, node[1]), _compile(odef, node[2])
        if node[0] == "and":
            return lambda r: left(r) and right(r)
        return lambda r: left(r) or right(r)
    if node[0] == "not":
        inner = _compile(odef, node[1])
        return lambda r: not inner(r)
    name, op, raw = node
    f = bind_field(odef, name, "filtered")
    key = f.name
    fold = f.type not in NUMERIC and f.type not in ("boolean", "id", "reference")

    def get(r: dict[str, Any]) -> Any:
        v = r.get(key)
        return v.lower() if fold and isinstance(v, str) else v

    if op in ("in", "not in"):
        wanted = {_normalize(f, v) for v in raw}
        if op == "in":
            return lambda r: get(r) in wanted
        return lambda r: get(r) not in wanted
    value = _normalize(f, raw)
    if op == "like":
        if not isinstance(raw, str):
            raise malformed("LIKE needs a string")
        pattern = _like(raw)
        return lambda r: isinstance(get(r), str) and pattern.match(get(r)) is not None
    if op == "=":
        return lambda r: get(r) == value
    if op == "!=":
        return lambda r: get(r) != value
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    cmp = compare[op]
    return lambda r: get(r) is not None and value is not None and cmp(get(r), value)


def run(
    q: Query, odef: ObjectDef, records: list[dict[str, Any]], base: str
) -> list[dict[str, Any]]:
    """The rows `q` selects from `records`, each with its attributes, as REST returns them."""
    selected = [bind_field(odef, name, "selected").name for name in q.fields]
    rows = records
    if q.where is not None:
        predicate = _compile(odef, q.where)
        rows = [r for r in rows if predicate(r)]
    for name, desc, nulls_last in reversed(q.order):
        key = bind_field(odef, name, "sorted").name
        present = [r for r in rows if r.get(key) is not None]
        absent = [r for r in rows if r.get(key) is None]
        present.sort(key=lambda r: r[key], reverse=desc)
        rows = present + absent if nulls_last else absent + present
    rows = rows[q.offset :]
    if q.limit is not None:
        rows = rows[: q.limit]
    return [
        {
            "attributes": {"type": odef.name, "url": f"{base}/sobjects/{odef.name}/{r['Id']}"},
            **{name: r.get(name) for name in selected},
        }
        for r in rows
    ]


def indexed_equality(q: Query) -> tuple[str, str] | None:
    """(field, value) when the WHERE is one equality, so an index can answer it."""
    node = q.where
    if (
        isinstance(node, tuple)
        and len(node) == 3
        and node[1] == "="
        and isinstance(node[2], str)
        and node[0] not in ("and", "or")
    ):
        return node[0], node[2]
    return None
