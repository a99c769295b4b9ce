"""The Salesforce emulator: OAuth, the REST API subset meetsync uses, limits and admin routes.

Options (via Sandbox(options={"salesforce": {...}})):
    daily_api_limit      calls per 24 h before 403 REQUEST_LIMIT_EXCEEDED (default 100000)
    external_id_field    False removes Meetsync_Key__c from Task and Event (default True)
    external_id_unique   False lets several records share a key, for 300s (default True)
    validation_rules     list of rules, see sandbox.salesforce.rules
    duplicate_rules      [{"object": "Contact"|"Lead"|"Account", "match": [fields]}]: a save
                         matching another record on every field is DUPLICATES_DETECTED
    query_batch_size     rows a query page holds before nextRecordsUrl (default 2000, as a
                         real org; Sforce-Query-Options batchSize asks for fewer)
    client_id, client_secret, refresh_token, jwt_public_key   the connected app

Admin routes, besides the shared ones in sandbox.base:
    POST /_sandbox/auth               {"action": "expire"|"revoke"|"restore"}
    POST /_sandbox/records            {"object", "fields"}: insert bypassing permissions
    GET|POST /_sandbox/validation_rules  {"rules": [...]} replaces the org's rules
    POST /_sandbox/limits             {"used": n, "limit": m}
    POST /_sandbox/users              {"email", "active": false}: deactivate a user; their
                                      records then fail with INACTIVE_OWNER_OR_USER
    POST /_sandbox/duplicate_rules    {"rules": [...]} replaces the active duplicate rules

Strict where a real org is: an upsert body naming the External ID (or Id) is INVALID_FIELD;
a SOQL string with an escape the reference does not list (backslash q) is MALFORMED_QUERY. Fault
rules may name a Salesforce `code`: UNABLE_TO_LOCK_ROW and CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY
(a flow's refusal) come with realistic messages.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.base import ProviderApp
from sandbox.salesforce.auth import Auth
from sandbox.salesforce.faults import (
    CODE_MESSAGES,
    INJECTED,
    SalesforceFault,
    invalid_session,
    not_found,
)
from sandbox.salesforce.rest import Call, dispatch
from sandbox.salesforce.rules import check_rule
from sandbox.salesforce.schema import build_objects
from sandbox.salesforce.store import MultipleMatches, Store

VERSIONS = [f"{v}.0" for v in range(20, 65)]
INTEGRATION_USER = {"name": "Meetsync Integration", "title": "Integration User"}


class SalesforceSandbox(ProviderApp):
    """An in-memory org seeded from the world: users, accounts, contacts, opportunities."""

    name = "salesforce"

    def seed(self) -> None:
        opts = self.options
        self.daily_limit = int(opts.get("daily_api_limit", 100_000))
        self.api_used = 0
        if not hasattr(self, "auth"):
            self.auth = Auth(opts)
        self.auth.revoked = False
        objects = build_objects(
            external_id_field=opts.get("external_id_field", True),
            external_id_unique=opts.get("external_id_unique", True),
        )
        self.store = Store(objects)
        self.store.rules = [check_rule(dict(r)) for r in opts.get("validation_rules", [])]
        self.store.duplicate_rules = [dict(r) for r in opts.get("duplicate_rules", [])]
        self.describes = {name: o.describe() for name, o in objects.items()}
        # query locators: each holds the rows after the batch it followed
        self.query_batch = int(opts.get("query_batch_size", 2_000))
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self.locators = 0
        self._seed_world()

    def _seed_world(self) -> None:
        store, world = self.store, self.world
        domain = world.get("company", {}).get("domain", "example.com")
        people = [{**INTEGRATION_USER, "email": f"integration@{domain}"}, *world["internal"]]
        users = [
            store.insert(
                "User", _person(p) | {"Username": p["email"], "IsActive": True}, "", trusted=True
            )
            for p in people
        ]
        self.integration_user = users[0]["Id"]
        for user in users:
            user["CreatedById"] = user["LastModifiedById"] = self.integration_user
        owner = users[1]["Id"] if len(users) > 1 else self.integration_user
        for account in world.get("accounts", []):
            acct = store.insert(
                "Account",
                {"Name": account["name"], "Website": account.get("domain"), "OwnerId": owner},
                self.integration_user,
                trusted=True,
            )
            for contact in account.get("contacts", []):
                store.insert(
                    "Contact",
                    _person(contact) | {"AccountId": acct["Id"], "OwnerId": owner},
                    self.integration_user,
                    trusted=True,
                )
            for opp in account.get("opportunities", []):
                store.insert(
                    "Opportunity",
                    {
                        "Name": opp["name"],
                        "AccountId": acct["Id"],
                        "StageName": opp["stage"],
                        "Amount": opp.get("amount"),
                        "CloseDate": opp["close_date"],
                        "NextStep": opp.get("next_step"),
                        "OwnerId": owner,
                    },
                    self.integration_user,
                    trusted=True,
                )
        for lead in world.get("leads", []):
            store.insert(
                "Lead",
                _person(lead) | {"Company": lead.get("company", "Unknown"), "OwnerId": owner},
                self.integration_user,
                trusted=True,
            )

    def snapshot(self) -> dict[str, Any]:
        return {
            "records": {obj: list(rows.values()) for obj, rows in self.store.records.items()},
            "api_usage": {"used": self.api_used, "limit": self.daily_limit},
            "validation_rules": self.store.rules,
        }

    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.daily_limit}"}

    def error_response(
        self,
        status: int,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> JSONResponse:
        default_code, default_message = INJECTED.get(
            status, ("UNKNOWN_EXCEPTION", f"HTTP {status}")
        )
        code = code or default_code
        message = message or CODE_MESSAGES.get(code) or default_message
        headers = self.limit_header()
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        return JSONResponse(
            [{"message": message, "errorCode": code, "fields": []}],
            status_code=status,
            headers=headers,
        )

    def limits_body(self) -> dict[str, Any]:
        return {
            "DailyApiRequests": {
                "Max": self.daily_limit,
                "Remaining": max(0, self.daily_limit - self.api_used),
            },
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        }

    def global_describe(self) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [
                {
                    k: d[k]
                    for k in (
                        "name",
                        "label",
                        "labelPlural",
                        "keyPrefix",
                        "custom",
                        "createable",
                        "updateable",
                        "queryable",
                    )
                }
                for d in self.describes.values()
            ],
        }

    # -- HTTP -----------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route("/services/data", self._versions, methods=["GET"]),
            Route("/services/data/", self._versions, methods=["GET"]),
            Route(
                "/services/data/v{version}",
                self._api,
                methods=["GET", "POST", "PATCH", "DELETE", "PUT"],
            ),
            Route(
                "/services/data/v{version}/{rest:path}",
                self._api,
                methods=["GET", "POST", "PATCH", "DELETE", "PUT"],
            ),
            Route("/_sandbox/auth", self._admin_auth, methods=["POST"]),
            Route("/_sandbox/records", self._admin_records, methods=["POST"]),
            Route("/_sandbox/validation_rules", self._admin_rules, methods=["GET", "POST"]),
            Route("/_sandbox/limits", self._admin_limits, methods=["POST"]),
            Route("/_sandbox/users", self._admin_users, methods=["POST"]),
            Route("/_sandbox/duplicate_rules", self._admin_duplicates, methods=["POST"]),
        ]

    async def _versions(self, request: Request) -> Response:
        return JSONResponse(
            [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]
        )

    async def _token(self, request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, a dependency we skip.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        instance_url = f"{request.url.scheme}://{request.url.netloc}"
        with self.lock:
            usernames = {
                r["Username"].lower(): r["Id"]
                for r in self.store.records["User"].values()
                if r["IsActive"]
            }
            status, body = self.auth.grant(form, instance_url, usernames, self.integration_user)
        return JSONResponse(
            body,
            status_code=status,
            headers={"Cache-Control": "no-cache,must-revalidate,max-age=0"},
        )

    async def _api(self, request: Request) -> Response:
        version = request.path_params["version"]
        raw = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        tail = raw.split(f"/services/data/v{version}", 1)[-1]
        parts = [unquote(p) for p in tail.split("/") if p]
        with self.lock:
            try:
                if version not in VERSIONS:
                    raise not_found()
                user = self.auth.user_for(request.headers.get("authorization"))
                if user is None:
                    raise invalid_session()
                if self.api_used >= self.daily_limit:
                    raise SalesforceFault(
                        403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                    )
                self.api_used += 1
            except SalesforceFault as fault:
                return self._fault(fault)
        body: Any = None
        if request.method in ("POST", "PATCH", "PUT"):
            raw_body = await request.body()
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    return self._fault(
                        SalesforceFault(
                            400, "JSON_PARSER_ERROR", "Unexpected character in request body"
                        )
                    )
        call = Call(
            request.method, version, parts, dict(request.query_params), body, user,
            batch_size=_batch_size(request.headers.get("sforce-query-options", "")),
        )  # fmt: skip
        with self.lock:
            try:
                status, payload = dispatch(self, call)
            except SalesforceFault as fault:
                return self._fault(fault)
            except MultipleMatches as many:
                urls = [f"{call.base}/sobjects/{many.obj}/{i}" for i in many.record_ids]
                return JSONResponse(urls, status_code=300, headers=self.limit_header())
            headers = self.limit_header()
        if status == 204:
            return Response(status_code=204, headers=headers)
        return JSONResponse(payload, status_code=status, headers=headers)

    def _fault(self, fault: SalesforceFault) -> Response:
        headers = self.limit_header()
        if fault.status == 401:
            headers["WWW-Authenticate"] = "Token"
        return JSONResponse(fault.body(), status_code=fault.status, headers=headers)

    async def _admin_auth(self, request: Request) -> Response:
        action = (await request.json()).get("action", "")
        with self.lock:
            try:
                self.auth.admin(action)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "action": action})

    async def _admin_records(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            try:
                obj = self.store.object(body["object"]).name
                record = self.store.insert(
                    obj, body.get("fields", {}), self.integration_user, trusted=True
                )
            except SalesforceFault as fault:
                return JSONResponse(fault.body(), status_code=400)
            return JSONResponse(record, status_code=201)

    async def _admin_rules(self, request: Request) -> Response:
        if request.method == "POST":
            rules = (await request.json()).get("rules", [])
            try:
                checked = [check_rule(dict(r)) for r in rules]
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            with self.lock:
                self.store.rules = checked
        with self.lock:
            return JSONResponse({"rules": self.store.rules})

    async def _admin_users(self, request: Request) -> Response:
        """`{"email", "active": false}` deactivates a user (their records stay theirs)."""
        body = await request.json()
        email = str(body.get("email", "")).lower()
        with self.lock:
            for user in self.store.records["User"].values():
                if str(user.get("Email") or "").lower() == email:
                    user["IsActive"] = bool(body.get("active", False))
                    return JSONResponse({"id": user["Id"], "active": user["IsActive"]})
        return JSONResponse({"error": f"no user {email}"}, status_code=404)

    async def _admin_duplicates(self, request: Request) -> Response:
        """`{"rules": [{"object": "Contact", "match": ["Email"]}]}`: active duplicate rules."""
        rules = (await request.json()).get("rules", [])
        with self.lock:
            self.store.duplicate_rules = [dict(r) for r in rules]
            return JSONResponse({"rules": self.store.duplicate_rules})

    async def _admin_limits(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.api_used = int(body.get("used", self.api_used))
            self.daily_limit = int(body.get("limit", self.daily_limit))
            return JSONResponse({"used": self.api_used, "limit": self.daily_limit})


def _person(p: dict[str, Any]) -> dict[str, Any]:
    first, _, last = str(p["name"]).rpartition(" ")
    return {
        "FirstName": first or None,
        "LastName": last,
        "Email": p.get("email"),
        "Title": p.get("title"),
    }


def _batch_size(options: str) -> int:
    """batchSize from a Sforce-Query-Options header, clamped to Salesforce's 200-2000."""
    for part in options.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(200, min(2_000, int(value)))
    return 2_000
