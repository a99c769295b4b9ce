"""Tables: orgs, connections, meetings, insights, the op ledger, mappings, webhook events,
org memory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Connection(Base):
    """One org's credential for one provider; credentials encrypted at rest."""

    __tablename__ = "connections"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    provider: Mapped[str] = mapped_column(String(50))
    base_url: Mapped[str | None] = mapped_column(String(500))
    credentials: Mapped[str] = mapped_column(Text, doc="Fernet token of the JSON credentials")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Meeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("org_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(doc="the MeetingOutput, transcript included")
    transcript_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20), default="live")
    status: Mapped[str] = mapped_column(String(20), default="received")
    error: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    occurred_at: Mapped[datetime | None] = mapped_column(doc="the stored revision's occurred_at")
    backfill_run: Mapped[str | None] = mapped_column(String(64), index=True)
    connectors: Mapped[list[Any] | None] = mapped_column(
        JSON, doc="only these connectors get ops (a backfill's --providers); None: all"
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InsightRecord(Base):
    """One extraction run of one meeting revision."""

    __tablename__ = "insights"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    insights: Mapped[dict[str, Any]] = mapped_column()
    usage: Mapped[list[Any]] = mapped_column(default=list)
    arms: Mapped[list[Any]] = mapped_column(
        JSON, default=list, doc="the experiment arms it ran under: {experiment, version, task, arm}"
    )
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, doc="task → model")
    prompt_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OpRecord(Base):
    """The ledger: one row per op key, `planned → sending → done | failed | dead`."""

    __tablename__ = "ops"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    connector: Mapped[str] = mapped_column(String(50))
    connection: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    applied_hash: Mapped[str | None] = mapped_column(String(64), doc="payload last confirmed")
    state: Mapped[str] = mapped_column(String(20), default="planned", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200))
    object: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(String(1000))
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    mapping_version: Mapped[int | None] = mapped_column(Integer)
    lease_until: Mapped[float | None] = mapped_column(
        Float, doc="epoch seconds: a `sending` op is someone's until then, in doubt after"
    )
    doubt_since: Mapped[float | None] = mapped_column(
        Float, doc="epoch seconds: the claim of the earliest attempt that may have written it"
    )
    destination: Mapped[str | None] = mapped_column(String(64), doc="the mapping destination")
    item: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, doc="the action item's identity (title, owner, evidence) for re-extractions"
    )
    disposition: Mapped[str | None] = mapped_column(
        String(20), doc="None while planned; `missing` or `closed` once no longer extracted"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MappingVersion(Base):
    __tablename__ = "mapping_versions"
    __table_args__ = (UniqueConstraint("org_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    comment: Mapped[str | None] = mapped_column(Text)
    diff: Mapped[str | None] = mapped_column(Text, doc="unified diff against the previous version")


class AdminToken(Base):
    """A bearer token for one org's admin API; only its SHA-256 is stored."""

    __tablename__ = "admin_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class WebhookEvent(Base):
    """A delivery we answered; a replay of its id gets the same answer."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64))
    meeting_id: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookSignature(Base):
    """A webhook signature accepted once: inside its time window, never accepted again."""

    __tablename__ = "webhook_signatures"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class BackfillCursor(Base):
    """Where a backfill run over one org, source and range stopped; a rerun resumes there."""

    __tablename__ = "backfill_cursors"

    run_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    source: Mapped[str] = mapped_column(String(500))
    since: Mapped[datetime] = mapped_column()
    until: Mapped[datetime | None] = mapped_column()
    providers: Mapped[list[Any] | None] = mapped_column(JSON)
    position: Mapped[str | None] = mapped_column(Text, doc="the source's resume token")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    spent_usd: Mapped[float] = mapped_column(default=0.0)
    state: Mapped[str] = mapped_column(String(20), default="running")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemoryEntry(Base):
    """One thing an org taught meetsync: a person, a term, a preference or a commitment.

    `search_text` holds the names a transcript may say (name and aliases; a commitment's
    title and account): the lexical index (SQLite FTS5 `memory_fts`, PostgreSQL full-text)
    covers it (on PostgreSQL through the stored `search_vector`, which migration 0010 adds
    outside this model: SQLite cannot compute it). `person_id` ties an entry to the person
    it is about, so deleting the person deletes it too.
    """

    __tablename__ = "memory_entries"
    # org_id leads: it serves "this org's rows" and "this org's newest open commitments"
    __table_args__ = (
        # `id` too: "newest first" breaks ties by it, and a scan stops at its limit (0012)
        Index("ix_memory_entries_recent", "org_id", "kind", "status", "created_at", "id"),
        Index("ix_memory_entries_source", "source_ref", "org_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(400), doc="name, term, preference or task text")
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    account: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str | None] = mapped_column(String(20), doc="a commitment's open | closed")
    person_id: Mapped[str | None] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(20), default="admin")
    source_ref: Mapped[str | None] = mapped_column(String(200), doc="the provider's id")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="the checked entry")
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemoryLearning(Base):
    """One thing memory learned from a review decision, and whether it still stands.

    kind    alias (an edited owner: the spoken name joins the chosen person), term (a word
            the reviewer corrected), preference (an edit repeated across meetings, offered
            to the admin as a rule)
    state   applied | undone for aliases and terms; pending | accepted | declined for a
            suggested preference (accepted makes `entry_id`)

    The decision it came from (`review_request_id`, `meeting_id`, `decided_by`) is kept so
    memory can say where an entry came from and undo exactly this change.
    """

    __tablename__ = "memory_learnings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    entry_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_entry: Mapped[bool] = mapped_column(default=False, doc="undo deletes the entry")
    field: Mapped[str] = mapped_column(String(200), doc="the op field the reviewer changed")
    heard: Mapped[str | None] = mapped_column(String(400), doc="what was extracted")
    meant: Mapped[str] = mapped_column(String(400), doc="what the reviewer wrote")
    rule: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="a suggested preference")
    review_request_id: Mapped[str | None] = mapped_column(String(32))
    meeting_id: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(doc="undone, accepted or declined")


class ReviewRequest(Base):
    """One op held for a person's decision (or one question to ask), and what they decided.

    A decision is one conditional UPDATE of `state` from `pending`: a double click, a Slack
    retry or two approvers at once come to one decision. Unique per op and payload, so an op
    re-planned with the same payload is not asked about twice.
    """

    __tablename__ = "review_requests"
    __table_args__ = (UniqueConstraint("op_key", "payload_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="change", doc="change | clarify")
    op_key: Mapped[str | None] = mapped_column(String(64), index=True)
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    destination: Mapped[str | None] = mapped_column(String(64))
    proposal: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="object, record link, fields (current → proposed), evidence"
    )
    approvers: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="emails and Slack user ids allowed to decide"
    )
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()
    corrections: Mapped[list[Any]] = mapped_column(
        JSON, default=list, doc="edits as {field, before, after, who}"
    )
    model: Mapped[str | None] = mapped_column(String(200), doc="the model that proposed it")
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    expires_at: Mapped[datetime | None] = mapped_column()
    reminded_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewMessage(Base):
    """A Slack message showing a meeting's review requests (a channel post or a DM)."""

    __tablename__ = "review_messages"
    __table_args__ = (UniqueConstraint("meeting_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    connection: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(100), doc="where the mapping routes it")
    channel_id: Mapped[str | None] = mapped_column(String(32), doc="Slack's id, once posted")
    ts: Mapped[str | None] = mapped_column(String(32))
    rendered: Mapped[str | None] = mapped_column(String(64), doc="hash of what Slack shows")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Rating(Base):
    """👍/👎 on a recap (`item_key` "") or one action item, by one person: the last one counts."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("meeting_id", "item_key", "rated_by"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(64), default="")
    rated_by: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(String(10), doc="up | down")
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Experiment(Base):
    """One version of an A/B test on one extraction task: its arms, scope and guardrails.

    Changing a running experiment's arms adds a version; ratings stay with the arm (and the
    version) whose extraction earned them.
    """

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    task: Mapped[str] = mapped_column(String(50))
    spec: Mapped[dict[str, Any]] = mapped_column(doc="arms, sticky, orgs, guardrails")
    state: Mapped[str] = mapped_column(
        String(20), default="running", doc="running | stopped | promoted | superseded"
    )
    stopped_arms: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, doc="arm → why a guardrail stopped it"
    )
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShadowExtraction(Base):
    """A shadow arm's output for one live meeting: stored beside the live one, never planned."""

    __tablename__ = "shadow_extractions"
    __table_args__ = (UniqueConstraint("meeting_id", "revision", "experiment", "arm"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    experiment: Mapped[str] = mapped_column(String(100), index=True)
    experiment_version: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(50))
    insights: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    usage: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskDefault(Base):
    """The model, prompt and parameters a task uses by default: versioned like mappings.

    The newest version wins over settings; a rollback adds a version copying an older one.
    """

    __tablename__ = "task_defaults"
    __table_args__ = (UniqueConstraint("task", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(50), index=True)
    version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    comment: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
