"""The task itself: found by its key, read back, created or updated.

The key is Asana's `external` gid on an OAuth connection. Asana lets only OAuth apps use
`external`, so on a personal access token the key is a marker line at the end of the
task's notes (`meetsync-ref <op key> <payload hash>`), and `find()` looks for it among the
target project's tasks modified since its earliest attempt, page by page, on Asana's
clock as its `Date` headers tell it; a batch's ops in doubt share one scan (`find_many`).
A re-apply rewrites the marker only when it rewrites the notes, so a person's notes are
never replaced just to carry it.

Writes send only what the op carries, ask Asana to answer with the task's fields, add
followers (never remove them) and move the task to its section; a create refused because
an earlier attempt already holds the key updates that task instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import UTC, timedelta
from html import escape
from typing import Any

from connectors.asana_errors import classified, errors_message
from connectors.asana_names import AsanaNames
from connectors.base import Op, Receipt, earliest_write
from connectors.errors import ConnectorError, InvalidMapping, Permanent, Transient
from meetsync.models import as_utc

VALUE_FIELDS = (
    "name,notes,html_notes,due_on,assignee.email,custom_fields.name,custom_fields.display_value"
)
TASK_FIELDS = "gid,permalink_url,external"
WRITE_FIELDS = f"{TASK_FIELDS},{VALUE_FIELDS}"
MARKER = "meetsync-ref"
_MARKED = re.compile(rf"{MARKER} (\S+) (\S+)\s*$")
PAGE = 100  # tasks a page when looking for a marker
PAGE_ATTEMPTS = 3  # a page that fails transiently is asked again this often, 0.2 s then 0.4 s
# how far Asana's clock may be behind ours before its `Date` was measured (provider_clock)
CLOCK_MARGIN = timedelta(minutes=10)
MAX_TEXT_VALUE = 1_024  # characters Asana takes in a text custom field
BATCH_ACTIONS = 10  # actions Asana takes in one Batch API request


class AsanaTasks(AsanaNames):
    """Finding, reading and writing one Asana task per op."""

    def find(self, op: Op) -> Receipt | None:
        """The task carrying this op's key (external gid, or notes marker), if Asana has one."""
        if not self.oauth:
            return self.find_many([op])[op.key]
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

    def find_many(self, ops: Sequence[Op]) -> dict[str, Receipt | None]:
        """`find` for several ops: on a token, one marker scan per project for all of them
        (a push batch left in doubt by a crash costs one scan, not one each)."""
        if self.oauth:
            return {op.key: self.find(op) for op in ops}
        by_project: dict[str, set[str]] = {}
        for op in ops:
            by_project.setdefault(self._place(op.target)[0], set()).add(op.key)
        found: dict[str, Receipt | None] = dict.fromkeys((op.key for op in ops), None)
        for project, keys in by_project.items():
            found |= self._find_marked(project, keys)
        return found

    def _find_marked(self, project: str, keys: set[str]) -> dict[str, Receipt]:
        """The project's tasks whose notes end with one of these ops' markers: among those
        modified since the ops' earliest write could have landed (on Asana's clock) when
        the caller knows it, else among all of them. Stops once every one is found."""
        query: dict[str, Any] = {
            "project": project,
            "limit": PAGE,
            "opt_fields": "gid,permalink_url,notes",
        }
        if (since := self._modified_since()) is not None:
            query["modified_since"] = since
        found: dict[str, Receipt] = {}
        for task in self._scan(query):
            marked = _MARKED.search(task.get("notes") or "")
            if marked and marked.group(1) in keys:
                found[marked.group(1)] = Receipt(
                    external_id=task["gid"],
                    url=task.get("permalink_url"),
                    object="task",
                    extra={"payload_hash": marked.group(2), "warnings": []},
                )
                if len(found) == len(keys):
                    break
        return found

    def _modified_since(self) -> str | None:
        """`modified_since` for a marker scan: the earliest write (`written_after`) less how
        far Asana's clock may be behind ours, measured once per connector when unknown."""
        earliest = earliest_write()
        if earliest is None:
            return None
        if not self.clock.known:
            with suppress(ConnectorError):  # unmeasured, the margin stays wide
                self._call(
                    lambda: self.users.get_user(
                        "me", {"opt_fields": "gid"}, _request_timeout=self.timeout
                    )
                )
        since = as_utc(earliest) - self.clock.margin(CLOCK_MARGIN)
        return since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _scan(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The tasks `GET /tasks` lists, page by page, each page retried on its own: a scan
        of many pages retried whole as one call would rarely get through a flaky network."""
        offset: str | None = None
        while True:
            opts = query | ({"offset": offset} if offset else {})
            page = self._page(opts)
            yield from page.get("data") or []
            offset = (page.get("next_page") or {}).get("offset")
            if not offset:
                return

    def _page(self, opts: dict[str, Any]) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            page: dict[str, Any] = self._call(
                lambda: self.tasks.get_tasks(opts, full_payload=True, _request_timeout=self.timeout)
            )
            return page

        for attempt in range(PAGE_ATTEMPTS - 1):
            try:
                return fetch()
            except Transient:
                time.sleep(0.2 * 2**attempt)
        return fetch()

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

    # -- writing ------------------------------------------------------------------------
    def _task_data(self, op: Op, project: str, warnings: list[str]) -> dict[str, Any]:
        fields = op.fields
        if not fields.get("name"):
            raise InvalidMapping("upsert_task needs fields.name")
        # Only what the op carries: a field the mapping left out (an empty value) must not
        # blank what a person set on the task since.
        data: dict[str, Any] = {"name": fields["name"]}
        if self.oauth:
            data["external"] = {"gid": op.key, "data": op.payload_hash}
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
            data["custom_fields"] = self._custom_values(project, fields["custom_fields"], warnings)
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
            updated = data if self.oauth else marked(data, op, creating=False)
            return self._update(prior.external_id, updated, project, section, followers)
        created = self._created(op, data, project, section, followers)
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

    def _created(
        self, op: Op, data: dict[str, Any], project: str, section: str | None, followers: list[str]
    ) -> dict[str, Any]:
        """A new task's `data`: the op's values (marked on a token), followers and place."""
        if not self.oauth:
            data = marked(data, op, creating=True)
        created = {**data, "followers": followers}
        if section:
            created["memberships"] = [{"project": project, "section": section}]
        else:
            created["projects"] = [project]
        return created

    def _create_batch(
        self, created: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any] | ConnectorError]:
        """Create these tasks (at most BATCH_ACTIONS) in one Batch API request: each task,
        or the error its action answered. A request refused whole raises (a 429: Asana ran
        none of it; Asana away: any of it may have run)."""
        actions = [
            {
                "method": "post",
                "relative_path": "/tasks",
                "data": data,
                "options": {"fields": WRITE_FIELDS.split(",")},
            }
            for data in created
        ]
        # the whole answer at once (the SDK would otherwise page through it lazily, outside
        # `_call`, with a `limit` the Batch API has no use for)
        answered: dict[str, Any] = self._call(
            lambda: self.batch.create_batch_request(
                {"data": {"actions": actions}}, {}, full_payload=True, _request_timeout=self.timeout
            )
        )
        results = answered.get("data") or []
        if len(results) != len(actions):
            # any of them may have run: each op stays in doubt and is looked up next time
            raise Transient(f"Asana answered {len(results)} results for {len(actions)} actions")
        return [_action_outcome(result) for result in results]

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

    def _custom_values(
        self, project: str, values: dict[str, Any], warnings: list[str] | None = None
    ) -> dict[str, Any]:
        known = self._custom_fields(project)
        out: dict[str, Any] = {}
        for name, value in values.items():
            field = known.get(name)
            if field is None:
                raise InvalidMapping(
                    f"project {project} has no custom field {name!r}; "
                    f"it has: {', '.join(sorted(known)) or 'none'}"
                )
            if field["type"] == "text" and isinstance(value, str) and len(value) > MAX_TEXT_VALUE:
                # Asana refuses a text value over 1,024 characters: keep the start, say so
                value = value[: MAX_TEXT_VALUE - 1] + "…"
                if warnings is not None:
                    warnings.append(f"custom field {name!r} cut to {MAX_TEXT_VALUE} characters")
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


def _action_outcome(result: dict[str, Any]) -> dict[str, Any] | ConnectorError:
    """A batch action's task, or the connector error its status and body say."""
    status = int(result.get("status_code") or 0)
    body = result.get("body") or {}
    if 200 <= status < 300 and isinstance(body.get("data"), dict):
        task: dict[str, Any] = body["data"]
        return task
    message = errors_message(body) or f"batch action answered {status}"
    return classified(status, message, (result.get("headers") or {}).get("retry-after"))


def marked(data: dict[str, Any], op: Op, *, creating: bool) -> dict[str, Any]:
    """`data` with the op's marker line ending the notes it writes: always on a create, and
    on an update only when the update rewrites the notes anyway."""
    line = f"{MARKER} {op.key} {op.payload_hash}"
    out = dict(data)
    if out.get("html_notes"):
        html = str(out["html_notes"])
        close = html.rfind("</body>")
        if close != -1:
            out["html_notes"] = f"{html[:close]}\n{escape(line)}{html[close:]}"
            return out
    notes = str(out.get("notes") or "")
    if notes or creating:
        out["notes"] = f"{notes}\n\n{line}" if notes else line
    return out
