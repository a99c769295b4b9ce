"""The meeting as the notes pipeline delivers it: the shared vocabulary of every stage."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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

    opportunity_id: str | None = Field(default=None, max_length=18)
    account_id: str | None = Field(default=None, max_length=18)


class MeetingOutput(BaseModel):
    """A finished meeting: the body of the meeting-completed webhook."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(
        default=None, max_length=200, description="Delivery id; replays with it are ignored"
    )
    org_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    meeting_id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    start: datetime = Field(description="Start time, ISO 8601 with offset")
    end: datetime = Field(description="End time, ISO 8601 with offset")
    timezone: str = Field(default="UTC", description="IANA time zone of the meeting")
    attendees: list[Attendee] = Field(default_factory=list, max_length=500)
    transcript: list[Utterance] = Field(default_factory=list, max_length=50_000)
    summary: str | None = Field(default=None, max_length=20_000)
    crm: CrmRefs | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2026-11-20T15:00:00Z")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> MeetingOutput:
        if self.end < self.start:
            raise ValueError("end is before start")
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
