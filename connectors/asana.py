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

from typing import Any, ClassVar

from connectors.asana_tasks import AsanaTasks
from connectors.base import Check, ConnectorFacts, FieldSchema, Limits, Op, Receipt, TargetSchema
from connectors.errors import ConnectorError, InvalidMapping, Permanent
from connectors.write_policy import decide, policies_of, remember, written_fields

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
    default_limits: ClassVar[Limits] = Limits(rate=1500 / 60, burst=100, concurrency=15)
    actions: ClassVar[tuple[str, ...]] = ("upsert_task",)
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
        if op.action != "upsert_task":
            raise InvalidMapping(f"asana has no action {op.action!r}; known: upsert_task")
        if prior is not None and prior.extra.get("payload_hash") == op.payload_hash:
            return prior
        project, section = self._place(op.target)
        warnings: list[str] = []
        data = self._task_data(op, project, warnings)
        followers = self._followers(op, warnings)
        skipped = self._guard(op, prior, data)
        try:
            task = self._write(op, prior, data, project, section, followers)
        except Permanent as exc:
            if "html_notes" not in data or not exc.message.startswith("html_notes"):
                raise
            # Asana's rich-text subset is narrow; plain notes still carry the evidence and link.
            warnings.append(f"Asana refused html_notes ({exc.message}); sent plain notes")
            del data["html_notes"]
            data["notes"] = op.fields.get("notes") or ""
            task = self._write(op, prior, data, project, section, followers)
        sent = [name for name, prop in PROPERTY.items() if name in op.fields and prop in data]
        extra: dict[str, Any] = {
            "payload_hash": op.payload_hash,
            "warnings": warnings,
            "written": remember(
                task["gid"], prior.extra if prior else None, self._present(task, op, sent)
            ),
        }
        if skipped:
            extra["skipped"] = skipped
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
