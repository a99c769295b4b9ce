"""OpenAI Chat Completions emulator, answered by the deterministic rules model.

Served under /v1 like api.openai.com: `POST /v1/chat/completions` as the openai SDK's
`chat.completions.parse(response_format=<pydantic model>)` sends it, and `GET /v1/models`.
Faithful where the client can tell: the completion object, `usage`, the
`x-ratelimit-*` headers on every response, and error bodies
`{"error": {"message", "type", "param", "code"}}` with 400, 401, 404, 429 (+ Retry-After)
and 500; an unknown path or method is OpenAI's 404 "Invalid URL (METHOD /path)".

Strict where OpenAI is: an argument the API does not define is 400 "Unrecognized request
argument supplied"; reasoning models (gpt-5, o-series: `REASONING`) refuse `temperature`
other than 1 (`unsupported_value`), `top_p`, penalties, logprobs and `max_tokens`
(`unsupported_parameter`), and accept only their own `reasoning_effort` values, which
classic models refuse; a strict `json_schema` whose root is not an object is 400
`invalid_json_schema`; an account out of credit is 429 `insufficient_quota`, no Retry-After.

Options (Sandbox(options={"openai": {...}})):
    api_keys            accepted keys; None accepts any non-empty bearer token
    rpm, tpm            requests and tokens per minute per key (token buckets)
    models              model name → context window in tokens
    refusal_trigger     a message containing it gets a refusal
    filter_trigger      a message containing it ends with finish_reason "content_filter"
    out_of_quota        keys whose account has no credit left (429 insufficient_quota);
                        True: every key. A fault `{"kind": "error", "code":
                        "insufficient_quota"}` serves the same answer for a while
    invalid_trigger     the first (non-repair) answer for a prompt containing it is invalid
    broken_trigger      every answer for a prompt containing it is invalid, repairs too
    hostile_bytes       how big a `hostile-huge` answer is (default 8 MiB)

Models named `hostile-echo`, `hostile-invent`, `hostile-prompt` and `hostile-huge` are
answered by sandbox/hostile_model.py instead: schema-valid answers that lie, quote the
prompt, or ignore max_completion_tokens, for testing what meetsync lets through.
    clock               monotonic clock, for tests that move time
    compat              a compatibility mode (sandbox/openai_compat.py): what a vLLM,
                        Ollama, llama.cpp or gateway endpoint refuses and how it answers
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from meetsync.tokens import CONTEXT_WINDOWS, count_tokens, truncate_tokens
from sandbox import hostile_model, rules_model
from sandbox.base import ProviderApp
from sandbox.openai_compat import Compat, schema_in_prompt
from sandbox.openai_requests import Rejected, message_text, validate

log = logging.getLogger(__name__)

DEFAULT_MODELS = CONTEXT_WINDOWS  # the models it serves and their context windows
REFUSAL = "I'm sorry, but I can't help with that request."
_MAX_LOG = 1_000
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def _duration(seconds: float) -> str:
    """OpenAI's reset format: '20ms', '1s', '6m0s'."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{int(rest)}s"
    return f"{rest:.3g}s"


class _Bucket:
    """A per-minute token bucket that refills continuously, like OpenAI's limiter."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.capacity / 60)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 when it is now)."""
        self._refill()
        if self.level >= amount:
            return 0.0
        return (amount - self.level) * 60 / self.capacity

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount

    def headers(self, kind: str) -> dict[str, str]:
        self._refill()
        return {
            f"x-ratelimit-limit-{kind}": str(int(self.capacity)),
            f"x-ratelimit-remaining-{kind}": str(max(0, int(self.level))),
            f"x-ratelimit-reset-{kind}": _duration(
                (self.capacity - self.level) * 60 / self.capacity
            ),
        }


def openai_error(
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's body shape."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers or {})


class OpenAISandbox(ProviderApp):
    """The OpenAI emulator; state is the completions served and the rate-limit buckets."""

    name = "openai"

    def seed(self) -> None:
        options = self.options
        self.clock: Callable[[], float] = options.get("clock", time.monotonic)
        self.api_keys: set[str] | None = (
            set(options["api_keys"]) if options.get("api_keys") is not None else None
        )
        self.rpm = int(options.get("rpm", 10_000))
        self.tpm = int(options.get("tpm", 30_000_000))
        hostile = dict.fromkeys(hostile_model.MODELS, 128_000)
        self.models: dict[str, int] = {**DEFAULT_MODELS, **hostile, **options.get("models", {})}
        self.hostile_bytes = int(options.get("hostile_bytes", hostile_model.HUGE_BYTES))
        self.refusal_trigger: str = options.get("refusal_trigger", "SANDBOX_REFUSE")
        self.filter_trigger: str = options.get("filter_trigger", "SANDBOX_CONTENT_FILTER")
        quota = options.get("out_of_quota", ())
        self.all_out_of_quota = quota is True
        self.out_of_quota: set[str] = set() if quota is True else set(quota or ())
        self.invalid_trigger: str = options.get("invalid_trigger", "SANDBOX_INVALID_OUTPUT")
        self.broken_trigger: str = options.get("broken_trigger", "SANDBOX_ALWAYS_INVALID")
        self.compat = Compat.of(options.get("compat"))
        self.buckets: dict[str, tuple[_Bucket, _Bucket]] = {}
        self.completions = 0
        self.log: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        return {"completions": self.completions, "requests": list(self.log)}

    def error_response(
        self,
        status: int,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> JSONResponse:
        headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else {}
        if code == "insufficient_quota":
            return openai_error(429, message or QUOTA_MESSAGE, code, code=code)
        if code is not None:
            return openai_error(status, message or code, "invalid_request_error", code=code)
        if status == 429:
            return openai_error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if status == 401:
            return openai_error(
                401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key"
            )
        if status >= 500:
            return openai_error(
                status,
                "The server had an error while processing your request.",
                "server_error",
                headers=headers,
            )
        return openai_error(status, f"injected {status}", "invalid_request_error", headers=headers)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            # Anything else, any method, is OpenAI's JSON 404, never a bare 404/405 page.
            Route("/{path:path}", self._invalid_url, methods=_ALL_METHODS),
        ]

    # -- handlers ---------------------------------------------------------------------
    async def _invalid_url(self, request: Request) -> JSONResponse:
        return openai_error(
            404, f"Invalid URL ({request.method} {request.url.path})", "invalid_request_error"
        )

    async def _models(self, request: Request) -> JSONResponse:
        try:
            self._key(request)
        except Rejected as reject:
            return openai_error(
                reject.status, reject.message, reject.type, reject.param, reject.code
            )
        data = [
            {"id": name, "object": "model", "created": 1_715_367_049, "owned_by": "system"}
            for name in self.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        request_id = "req_" + secrets.token_hex(16)
        key = ""
        try:
            key = self._key(request)
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                raise Rejected(
                    400,
                    "We could not parse the JSON body of your request. (HINT: "
                    "This likely means you aren't using your HTTP library correctly.)",
                ) from exc
            call = validate(body, self.models)
            refused = self.compat.refusal(body)
            if refused:
                raise Rejected(400, refused, param="response_format")
            prompt_tokens = sum(count_tokens(message_text(m)) + 4 for m in call["messages"]) + 3
            limit = call["max_output"]
            if prompt_tokens + (limit or 0) > self.models[call["model"]]:
                raise Rejected(
                    400,
                    f"This model's maximum context length is {self.models[call['model']]} "
                    f"tokens. However, your messages resulted in {prompt_tokens} tokens. "
                    "Please reduce the length of the messages.",
                    param="messages",
                    code="context_length_exceeded",
                )
            if self.all_out_of_quota or key in self.out_of_quota:
                raise Rejected(429, QUOTA_MESSAGE, "insufficient_quota", code="insufficient_quota")
            self._admit(key, call["model"], prompt_tokens + (limit or 0))
            message, finish, completion_tokens = self._complete(call, limit)
        except Rejected as reject:
            headers = {"x-request-id": request_id, **self._limit_headers(key)}
            if reject.retry_after is not None:
                headers["Retry-After"] = str(max(1, math.ceil(reject.retry_after)))
                headers["retry-after-ms"] = str(int(reject.retry_after * 1000))
            error = {"message": reject.message, "type": reject.type, "param": reject.param,
                     "code": reject.code}  # fmt: skip
            return self.compat.error(reject.status, {"error": error}, headers)
        created = int(time.time())
        completion = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": created,
            "model": _dated(call["model"]),
            "choices": [
                {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
                for i in range(call["n"])
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens * call["n"],
                "total_tokens": prompt_tokens + completion_tokens * call["n"],
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox_rules",
        }  # fmt: skip
        if not self.compat.usage:
            del completion["usage"]
        with self.lock:
            self.completions += 1
            self.log.append(
                {
                    "id": completion["id"],
                    "model": call["model"],
                    "schema": call["schema_name"],
                    "response_format": call["response_format"],
                    "messages": len(call["messages"]),
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "finish_reason": finish,
                    "refused": message["refusal"] is not None,
                    "store": body.get("store"),
                    "temperature": body.get("temperature"),
                    "reasoning_effort": body.get("reasoning_effort"),
                    "token_parameter": "max_tokens"
                    if "max_tokens" in body
                    else ("max_completion_tokens" if "max_completion_tokens" in body else None),
                    "max_output_tokens": limit,
                }
            )
            del self.log[:-_MAX_LOG]
        headers = {
            "x-request-id": request_id,
            "openai-processing-ms": "1",
            "openai-version": "2020-10-01",
            **self._limit_headers(key),
        }
        if hostile_model.MODELS.get(call["model"]) == "huge":
            body = hostile_model.huge_body(completion, self.hostile_bytes)
            return StreamingResponse(body, media_type="application/json", headers=headers)
        return JSONResponse(completion, headers=headers)

    # -- steps ------------------------------------------------------------------------
    def _key(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Rejected(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if self.api_keys is not None and token not in self.api_keys:
            shown = token[:3] + "*" * 4 + token[-4:] if len(token) > 8 else "****"
            raise Rejected(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return token

    def _buckets(self, key: str) -> tuple[_Bucket, _Bucket]:
        with self.lock:
            if key not in self.buckets:
                self.buckets[key] = (_Bucket(self.rpm, self.clock), _Bucket(self.tpm, self.clock))
            return self.buckets[key]

    def _limit_headers(self, key: str) -> dict[str, str]:
        requests, tokens = self._buckets(key)
        with self.lock:
            return {**requests.headers("requests"), **tokens.headers("tokens")}

    def _admit(self, key: str, model: str, tokens_needed: int) -> None:
        requests, tokens = self._buckets(key)
        with self.lock:
            wait_requests = requests.wait_for(1)
            if wait_requests > 0:
                raise Rejected(
                    429,
                    f"Rate limit reached for {model} in organization org-sandbox on requests "
                    f"per min (RPM): Limit {self.rpm}, Used {self.rpm}, Requested 1. Please "
                    f"try again in {_duration(wait_requests)}.",
                    type_="requests",
                    code="rate_limit_exceeded",
                    retry_after=wait_requests,
                )
            if tokens_needed > self.tpm:
                raise Rejected(
                    429,
                    f"Request too large for {model} in organization org-sandbox on tokens per "
                    f"min (TPM): Limit {self.tpm}, Requested {tokens_needed}. The input or output "
                    "tokens must be reduced in order to run successfully.",
                    type_="tokens",
                    code="rate_limit_exceeded",
                )
            wait_tokens = tokens.wait_for(tokens_needed)
            if wait_tokens > 0:
                used = int(tokens.capacity - tokens.level)
                raise Rejected(
                    429,
                    f"Rate limit reached for {model} in organization org-sandbox on tokens per "
                    f"min (TPM): Limit {self.tpm}, Used {used}, Requested {tokens_needed}. "
                    f"Please try again in {_duration(wait_tokens)}.",
                    type_="tokens",
                    code="rate_limit_exceeded",
                    retry_after=wait_tokens,
                )
            requests.take(1)
            tokens.take(tokens_needed)

    def _complete(self, call: dict[str, Any], limit: int | None) -> tuple[dict[str, Any], str, int]:
        messages = call["messages"]
        texts = [message_text(m) for m in messages]
        message: dict[str, Any] = {
            "role": "assistant", "content": None, "refusal": None, "annotations": [],
        }  # fmt: skip
        if any(self.refusal_trigger in text for text in texts):
            message["refusal"] = REFUSAL
            return message, "stop", count_tokens(REFUSAL)
        if any(self.filter_trigger in text for text in texts):
            # the answer is withheld part-way: what was written so far, flagged
            message["content"] = '{"action_items": ['
            return message, "content_filter", count_tokens(message["content"])
        mode = hostile_model.MODELS.get(call["model"])
        if mode == "huge":  # the body is padded while it is sent; it claims to fit
            message["content"] = hostile_model.PAD
            return message, "stop", limit or 4096
        if mode is not None:
            message["content"] = hostile_model.answer(mode, messages, call["schema"])
            return message, "stop", count_tokens(message["content"])
        shown = schema_in_prompt(texts) if call["schema"] is None else None
        try:
            data = rules_model.answer(messages, call["schema"] or shown)
        except Exception as exc:  # the model never leaks a traceback, like the real one
            log.exception("rules model failed")
            raise Rejected(
                500, "The server had an error while processing your request.", "server_error"
            ) from exc
        repairing = any(m.get("role") == "assistant" for m in messages)
        if any(self.broken_trigger in text for text in texts) or (
            not repairing and any(self.invalid_trigger in text for text in texts)
        ):
            data = {"unexpected": "shape", "note": "deliberately invalid for tests"}
        if call["format"] == "text" and shown is None:
            content = _as_text(data)
        else:
            content = json.dumps(data, ensure_ascii=False)
        completion_tokens = count_tokens(content)
        if limit is not None and completion_tokens > limit:
            message["content"] = truncate_tokens(content, limit)
            return message, "length", limit
        message["content"] = content
        return message, "stop", completion_tokens


def _dated(model: str) -> str:
    dated = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}
    return dated.get(model, model)


def _as_text(data: dict[str, Any]) -> str:
    items = data.get("action_items") or []
    lines = [f"- {i.get('title')} ({i.get('owner') or 'unassigned'})" for i in items]
    return "\n".join(lines) if lines else "No action items."
