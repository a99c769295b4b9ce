"""`mappings preview`: the Ops a mapping would plan for a meeting, written nowhere.

For each op: what the ledger knows of it (new, unchanged, changed), and, from connectors
that can read it (`current_values`), the value the provider holds now next to the new one.
The ops are planned by the pipeline's own planner (`mappings.planner`: the same mapping,
meeting link, identity matching and providers filter), so their keys and payload hashes are
the ones the pipeline will push, a re-worded item's included.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from admin.connections import build_connector
from admin.errors import Invalid, NotFound
from admin.versions import get_version, parse
from connectors.base import Connector, Op, TargetSchema
from connectors.errors import ConnectorError
from connectors.write_policy import decide, written_fields
from extraction.cache import stored_insights as insights_of_revision
from extraction.schemas import Insights
from mappings import Mapping, PlanError
from mappings.planner import plan_stored
from meetsync.db.models import InsightRecord, Meeting, OpRecord, Org
from meetsync.links import meeting_link
from meetsync.models import MeetingOutput
from meetsync.settings import Settings
from workers.runtime import Runtime
from workers.stages import cache_key, recalled_profile


class FieldPreview(BaseModel):
    name: str
    new: Any
    current: Any = None
    changes: bool | None = None  # None when the provider's value is unknown
    policy: str = "always"
    skipped: str | None = None  # why the push would leave this field alone (write policy)
    refused: str | None = None  # why the provider would refuse the value (a picklist)


class OpPreview(BaseModel):
    key: str
    connector: str
    connection: str
    action: str
    target: dict[str, Any]
    fields: list[FieldPreview]
    payload_hash: str
    ledger: str  # new | unchanged | changed
    exists: bool | None = None  # whether the provider holds the record already
    note: str | None = None


class Preview(BaseModel):
    org_id: str
    meeting_id: str
    stored_meeting: str | None
    mapping_version: int | None
    insights_from: str
    ops: list[OpPreview]

    def as_ops(self) -> list[dict[str, Any]]:
        """The planned writes alone, comparable with the ledger's rows."""
        return [
            {
                "key": op.key,
                "connector": op.connector,
                "connection": op.connection,
                "action": op.action,
                "target": op.target,
                "fields": {f.name: f.new for f in op.fields},
                "payload_hash": op.payload_hash,
            }
            for op in self.ops
        ]


def find_meeting(session: Session, ref: str, org_id: str | None = None) -> Meeting:
    """A stored meeting by meetsync's id or the notes pipeline's meeting id."""
    query = select(Meeting).where(or_(Meeting.id == ref, Meeting.external_id == ref))
    if org_id is not None:
        query = query.where(Meeting.org_id == org_id)
    found = session.scalars(query.limit(2)).all()
    if not found:
        raise NotFound(f"no stored meeting {ref!r}" + (f" in org {org_id!r}" if org_id else ""))
    if len(found) > 1:
        raise Invalid(f"several orgs have a meeting {ref!r}; name the org")
    return found[0]


def stored_insights(session: Session, settings: Settings, row: Meeting) -> InsightRecord | None:
    """The insights the plan stage would plan this stored meeting with: chosen by the plan
    stage's own key (the meeting's experiment arm, what memory recalls for it)."""
    runtime = Runtime(settings)
    profile = recalled_profile(runtime, session, row, session.get(Org, row.org_id))
    return insights_of_revision(session, row.id, cache_key(runtime, session, row, profile))


def extract(settings: Settings, meeting: MeetingOutput, profile: dict[str, Any]) -> Insights:
    """Run extraction for a meeting that has no stored insights (one LLM call outward)."""
    from extraction.extract import extract_insights  # only previews of files need the LLM

    return extract_insights(meeting, settings=settings.llm, org_profile=profile).insights


def load_mapping_for(
    session: Session,
    org_id: str,
    *,
    version: int | None = None,
    body: str | None = None,
    file: str | None = None,
) -> tuple[Mapping, int | None]:
    """A draft body when given (version None), else a stored version (the latest by default)."""
    if body is not None:
        return parse(body, file), None
    row = get_version(session, org_id, version)
    return parse(row.body), row.version


def preview_stored(
    session: Session,
    settings: Settings,
    meeting_ref: str,
    *,
    org_id: str | None = None,
    version: int | None = None,
    body: str | None = None,
    file: str | None = None,
    current: bool = True,
) -> Preview:
    """Preview a stored meeting with its latest insights (extracting if it has none)."""
    row = find_meeting(session, meeting_ref, org_id)
    meeting = MeetingOutput.model_validate(row.payload)
    record = stored_insights(session, settings, row)
    if record is not None:
        insights, source = Insights.model_validate(record.insights), f"stored insights #{record.id}"
    else:
        insights, source = extract(settings, meeting, _profile(session, row.org_id)), "extraction"
    mapping, number = load_mapping_for(session, row.org_id, version=version, body=body, file=file)
    return build_preview(
        session, settings, meeting, insights, mapping, number, row.id, source, current=current
    )


def preview_payload(
    session: Session,
    settings: Settings,
    meeting: MeetingOutput,
    *,
    version: int | None = None,
    body: str | None = None,
    file: str | None = None,
    current: bool = True,
) -> Preview:
    """Preview a meeting given as data (a file, a request body): extraction runs first."""
    if session.get(Org, meeting.org_id) is None:
        raise NotFound(f"no org {meeting.org_id!r}")
    stored = session.scalars(
        select(Meeting.id).where(
            Meeting.org_id == meeting.org_id, Meeting.external_id == meeting.meeting_id
        )
    ).first()
    insights = extract(settings, meeting, _profile(session, meeting.org_id))
    mapping, number = load_mapping_for(
        session, meeting.org_id, version=version, body=body, file=file
    )
    return build_preview(
        session, settings, meeting, insights, mapping, number, stored, "extraction", current=current
    )


def build_preview(
    session: Session,
    settings: Settings,
    meeting: MeetingOutput,
    insights: Insights,
    mapping: Mapping,
    mapping_version: int | None,
    stored_id: str | None,
    insights_from: str,
    *,
    current: bool = True,
    providers: list[str] | None = None,
) -> Preview:
    """Plan the ops as the pipeline would and annotate each with what is there now."""
    if mapping.org != meeting.org_id:
        raise Invalid(f"the mapping is org {mapping.org!r}'s; the meeting is {meeting.org_id!r}'s")
    try:
        ops = plan_stored(
            session,
            meeting,
            insights,
            mapping,
            meeting_url=meeting_link(settings, stored_id or meeting.meeting_id),
            stored_id=stored_id,
            mapping_version=mapping_version,
            providers=providers,
        ).ops
    except PlanError as exc:
        raise Invalid(f"the mapping cannot plan this meeting: {exc}") from exc
    connectors: dict[str, Connector | Exception] = {}
    previews = [_annotate(session, settings, op, connectors, current) for op in ops]
    return Preview(
        org_id=meeting.org_id,
        meeting_id=meeting.meeting_id,
        stored_meeting=stored_id,
        mapping_version=mapping_version,
        insights_from=insights_from,
        ops=previews,
    )


def _annotate(
    session: Session,
    settings: Settings,
    op: Op,
    connectors: dict[str, Connector | Exception],
    current: bool,
) -> OpPreview:
    row = session.get(OpRecord, op.key)
    if row is None:
        ledger = "new"
    elif row.payload_hash == op.payload_hash and row.state == "done":
        ledger = "unchanged"
    else:
        ledger = "changed"
    present: dict[str, Any] | None = None
    exists: bool | None = True if row is not None and row.external_id else None
    note = None
    if current:
        try:
            present = _current_values(session, settings, op, connectors)
        except (ConnectorError, NotFound, Invalid) as exc:
            note = f"current values unknown: {exc}"
        else:
            if present is not None:
                exists = True
            elif _reads_current(connectors.get(op.connection)):
                exists = False
    schema = _schema(op, connectors) if current else None
    policies = op.target.get("write_policy") or {}
    skipped: dict[str, str] = {}
    if policies and present is not None:
        # the connector's own rule, on the values shown and what the last push wrote
        extra = (row.receipt or {}).get("extra") if row is not None else None
        written = written_fields(extra, row.external_id or "") if row is not None else {}
        skipped = decide(op.fields, policies, present, written).skipped
    fields = [
        FieldPreview(
            name=name,
            new=value,
            current=(present or {}).get(name),
            # a field the provider did not return is unknown, not a change from null
            changes=None
            if present is None or name not in present
            else not _same(present.get(name), value),
            policy=str(policies.get(name, "always")),
            skipped=skipped.get(name),
            refused=_refused(schema, name, value),
        )
        for name, value in op.fields.items()
    ]
    return OpPreview(
        key=op.key,
        connector=op.connector,
        connection=op.connection,
        action=op.action,
        target=op.target,
        fields=fields,
        payload_hash=op.payload_hash,
        ledger=ledger,
        exists=exists,
        note=note,
    )


def _current_values(
    session: Session, settings: Settings, op: Op, connectors: dict[str, Connector | Exception]
) -> dict[str, Any] | None:
    if op.connection not in connectors:
        try:
            connectors[op.connection] = build_connector(
                session, settings, op.connection, org_id=op.org_id
            )
        except (ConnectorError, NotFound, Invalid) as exc:
            connectors[op.connection] = exc
    connector = connectors[op.connection]
    if isinstance(connector, Exception):
        raise connector
    read = getattr(connector, "current_values", None)
    if read is None:
        return None
    values: dict[str, Any] | None = read(op)
    return values


def _schema(op: Op, connectors: dict[str, Connector | Exception]) -> TargetSchema | None:
    """What the destination accepts, when its connector was built and can say."""
    connector = connectors.get(op.connection)
    if connector is None or isinstance(connector, Exception):
        return None
    try:
        return connector.describe(op.target)
    except ConnectorError:
        return None


def _refused(schema: TargetSchema | None, name: str, value: Any) -> str | None:
    """Why a restricted picklist would refuse this value; None when it would not."""
    field = schema.field(name) if schema is not None else None
    if field is None or not field.picklist or not field.restricted or value in (None, ""):
        return None
    if str(value) in field.picklist:
        return None
    shown = ", ".join(field.picklist[:8]) + (", …" if len(field.picklist) > 8 else "")
    return f"not a value of the {name} picklist ({shown})"


def _reads_current(connector: object) -> bool:
    return connector is not None and hasattr(connector, "current_values")


def _same(current: Any, new: Any) -> bool:
    if isinstance(new, int | float) and isinstance(current, int | float):
        return float(current) == float(new)
    return bool(current == new)


def _profile(session: Session, org_id: str) -> dict[str, Any]:
    org = session.get(Org, org_id)
    return dict(org.profile or {}) if org else {}
