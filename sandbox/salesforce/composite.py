"""sObject Collections: up to 200 records per call, per-record results, optional allOrNone.

Results carry `statusCode` per error (not `errorCode`, as the top-level REST errors do).
With allOrNone every record is still checked, so every real error is reported; then all
applied changes are undone and the records that would have succeeded report
ALL_OR_NONE_OPERATION_ROLLED_BACK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.salesforce import ids
from sandbox.salesforce.faults import SalesforceFault, not_found
from sandbox.salesforce.store import MultipleMatches, Record, Store

if TYPE_CHECKING:
    from sandbox.salesforce.rest import Call, Reply

MAX_RECORDS = 200
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}
Undo = Callable[[], None]


def dispatch(store: Store, call: Call) -> Reply:
    """composite/sobjects[/{object}[/{externalIdField}]]."""
    parts, method = call.parts, call.method
    if len(parts) == 2 and method == "POST":
        return 200, _apply(store, call, lambda rec, obj: _create(store, call, rec, obj))
    if len(parts) == 2 and method == "PATCH":
        return 200, _apply(store, call, lambda rec, obj: _update(store, call, rec, obj))
    if len(parts) == 2 and method == "DELETE":
        return 200, _delete(store, call)
    if len(parts) == 3 and method == "GET":
        return 200, _retrieve(store, call, store.object(parts[2]).name)
    if len(parts) == 4 and method == "PATCH":
        obj = store.object(parts[2]).name
        field = parts[3]
        return 200, _apply(
            store, call, lambda rec, o: _upsert(store, call, rec, obj, field), only=obj
        )
    raise not_found()


def _records(call: Call) -> tuple[list[dict[str, Any]], bool]:
    body = call.body if isinstance(call.body, dict) else {}
    records = body.get("records")
    if not isinstance(records, list):
        raise SalesforceFault(400, "JSON_PARSER_ERROR", "records is required: a list of sObjects")
    if len(records) > MAX_RECORDS:
        raise SalesforceFault(
            400,
            "EXCEEDED_ID_LIMIT",
            f"Record limit exceeded. The maximum number of records is {MAX_RECORDS}.",
        )
    return records, bool(body.get("allOrNone", False))


def _apply(
    store: Store,
    call: Call,
    one: Callable[[dict[str, Any], str], tuple[dict, Undo]],
    only: str | None = None,
) -> list[dict[str, Any]]:
    records, all_or_none = _records(call)
    results: list[dict[str, Any]] = []
    undo: list[Undo] = []
    failed = False
    for raw in records:
        try:
            kind = (raw.get("attributes") or {}).get("type") if isinstance(raw, dict) else None
            if not kind:
                raise SalesforceFault(400, "INVALID_TYPE", "Each record needs attributes.type")
            obj = store.object(kind).name
            if only and obj != only:
                raise SalesforceFault(
                    400, "INVALID_TYPE", f"Records must all be of type {only}, not {obj}"
                )
            result, revert = one(raw, obj)
            results.append(result)
            undo.append(revert)
        except SalesforceFault as fault:
            failed = True
            results.append({"success": False, "errors": [fault.collection_error()]})
    if failed and all_or_none:
        for revert in reversed(undo):
            revert()
        return [
            r if not r["success"] else {"id": None, "success": False, "errors": [dict(ROLLED_BACK)]}
            for r in results
        ]
    return results


def _create(store: Store, call: Call, raw: dict[str, Any], obj: str) -> tuple[dict, Undo]:
    if raw.get("id") or raw.get("Id"):
        raise SalesforceFault(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
    record = store.insert(obj, raw, call.user)
    return (
        {"id": record["Id"], "success": True, "errors": []},
        lambda: store.delete(obj, record["Id"]),
    )


def _update(store: Store, call: Call, raw: dict[str, Any], obj: str) -> tuple[dict, Undo]:
    record_id = raw.get("id") or raw.get("Id")
    if not record_id:
        raise SalesforceFault(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
    before = dict(store.get(obj, str(record_id)))
    body = {k: v for k, v in raw.items() if k.lower() != "id"}
    record = store.update(obj, str(record_id), body, call.user)
    return ({"id": record["Id"], "success": True, "errors": []}, lambda: store.restore(obj, before))


def _upsert(
    store: Store, call: Call, raw: dict[str, Any], obj: str, field: str
) -> tuple[dict, Undo]:
    f = store.objects[obj].field(field)
    value = raw.get(f.name) if f is not None else None
    if f is None or not f.external_id:
        raise SalesforceFault(
            400,
            "INVALID_FIELD",
            f"Provided external ID field does not exist or is not accessible: {field}",
        )
    if value in (None, ""):
        raise SalesforceFault(400, "MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
    existing = store.by_external(obj, f.name, str(value))
    before = dict(store.get(obj, existing[0])) if len(existing) == 1 else None
    try:
        created, record = store.upsert(obj, f.name, str(value), raw, call.user)
    except MultipleMatches as many:
        raise SalesforceFault(
            400,
            "DUPLICATE_EXTERNAL_ID",
            f"{f.label}: more than one record found for external id field: "
            f"[{', '.join(many.record_ids)}]",
            [f.name],
        ) from None
    result = {"id": record["Id"], "success": True, "errors": [], "created": created}
    if created:
        return result, lambda: store.delete(obj, record["Id"])
    assert before is not None
    return result, lambda: store.restore(obj, before)


def _delete(store: Store, call: Call) -> list[dict[str, Any]]:
    wanted = [i for i in call.params.get("ids", "").split(",") if i]
    results = []
    for record_id in wanted:
        full = ids.normalize(record_id)
        obj = store.owner_of.get(full) if full else None
        if obj is None:
            results.append(
                {
                    "id": record_id,
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "ENTITY_IS_DELETED",
                            "message": "entity is deleted",
                            "fields": [],
                        }
                    ],
                }
            )
            continue
        store.delete(obj, record_id)
        results.append({"id": record_id, "success": True, "errors": []})
    return results


def _retrieve(store: Store, call: Call, obj: str) -> list[Record | None]:
    wanted = [i for i in call.params.get("ids", "").split(",") if i]
    fields = [f for f in call.params.get("fields", "").split(",") if f]
    out: list[Record | None] = []
    for record_id in wanted:
        try:
            record = store.get(obj, record_id)
        except SalesforceFault:
            out.append(None)
            continue
        body = {k: record.get(k) for k in fields} if fields else dict(record)
        out.append(
            {
                "attributes": {"type": obj, "url": f"{call.base}/sobjects/{obj}/{record['Id']}"},
                **body,
            }
        )
    return out
