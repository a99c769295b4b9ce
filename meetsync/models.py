"""The meeting as the notes pipeline delivers it: the shared vocabulary of every stage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Attendee(BaseModel):
    """A person in the meeting; `internal` is true for the org's own people."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200, description="Display name")
    email: str | None = Field(
        default=None, max_length=320, pattern=EMAIL_PATTERN, description="Email address"
    )
    internal: bool = Field(default=False, description="True for the org's own people")


class Utterance(BaseModel):
    """One turn of the transcript."""

    model_config = ConfigDict(extra="forbid")

    speaker: str | None = Field(default=None, max_length=200, description="Who spoke, as named")
    start: float = Field(default=0.0, ge=0, description="Seconds from the meeting's start")
    text: str = Field(max_length=20_000, description="What was said")


class CrmRefs(BaseModel):
    """CRM record ids the notes pipeline already knows; they beat matching by email."""

    model_config = ConfigDict(extra="forbid")

    opportunity_id: str | None = Field(
        default=None, max_length=18, description="Salesforce Opportunity id the meeting was about"
    )
    account_id: str | None = Field(
        default=None, max_length=18, description="Salesforce Account id the meeting was with"
    )


class MeetingOutput(BaseModel):
    """A finished meeting: the body of the meeting-completed webhook."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(
        default=None,
        max_length=200,
        description="Delivery id; a replay with it gets the first answer (the "
        "X-Meetsync-Event-Id header, when sent, takes precedence)",
    )
    org_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The meetsync org the meeting belongs to; an unknown org gets 404",
    )
    meeting_id: str = Field(
        min_length=1,
        max_length=200,
        description="The notes pipeline's id of the meeting; a new delivery with the same id "
        "is a new revision of that meeting",
    )
    title: str = Field(min_length=1, max_length=500, description="The meeting's title")
    start: datetime = Field(description="Start time, ISO 8601 with offset")
    end: datetime = Field(description="End time, ISO 8601 with offset")
    occurred_at: datetime | None = Field(
        default=None,
        description="When the notes pipeline produced this revision (ISO 8601 with offset). "
        "Orders deliveries of the same meeting: one older than the stored revision is "
        "acknowledged (200, status 'stale') and changes nothing. Without it, the latest "
        "delivery wins.",
    )
    timezone: str = Field(default="UTC", description="IANA time zone of the meeting")
    attendees: list[Attendee] = Field(
        default_factory=list, max_length=500, description="Who took part"
    )
    transcript: list[Utterance] = Field(
        default_factory=list,
        max_length=50_000,
        description="The transcript inline; leave empty when transcript_url is given",
    )
    transcript_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description="Where the worker fetches the transcript instead (a JSON list of "
        'utterances, or {"transcript": [...]}) from an allow-listed host, with the auth '
        "header configured in settings; exclusive with an inline transcript",
    )
    summary: str | None = Field(
        default=None, max_length=20_000, description="The notes pipeline's summary"
    )
    crm: CrmRefs | None = Field(default=None, description="CRM record ids already known")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """No NUL character anywhere: PostgreSQL cannot store one in text."""
        if _has_nul(data):
            raise ValueError("text may not contain the NUL character (\\u0000)")
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("start", "end", "occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2026-11-20T15:00:00Z")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> MeetingOutput:
        if self.end < self.start:
            raise ValueError("end is before start")
        if self.transcript_url is not None and self.transcript:
            raise ValueError("give the transcript inline or as transcript_url, not both")
        return self

    @property
    def local_date(self) -> str:
        """The meeting's calendar date in its own time zone (relative dates resolve to it)."""
        return self.start.astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def attendee_by_name(self, name: str) -> Attendee | None:
        wanted = name.strip().lower()
        for person in self.attendees:
            full = (person.name or "").lower()
            if full and (full == wanted or full.split()[0] == wanted):
                return person
        return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def as_utc(value: datetime) -> datetime:
    """`value` with its offset: naive values are UTC (SQLite keeps no offset, PostgreSQL does)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A datetime shown with its offset (RFC 3339): naive values from the database are UTC."""
