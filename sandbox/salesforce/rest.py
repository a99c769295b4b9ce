"""REST resources under /services/data/vXX.X/: plain functions of the org's state.

Each handler takes the parsed request and returns (status, body); errors are raised as
SalesforceFault (or MultipleMatches for a 300) and rendered by the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.salesforce import composite, soql
from sandbox.salesforce.faults import SalesforceFault, not_found
from sandbox.salesforce.schema import ObjectDef
from sandbox.salesforce.store import MultipleMatches, Record

if TYPE_CHECKING:
    from sandbox.salesforce.app import SalesforceSandbox

Reply = tuple[int, Any]


@dataclass(slots=True)
class Call:
    """One authenticated API request, decoded."""

    method: str
    version: str
    parts: list[str]
    params: dict[str, str]
    body: Any
    user: str
    batch_size: int = 2_000  # query rows a page: Sforce-Query-Options batchSize, 200-2000

    @property
    def base(self) -> str:
        return f"/services/data/v{self.version}"


def dispatch(org: SalesforceSandbox, call: Call) -> Reply:
    """Route one call to its resource; 404 for paths Salesforce does not have."""
    parts, method = call.parts, call.method
    head = parts[0] if parts else ""
    if not parts:
        return _only(method, "GET", lambda: (200, _resources(call.base)))
    if head == "limits" and len(parts) == 1:
        return _only(method, "GET", lambda: (200, org.limits_body()))
    if head in ("query", "queryAll") and len(parts) == 1:
        return _only(method, "GET", lambda: query(org, call))
    if head in ("query", "queryAll") and len(parts) == 2:
        return _only(method, "GET", lambda: more(org, call, parts[1]))
    if head == "sobjects":
        return _sobjects(org, call)
    if head == "composite" and len(parts) >= 2 and parts[1] == "sobjects":
        return composite.dispatch(org.store, call)
    raise not_found()


def _only(method: str, allowed: str, handler: Any) -> Reply:
    if method != allowed:
        raise method_not_allowed(method, allowed)
    result: Reply = handler()
    return result


def method_not_allowed(method: str, allowed: str) -> SalesforceFault:
    return SalesforceFault(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


def _resources(base: str) -> dict[str, str]:
    return {
        name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "limits", "composite")
    }


def _sobjects(org: SalesforceSandbox, call: Call) -> Reply:
    store, parts, method = org.store, call.parts, call.method
    if len(parts) == 1:
        return _only(method, "GET", lambda: (200, org.global_describe()))
    odef = store.object(parts[1])
    obj = odef.name
    if len(parts) == 2:
        if method == "POST":
            record = store.insert(obj, _body(call), call.user)
            return 201, {"id": record["Id"], "success": True, "errors": []}
        return _only(
            method, "GET", lambda: (200, {"objectDescribe": org.describes[obj], "recentItems": []})
        )
    if len(parts) == 3 and parts[2] == "describe":
        return _only(method, "GET", lambda: (200, org.describes[obj]))
    if len(parts) == 3:
        record_id = parts[2]
        if method == "GET":
            return 200, render(store.get(obj, record_id), call, odef)
        if method == "PATCH":
            store.update(obj, record_id, _body(call), call.user)
            return 204, None
        if method == "DELETE":
            store.delete(obj, record_id)
            return 204, None
        raise method_not_allowed(method, "GET,PATCH,DELETE")
    if len(parts) == 4:
        return _by_external_id(org, call, obj, parts[2], parts[3])
    raise not_found()


def _by_external_id(org: SalesforceSandbox, call: Call, obj: str, field: str, value: str) -> Reply:
    store = org.store
    if call.method == "PATCH":
        if call.params.get("updateOnly") == "true" and not _ext_matches(org, obj, field, value):
            raise not_found()
        for key in _body(call):
            # "Do not specify Id or an external ID field in the request body" (REST guide)
            if key.lower() in ("id", field.lower()):
                raise SalesforceFault(
                    400,
                    "INVALID_FIELD",
                    f"The {key} field should not be specified in the sobject data.",
                    [key],
                )
        created, record = store.upsert(obj, field, value, _body(call), call.user)
        result = {"id": record["Id"], "success": True, "errors": [], "created": created}
        if created:
            return 201, result
        # Before API 46.0 an update by upsert answered 204 with no body.
        return (200, result) if float(call.version) >= 46.0 else (204, None)
    matches = _ext_matches(org, obj, field, value)
    if len(matches) > 1:
        raise MultipleMatches(obj, matches)
    if not matches:
        raise not_found()
    if call.method == "GET":
        return 200, render(store.get(obj, matches[0]), call, store.objects[obj])
    if call.method == "DELETE":
        store.delete(obj, matches[0])
        return 204, None
    raise method_not_allowed(call.method, "GET,PATCH,DELETE")


def _ext_matches(org: SalesforceSandbox, obj: str, field: str, value: str) -> list[str]:
    f = org.store.objects[obj].field(field)
    if f is None or not f.external_id:
        raise SalesforceFault(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {field}",
        )
    return org.store.by_external(obj, f.name, value)


def _body(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise SalesforceFault(
            400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values"
        )
    return call.body


def render(record: Record, call: Call, odef: ObjectDef) -> dict[str, Any]:
    """A record as GET returns it, optionally narrowed by ?fields=."""
    fields: dict[str, Any] = record
    wanted = call.params.get("fields")
    if wanted:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        fields = {}
        for name in names:
            f = soql.bind_field(odef, name, "selected")
            fields[f.name] = record.get(f.name)
    url = f"{call.base}/sobjects/{odef.name}/{record['Id']}"
    return {"attributes": {"type": odef.name, "url": url}, **fields}


def query(org: SalesforceSandbox, call: Call) -> Reply:
    """GET query?q=: the SOQL subset, answered from memory (and the External ID index)."""
    text = call.params.get("q")
    if not text:
        raise soql.malformed("A query string is required (q=)")
    q = soql.parse(text)
    try:
        odef = org.store.object(q.object)
    except SalesforceFault:
        raise SalesforceFault(
            400,
            "INVALID_TYPE",
            f"sObject type '{q.object}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        ) from None
    table = org.store.records[odef.name]
    candidates: list[Record] = list(table.values())
    hit = soql.indexed_equality(q)
    if hit is not None:
        f = odef.field(hit[0])
        if f is not None and f.external_id:
            ids = org.store.by_external(odef.name, f.name, hit[1])
            candidates = [table[i] for i in ids]
    rows = soql.run(q, odef, candidates, call.base)
    return 200, page(org, rows, call)


def more(org: SalesforceSandbox, call: Call, locator: str) -> Reply:
    """GET query/{locator}: the next batch of a query, as nextRecordsUrl said."""
    rows = org.cursors.pop(locator, None)
    if rows is None:
        raise SalesforceFault(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return 200, page(org, rows, call)


def page(org: SalesforceSandbox, rows: list[dict[str, Any]], call: Call) -> dict[str, Any]:
    """One batch of rows; the rest wait behind a query locator in nextRecordsUrl."""
    size = min(call.batch_size, org.query_batch)
    batch, rest = rows[:size], rows[size:]
    result: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": batch}
    if rest:
        org.locators += 1
        locator = f"01gSBX{org.locators:012d}-{size}"
        org.cursors[locator] = rest
        result["nextRecordsUrl"] = f"{call.base}/query/{locator}"
    return result
