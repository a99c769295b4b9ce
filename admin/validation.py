"""`mappings validate --against`: a mapping checked against the org's live providers.

Each destination whose connection is among those asked for is described by a connector
built from the stored credentials: the place must exist, fields exist, be writable and fit,
picklist values must exist, required fields be filled (all of that in
`mappings.validate_against`). A place a connector describes without fields (a Slack
channel) is writable only if the connector had nothing to warn about: its notes say why
not, e.g. that the bot is not in the channel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy.orm import Session

from admin.connections import build_connector
from admin.errors import Invalid
from admin.versions import check_fits_org, connection_orgs, parse
from connectors.base import Connector, TargetSchema
from connectors.errors import ConnectorError, RateLimited
from mappings import Mapping, MappingError, validate_against
from mappings.validate import static_target
from meetsync.settings import Settings

ALL = "all"
# a provider that asks to slow down (429 with Retry-After) is waited out, up to this much in
# all: an admin validating a mapping would rather wait seconds than be told to try again
RATE_LIMIT_WAIT_S = 30.0


class ProviderDescriber:
    """`describe` for validate_against: live for the chosen connections, silent otherwise."""

    def __init__(
        self, session: Session, settings: Settings, mapping: Mapping, against: Collection[str]
    ) -> None:
        self.session, self.settings, self.mapping = session, settings, mapping
        owners = connection_orgs(session)
        chosen = set(mapping.connections.values()) if ALL in against else set(against)
        # never describe through another org's credentials, whatever the mapping says
        self.live = {c for c in chosen if owners.get(c) == mapping.org}
        self._connectors: dict[str, Connector] = {}
        self._seen: dict[tuple[str, str], TargetSchema] = {}

    def __call__(self, connector: str, target: dict[str, Any]) -> TargetSchema:
        connection = self.mapping.connections.get(connector)
        if connection not in self.live:
            return TargetSchema(target=target)  # not asked for: exists, fields unknown
        key = (connector, json.dumps(target, sort_keys=True, default=str))
        if key not in self._seen:
            self._seen[key] = self._describe(str(connection), target)
        return self._seen[key]

    def _describe(self, connection: str, target: dict[str, Any]) -> TargetSchema:
        waited = 0.0
        while True:
            try:
                return self._connector(connection).describe(target)
            except RateLimited as exc:
                wait = max(exc.retry_after, 0.5)
                if waited + wait > RATE_LIMIT_WAIT_S:
                    raise
                time.sleep(wait)
                waited += wait

    def _connector(self, name: str) -> Connector:
        if name not in self._connectors:
            self._connectors[name] = build_connector(
                self.session, self.settings, name, org_id=self.mapping.org
            )
        return self._connectors[name]

    def warnings(self) -> list[MappingError]:
        """Places that exist but cannot take writes, from the notes of field-less describes."""
        problems = []
        for index, dest in enumerate(self.mapping.destinations):
            key = (dest.connector, json.dumps(static_target(dest.target), sort_keys=True))
            schema = self._seen.get(key)
            if schema is None or not schema.exists or schema.fields:
                continue
            for note in schema.notes:
                message, _, fix = note.partition(": ")
                path = f"destinations[{index}].target"
                problems.append(
                    MappingError(
                        f"{dest.connector}: {message}",
                        path=path,
                        file=self.mapping.source_file,
                        line=self.mapping.line_of(path),
                        fix=fix or None,
                    )
                )
        return problems


def validate_live(
    session: Session, settings: Settings, mapping: Mapping, against: Collection[str]
) -> list[MappingError]:
    """Every problem with the mapping, checked against the providers of `against`
    (connection names, or "all" for every connection the mapping names)."""
    used = set(mapping.connections.values())
    unused = sorted(set(against) - used - {ALL})
    if unused:
        raise Invalid(
            f"the mapping writes through none of {', '.join(unused)}; "
            f"it uses {', '.join(sorted(used)) or 'no connection'} (or say --against all)"
        )
    describe = ProviderDescriber(session, settings, mapping, against)
    try:
        problems = validate_against(mapping, describe, connection_orgs=connection_orgs(session))
    except ConnectorError as exc:
        raise Invalid(
            f"could not check the mapping against the providers ({type(exc).__name__}: "
            f"{str(exc)[:200]}): test the connection (`meetsync connections test NAME`), or "
            "store the mapping unchecked (`mappings apply --offline`)"
        ) from None
    problems.extend(describe.warnings())
    return sorted(problems, key=lambda p: (p.line or 0, p.path))


def describe_place(
    session: Session, settings: Settings, org_id: str, connection: str, target: dict[str, Any]
) -> TargetSchema:
    """What a place of one of the org's connections accepts (fields, types, picklists), for
    the console's field pickers; Invalid with the provider's words when it cannot say."""
    connector = build_connector(session, settings, connection, org_id=org_id)
    try:
        return connector.describe(target)
    except ConnectorError as exc:
        raise Invalid(f"{connection}: {type(exc).__name__}: {exc}") from None


def check_body(
    session: Session, settings: Settings, org_id: str, body: str, against: Collection[str]
) -> list[MappingError]:
    """Every problem of a mapping body for this org, each located: its YAML and shape, its
    org and connections, then the providers of `against` (what `validate` answers)."""
    try:
        mapping = parse(body)
        check_fits_org(session, org_id, mapping)
    except MappingError as exc:
        return list(exc.problems)
    return validate_live(session, settings, mapping, against)
