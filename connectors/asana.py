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
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import asana
import urllib3
from asana.rest import ApiException

from connectors.base import (
    Check,
    ConnectionConfig,
    FieldSchema,
    Limits,
    Op,
    Receipt,
    TargetSchema,
)
from connectors.errors import (
    AuthExpired,
    ConnectorError,
    InvalidMapping,
    Permanent,
    RateLimited,
    Transient,
)
from connectors.write_policy import decide, policies_of, remember, written_fields

DEFAULT_BASE_URL = "https://app.asana.com/api/1.0"
VALUE_FIELDS = (
    "name,notes,html_notes,due_on,assignee.email,custom_fields.name,custom_fields.display_value"
)
TASK_FIELDS = "gid,permalink_url,external"
WRITE_FIELDS = f"{TASK_FIELDS},{VALUE_FIELDS}"
# Op field → the task property it sets; followers are additive and never overwrite anything.
PROPERTY = {
    "name": "name",
    "notes": "notes",
    "html_notes": "html_notes",
    "due_on": "due_on",
    "assignee_email": "assignee",
    "custom_fields": "custom_fields",
}
T = TypeVar("T")


class AsanaConnector:
    """Creates and updates Asana tasks, one per action item."""

    name: ClassVar[str] = "asana"
    # the provider's own hosts; any other needs the operator's allow-list
    endpoint_hosts: ClassVar[tuple[str, ...]] = ("app.asana.com",)
    # Asana allows 1,500 requests per minute per token on paid domains (150 on free ones)
    # and 15 concurrent write requests; the quota counts in minute windows, so a modest
    # burst keeps one meeting's writes from spending a whole minute's budget at once.
    default_limits: ClassVar[Limits] = Limits(rate=1500 / 60, burst=100, concurrency=15)

    def __init__(self, config: ConnectionConfig) -> None:
        token = config.credentials.get("token")
        if not token:
            raise InvalidMapping(f"connection {config.name!r} has no Asana token")
        configuration = asana.Configuration()
        configuration.host = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        configuration.access_token = token
        configuration.retry_strategy = False  # errors reach _call unretried and unwrapped
        configuration.proxy = config.options.get("proxy")
        client = asana.ApiClient(configuration)
        # The SDK starts a thread pool per client for async calls we never make; left to
        # its __del__ it fails at interpreter exit. Close it now.
        client.pool.close()
        client.pool.join()
        del client.pool
        self.timeout = (
            float(config.options.get("connect_timeout", 5)),
            float(config.options.get("read_timeout", 30)),
        )
        self.default_workspace: str | None = config.options.get("workspace")
        self.tasks = asana.TasksApi(client)
        self.sections = asana.SectionsApi(client)
        self.projects = asana.ProjectsApi(client)
        self.users = asana.UsersApi(client)
        self.workspaces = asana.WorkspacesApi(client)
        self.settings = asana.CustomFieldSettingsApi(client)
        self._workspaces: dict[str, str] | None = None
        self._projects: dict[str, dict[str, str]] = {}
        self._sections: dict[str, dict[str, str]] = {}
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}
        self._people: dict[str, str | None] = {}

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

    def find(self, op: Op) -> Receipt | None:
        """The task carrying this op's key in its external gid, if Asana has one."""
        try:
            task = self._call(
                lambda: self.tasks.get_task(
                    f"external:{op.key}", {"opt_fields": TASK_FIELDS}, _request_timeout=self.timeout
                )
            )
        except Permanent as exc:
            if exc.provider_code == "404":
                return None
            raise
        stored = (task.get("external") or {}).get("data")
        return Receipt(
            external_id=task["gid"],
            url=task.get("permalink_url"),
            object="task",
            extra={"payload_hash": stored, "warnings": []},
        )

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

    def current_values(self, op: Op) -> dict[str, Any] | None:
        """The task's present values of the op's fields (for previews); None if not created yet."""
        found = self.find(op)
        if found is None:
            return None
        task = self._read(found.external_id, extra=",followers.email")
        return self._present(task, op, list(op.fields))

    def _read(self, gid: str, extra: str = "") -> dict[str, Any]:
        task: dict[str, Any] = self._call(
            lambda: self.tasks.get_task(
                gid, {"opt_fields": VALUE_FIELDS + extra}, _request_timeout=self.timeout
            )
        )
        return task

    def _present(self, task: dict[str, Any], op: Op, names: list[str]) -> dict[str, Any]:
        """A task's values of the op fields `names`, spelt as the mapping spells them."""
        present: dict[str, Any] = {}
        for name in names:
            if name == "assignee_email":
                present[name] = self._email_of(task.get("assignee"))
            elif name == "followers_emails":
                present[name] = sorted(
                    filter(None, (self._email_of(f) for f in task.get("followers") or []))
                )
            elif name == "custom_fields":
                mine = op.fields.get("custom_fields") or {}
                present[name] = {
                    f["name"]: f.get("display_value")
                    for f in task.get("custom_fields") or []
                    if f["name"] in mine
                }
            else:
                present[name] = task.get(name)
        return present

    def _email_of(self, user: dict[str, Any] | None) -> str | None:
        """A user's email: from the response when Asana expanded it, else looked up once."""
        if not user:
            return None
        if user.get("email"):
            return str(user["email"])
        known = {gid: email for email, gid in self._people.items() if gid}
        if user["gid"] not in known:
            found = self._call(
                lambda: self.users.get_user(
                    user["gid"], {"opt_fields": "email"}, _request_timeout=self.timeout
                )
            )
            self._people[str(found.get("email", "")).lower()] = user["gid"]
            return found.get("email")
        return known[user["gid"]]

    # -- writing ------------------------------------------------------------------------
    def _task_data(self, op: Op, project: str, warnings: list[str]) -> dict[str, Any]:
        fields = op.fields
        if not fields.get("name"):
            raise InvalidMapping("upsert_task needs fields.name")
        # Only what the op carries: a field the mapping left out (an empty value) must not
        # blank what a person set on the task since.
        data: dict[str, Any] = {
            "name": fields["name"],
            "external": {"gid": op.key, "data": op.payload_hash},
        }
        if fields.get("due_on"):
            data["due_on"] = fields["due_on"]
        if fields.get("html_notes"):
            data["html_notes"] = fields["html_notes"]
        elif fields.get("notes"):
            data["notes"] = fields["notes"]
        email = fields.get("assignee_email")
        if email:
            data["assignee"] = self._person(email)
            if data["assignee"] is None:
                del data["assignee"]
                warnings.append(f"no Asana user with email {email}; left unassigned")
        if fields.get("custom_fields"):
            data["custom_fields"] = self._custom_values(project, fields["custom_fields"])
        if isinstance(fields.get("completed"), bool):
            data["completed"] = fields["completed"]  # `on_missing: close` finishes the task
        return data

    def _write(
        self,
        op: Op,
        prior: Receipt | None,
        data: dict[str, Any],
        project: str,
        section: str | None,
        followers: list[str],
    ) -> dict[str, Any]:
        if prior is not None:
            return self._update(prior.external_id, data, project, section, followers)
        created = {**data, "followers": followers}
        if section:
            created["memberships"] = [{"project": project, "section": section}]
        else:
            created["projects"] = [project]
        try:
            task: dict[str, Any] = self._call(
                lambda: self.tasks.create_task(
                    {"data": created}, {"opt_fields": WRITE_FIELDS}, _request_timeout=self.timeout
                )
            )
            return task
        except Permanent as exc:
            if not exc.message.startswith("external"):
                raise
            # An earlier attempt landed but its receipt was lost: update that task instead.
            found = self.find(op)
            if found is None:
                raise
            return self._update(found.external_id, data, project, section, followers)

    def _followers(self, op: Op, warnings: list[str]) -> list[str]:
        gids = []
        for email in op.fields.get("followers_emails") or []:
            gid = self._person(email)
            if gid is None:
                warnings.append(f"no Asana user with email {email}; not added as follower")
            else:
                gids.append(gid)
        return gids

    def _update(
        self,
        gid: str,
        data: dict[str, Any],
        project: str,
        section: str | None,
        followers: list[str],
    ) -> dict[str, Any]:
        try:
            task: dict[str, Any] = self._call(
                lambda: self.tasks.update_task(
                    {"data": data}, gid, {"opt_fields": WRITE_FIELDS}, _request_timeout=self.timeout
                )
            )
        except Permanent as exc:
            if exc.provider_code == "404":
                raise Permanent(
                    f"task {gid} no longer exists in Asana: {exc.message}", provider_code="404"
                ) from exc
            raise
        if followers:
            self._call(
                lambda: self.tasks.add_followers_for_task(
                    {"data": {"followers": followers}},
                    gid,
                    {"opt_fields": "gid"},
                    _request_timeout=self.timeout,
                )
            )
        if section:
            self._call(
                lambda: self.sections.add_task_for_section(
                    section, {"body": {"data": {"task": gid}}}, _request_timeout=self.timeout
                )
            )
        return task

    def _custom_values(self, project: str, values: dict[str, Any]) -> dict[str, Any]:
        known = self._custom_fields(project)
        out: dict[str, Any] = {}
        for name, value in values.items():
            field = known.get(name)
            if field is None:
                raise InvalidMapping(
                    f"project {project} has no custom field {name!r}; "
                    f"it has: {', '.join(sorted(known)) or 'none'}"
                )
            if value is None or field["type"] not in {"enum", "multi_enum"}:
                out[field["gid"]] = value
                continue
            names = value if isinstance(value, list) else [value]
            missing = [n for n in names if n not in field["options"]]
            if missing:
                raise InvalidMapping(
                    f"custom field {name!r} has no option {missing[0]!r}; "
                    f"options: {', '.join(field['options'])}"
                )
            options = [field["options"][n] for n in names]
            out[field["gid"]] = options if field["type"] == "multi_enum" else options[0]
        return out

    # -- names to gids, cached per instance ---------------------------------------------------
    def _place(self, target: dict[str, Any]) -> tuple[str, str | None]:
        """(project gid, section gid or None) for a target of names or gids."""
        workspace = self._workspace(target.get("workspace") or self.default_workspace)
        wanted = target.get("project")
        if not wanted:
            raise InvalidMapping("an Asana target needs a project")
        if workspace not in self._projects:
            found = self._call(
                lambda: list(
                    self.projects.get_projects(
                        {"workspace": workspace, "archived": False, "opt_fields": "name"},
                        _request_timeout=self.timeout,
                    )
                )
            )
            self._projects[workspace] = {p["name"]: p["gid"] for p in found}
        project = _pick("project", wanted, self._projects[workspace])
        name = target.get("section")
        if not name:
            return project, None
        if project not in self._sections:
            found = self._call(
                lambda: list(
                    self.sections.get_sections_for_project(
                        project, {"opt_fields": "name"}, _request_timeout=self.timeout
                    )
                )
            )
            self._sections[project] = {s["name"]: s["gid"] for s in found}
        return project, _pick(f"section in project {wanted!r}", name, self._sections[project])

    def _workspace(self, wanted: str | None) -> str:
        if self._workspaces is None:
            found = self._call(
                lambda: list(
                    self.workspaces.get_workspaces(
                        {"opt_fields": "name"}, _request_timeout=self.timeout
                    )
                )
            )
            self._workspaces = {w["name"]: w["gid"] for w in found}
        if wanted:
            return _pick("workspace", wanted, self._workspaces)
        if len(self._workspaces) != 1:
            raise InvalidMapping(
                "this Asana token sees several workspaces; name one: "
                + ", ".join(sorted(self._workspaces))
            )
        return next(iter(self._workspaces.values()))

    def _custom_fields(self, project: str) -> dict[str, dict[str, Any]]:
        if project not in self._fields:
            found = self._call(
                lambda: list(
                    self.settings.get_custom_field_settings_for_project(
                        project,
                        {
                            "opt_fields": "custom_field.name,custom_field.type,"
                            "custom_field.enum_options"
                        },
                        _request_timeout=self.timeout,
                    )
                )
            )
            fields = {}
            for setting in found:
                field = setting["custom_field"]
                options = {
                    o["name"]: o["gid"]
                    for o in field.get("enum_options") or []
                    if o.get("enabled", True)
                }
                fields[field["name"]] = {
                    "gid": field["gid"],
                    "type": field.get("type"),
                    "options": options,
                }
            self._fields[project] = fields
        return self._fields[project]

    def _person(self, email: str) -> str | None:
        """A user's gid by email, or None when the workspace has no such user."""
        key = email.strip().lower()
        if key not in self._people:
            try:
                user = self._call(
                    lambda: self.users.get_user(
                        key, {"opt_fields": "email"}, _request_timeout=self.timeout
                    )
                )
                self._people[key] = user["gid"]
            except Permanent as exc:
                if exc.provider_code not in {"400", "404"}:
                    raise
                self._people[key] = None
        return self._people[key]

    # -- the one place provider failures are classified ----------------------------------------
    def _call(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except ApiException as exc:
            raise _classify(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # timeouts, refused or reset connections, a response cut off mid-body
            raise Transient(f"Asana unreachable: {type(exc).__name__}: {exc}") from exc


_FIELD_TYPES = {
    "enum": "picklist",
    "multi_enum": "multipicklist",
    "text": "string",
    "number": "double",
    "date": "date",
    "people": "people",
}


def _classify(exc: ApiException) -> Exception:
    status = int(exc.status or 0)
    message = _message(exc)
    code = str(status)
    if status == 429:
        headers = exc.headers or {}
        retry_after = float(headers.get("Retry-After") or 60)
        return RateLimited(message, retry_after=retry_after, provider_code=code)
    if status == 401:
        return AuthExpired(message, provider_code=code)
    if status == 0 or status >= 500:
        return Transient(message, provider_code=code)
    return Permanent(message, provider_code=code)


def _message(exc: ApiException) -> str:
    """Asana's own words from `{"errors": [{"message": …}]}`, else the HTTP reason."""
    try:
        errors = json.loads(exc.body or b"{}").get("errors") or []
        return "; ".join(e["message"] for e in errors if e.get("message")) or str(exc.reason)
    except (ValueError, AttributeError, TypeError):
        return str(exc.reason)


def _pick(kind: str, wanted: str, known: dict[str, str]) -> str:
    """A gid from a name or a gid; InvalidMapping naming the miss and what exists."""
    if wanted in known:
        return known[wanted]
    if wanted in known.values():
        return wanted
    listed = ", ".join(sorted(known)) or "none"
    raise InvalidMapping(f"Asana has no {kind} {wanted!r}; it has: {listed}")
