"""Asana: one action, "upsert_task", through the official asana SDK (v5).

Idempotency rides on Asana's app-specific `external` field: each task is created with
`external = {"gid": op.key, "data": op.payload_hash}`, so `GET /tasks/external:<key>` finds
the outcome of a write whose response was lost, and the stored hash says whether a re-apply
has anything to change. Project, section, user and custom-field names are resolved to gids
once per connector instance.

A re-apply sends only the fields the op carries (the mapping leaves out empty values, so a
due date or assignee a person set is never blanked) and honours the op's write policies
(connectors/write_policy.py): with `if_empty` or `unless_edited` fields it reads the task
first and leaves those fields alone when it must, listing them in `extra["skipped"]`.
Every write asks Asana to answer with the task's fields, and the receipt keeps their
fingerprints (`extra["written"]`), so the next apply can tell a person's edit from ours.
Followers are only ever added, so no policy applies to them.

The SDK's own retries are switched off (it would retry 429/5xx GETs itself and never POSTs,
surfacing MaxRetryError): the push worker owns retries, and `_call` is the one place where
provider failures become RateLimited, Transient, Permanent or AuthExpired.

The connector is built in layers, a module each: asana_session.py (the SDK client and
`_call`), asana_names.py (names to gids), asana_tasks.py (`find`, reading and writing a
task) and, here, the rest of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.asana_tasks import AsanaTasks
from connectors.base import (
    Check,
    ConnectorFacts,
    FieldSchema,
    Limits,
    Op,
    Outcome,
    Receipt,
    TargetSchema,
)
from connectors.errors import AuthExpired, ConnectorError, InvalidMapping, Permanent, RateLimited
from connectors.write_policy import decide, policies_of, remember, written_fields

CONCURRENT_WRITES = 15  # Asana's concurrent writes a token, a batch's actions each one
# new tasks a batch request (of the ten Asana takes): the slots a push holds while it
# sends them, so three such pushes may be in flight at once, or fifteen of one task
BATCH_WRITES = 5


@dataclass
class _Prepared:
    """One op's write, ready to send (`AsanaConnector._prepared`)."""

    data: dict[str, Any]
    place: tuple[str, str | None]  # project, section
    followers: list[str]
    warnings: list[str]
    skipped: dict[str, str]


# Op field → the task property it sets; followers are additive and never overwrite anything.
PROPERTY = {
    "name": "name",
    "notes": "notes",
    "html_notes": "html_notes",
    "due_on": "due_on",
    "assignee_email": "assignee",
    "custom_fields": "custom_fields",
}


class AsanaConnector(AsanaTasks, ConnectorFacts):
    """Creates and updates Asana tasks, one per action item."""

    name: ClassVar[str] = "asana"
    # the provider's own hosts; any other needs the operator's allow-list
    endpoint_hosts: ClassVar[tuple[str, ...]] = ("app.asana.com",)
    # Asana allows 1,500 requests per minute per token on paid domains (150 on free ones)
    # and 15 concurrent write requests; the quota counts in minute windows, so a modest
    # burst keeps one meeting's writes from spending a whole minute's budget at once.
    # Each action of a batch request counts as a request and a concurrent write of its
    # own: a push holds one slot per task it sends at once (`writes_at_once`).
    default_limits: ClassVar[Limits] = Limits(
        rate=1500 / 60, burst=100, concurrency=CONCURRENT_WRITES
    )
    actions: ClassVar[tuple[str, ...]] = ("upsert_task",)
    writes_at_once: ClassVar[int] = BATCH_WRITES
    # a personal access token, or an OAuth app's client and the refresh token its grant returned
    credential_sets = (("token",), ("client_id", "client_secret", "refresh_token"))

    @classmethod
    def closing(cls, target: dict[str, Any]) -> dict[str, Any] | None:
        return {"completed": True}

    @classmethod
    def reopening(cls, target: dict[str, Any]) -> dict[str, Any] | None:
        return {"completed": False}

    # -- the contract ---------------------------------------------------------------------
    def describe(self, target: dict[str, Any]) -> TargetSchema:
        """Task fields plus the project's custom fields; exists=False for unknown places."""
        try:
            project, section = self._place(target)
        except InvalidMapping as exc:
            return TargetSchema(target=target, exists=False, notes=[exc.message])
        fields = [
            FieldSchema(name="name", label="Task name", required=True, length=1024),
            FieldSchema(name="notes", type="textarea", label="Description (plain text)"),
            FieldSchema(name="html_notes", type="html", label="Description (Asana rich text)"),
            FieldSchema(name="assignee_email", type="email", label="Assignee"),
            FieldSchema(name="due_on", type="date", label="Due date"),
            FieldSchema(name="followers_emails", type="email_list", label="Followers"),
        ]
        for name, field in self._custom_fields(project).items():
            options = list(field["options"]) or None
            fields.append(
                FieldSchema(
                    name=f"custom_fields.{name}",
                    label=name,
                    type=_FIELD_TYPES.get(field["type"], field["type"]),
                    picklist=options,
                    restricted=options is not None,
                )
            )
        notes = [f"project {project}" + (f", section {section}" if section else "")]
        return TargetSchema(target=target, fields=fields, notes=notes)

    def apply(self, op: Op, prior: Receipt | None) -> Receipt:
        """Create the task, or update the one `prior` names when the payload changed."""
        _known(op)
        if prior is not None and prior.extra.get("payload_hash") == op.payload_hash:
            return prior
        prepared = self._prepared(op, prior)
        data, project, section, followers = prepared.data, *prepared.place, prepared.followers
        try:
            task = self._write(op, prior, data, project, section, followers)
        except Permanent as exc:
            if "html_notes" not in data or not exc.message.startswith("html_notes"):
                raise
            # Asana's rich-text subset is narrow; plain notes still carry the evidence and link.
            prepared.warnings.append(f"Asana refused html_notes ({exc.message}); sent plain notes")
            del data["html_notes"]
            data["notes"] = op.fields.get("notes") or ""
            task = self._write(op, prior, data, project, section, followers)
        return self._receipt(op, prior, task, prepared)

    def apply_many(self, writes: Sequence[tuple[Op, Receipt | None]]) -> list[Outcome]:
        """`apply` for several ops: the new tasks created together through Asana's Batch
        API (BATCH_WRITES a request, each counted against the limits as a request of its
        own), the rest one by one. Each op's outcome is its receipt or its error; None for an op
        never sent, because a 429 or an expired credential stopped the writes (that error
        is the outcome of the op it stopped at)."""
        outcomes: list[Outcome] = [None] * len(writes)
        creates: list[tuple[int, Op, _Prepared]] = []
        for i, (op, prior) in enumerate(writes):
            try:
                if prior is not None:
                    outcomes[i] = self.apply(op, prior)
                else:
                    creates.append((i, op, self._prepared(op, None)))
            except (RateLimited, AuthExpired) as exc:
                outcomes[i] = exc  # the ops prepared before it are still sent
                break
            except ConnectorError as exc:
                outcomes[i] = exc
        if len(creates) == 1:  # one task: the plain request
            i, op, _ = creates[0]
            outcomes[i] = self._alone(op)
            return outcomes
        for start in range(0, len(creates), BATCH_WRITES):
            if not self._create_batch_of(creates[start : start + BATCH_WRITES], outcomes):
                break
        return outcomes

    def _create_batch_of(
        self, creates: list[tuple[int, Op, _Prepared]], outcomes: list[Outcome]
    ) -> bool:
        """One Batch API request's creates, their outcomes filled in; False when a 429 or an
        expired credential refused it (nothing of it was created, nothing more is sent)."""
        bodies = [self._created(op, p.data, *p.place, p.followers) for _, op, p in creates]
        try:
            tasks = self._create_batch(bodies)
        except (RateLimited, AuthExpired) as exc:
            outcomes[creates[0][0]] = exc
            return False
        except Permanent:
            # the batch itself refused (none of it ran): each task on its own says why
            for i, op, _ in creates:
                outcomes[i] = self._alone(op)
            return True
        except ConnectorError as exc:
            # Asana away mid-request: any of its tasks may exist, each is looked up next time
            for i, _, _ in creates:
                outcomes[i] = exc
            return True
        for (i, op, prepared), task in zip(creates, tasks, strict=True):
            if isinstance(task, dict):
                outcomes[i] = self._receipt(op, None, task, prepared)
            elif isinstance(task, Permanent) and task.message.startswith(
                ("html_notes", "external")
            ):
                outcomes[i] = self._alone(op)  # what `apply` does about either, for this one
            else:
                outcomes[i] = task
        return True

    def _alone(self, op: Op) -> Outcome:
        try:
            return self.apply(op, None)
        except ConnectorError as exc:
            return exc

    def _prepared(self, op: Op, prior: Receipt | None) -> _Prepared:
        """What writing the op takes: its task values, place, followers, warnings, and the
        fields its write policies keep it from writing now."""
        _known(op)
        place = self._place(op.target)
        warnings: list[str] = []
        data = self._task_data(op, place[0], warnings)
        followers = self._followers(op, warnings)
        skipped = self._guard(op, prior, data)
        return _Prepared(data, place, followers, warnings, skipped)

    def _receipt(
        self, op: Op, prior: Receipt | None, task: dict[str, Any], prepared: _Prepared
    ) -> Receipt:
        data = prepared.data
        sent = [name for name, prop in PROPERTY.items() if name in op.fields and prop in data]
        extra: dict[str, Any] = {
            "payload_hash": op.payload_hash,
            "warnings": prepared.warnings,
            "written": remember(
                task["gid"], prior.extra if prior else None, self._present(task, op, sent)
            ),
        }
        if prepared.skipped:
            extra["skipped"] = prepared.skipped
        return Receipt(
            external_id=task["gid"], url=task.get("permalink_url"), object="task", extra=extra
        )

    def _guard(self, op: Op, prior: Receipt | None, data: dict[str, Any]) -> dict[str, str]:
        """Drop from `data` what the op's write policies forbid now; the reasons, by field."""
        policies = policies_of(op.target, [n for n in op.fields if n in PROPERTY])
        if prior is None or not policies:
            return {}
        try:
            task = self._read(prior.external_id)
        except Permanent as exc:
            if exc.provider_code == "404":
                return {}  # deleted by a person: the update reports it
            raise
        wanted = {n: v for n, v in op.fields.items() if n in PROPERTY}
        current = self._present(task, op, list(wanted))
        written = written_fields(prior.extra, prior.external_id)
        decision = decide(wanted, policies, current, written)
        for name in decision.skipped:
            data.pop(PROPERTY[name], None)
        return decision.skipped

    def check(self) -> list[Check]:
        """`connections test`: who the token is (users/me) and which workspaces it sees."""
        try:
            me = self._call(
                lambda: self.users.get_user(
                    "me", {"opt_fields": "name,email"}, _request_timeout=self.timeout
                )
            )
        except ConnectorError as exc:
            return [Check(name="users/me", ok=False, detail=f"{type(exc).__name__}: {exc}")]
        checks = [Check(name="users/me", ok=True, detail=f"{me.get('name')} <{me.get('email')}>")]
        try:
            self._workspace(self.default_workspace)
            names = ", ".join(sorted(self._workspaces or {}))
            checks.append(Check(name="workspaces", ok=True, detail=names))
        except ConnectorError as exc:
            checks.append(Check(name="workspaces", ok=False, detail=f"{type(exc).__name__}: {exc}"))
        return checks

    def people(self) -> list[dict[str, Any]]:
        """For org memory (`meetsync memory sync`): the workspace's users and their ids."""
        workspace = self._workspace(self.default_workspace)
        users = self._call(
            lambda: list(
                self.users.get_users(
                    {"workspace": workspace, "opt_fields": "name,email"},
                    _request_timeout=self.timeout,
                )
            )
        )
        return [
            {"ref": u["gid"], "name": u["name"], "email": u.get("email"), "asana_id": u["gid"]}
            for u in users
            if u.get("name")
        ]

    def current_values(self, op: Op) -> dict[str, Any] | None:
        """The task's present values of the op's fields (for previews); None if not created yet."""
        found = self.find(op)
        if found is None:
            return None
        task = self._read(found.external_id, extra=",followers.email")
        return self._present(task, op, list(op.fields))


_FIELD_TYPES = {
    "enum": "picklist",
    "multi_enum": "multipicklist",
    "text": "string",
    "number": "double",
    "date": "date",
    "people": "people",
}


def _known(op: Op) -> None:
    if op.action != "upsert_task":
        raise InvalidMapping(f"asana has no action {op.action!r}; known: upsert_task")
