"""The LLM boundary: one structured-output call through the openai SDK, errors mapped.

Every failure leaves here as an `extraction.errors` exception (or `Truncated`, which the
caller answers by splitting its input); the SDK's own exceptions never escape.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import openai
from openai.lib._parsing._completions import type_to_response_format_param
from pydantic import BaseModel

from extraction import compat, models
from extraction.answer_cap import AnswerTooLarge, answer_byte_cap, capping
from extraction.errors import (
    LLMInvalidOutput,
    LLMQuotaExhausted,
    LLMRateLimited,
    LLMRefused,
    LLMRequestRejected,
    LLMTransient,
)
from meetsync.settings import LLMSettings

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
DEFAULT_RETRY_AFTER_S = 1.0


class CallUsage(BaseModel):
    """Tokens and outcome of one LLM call."""

    task: str
    model: str
    prompt_version: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    estimated: bool = False  # counted locally: the server sent no usage
    repair: bool = False  # a call asking to repair an answer that did not validate


def cost(usage: list[CallUsage], prices: dict[str, tuple[float, float]]) -> float:
    """USD for these calls at the configured per-model prices."""
    total_usd = 0.0
    for call in usage:
        price_in, price_out = prices.get(call.model, (0.0, 0.0))
        total_usd += (call.input_tokens * price_in + call.output_tokens * price_out) / 1_000_000
    return total_usd


class Truncated(Exception):
    """The answer hit the output token limit; the caller should send less input."""

    def __init__(self, usage: CallUsage) -> None:
        super().__init__("answer truncated at the output token limit")
        self.usage = usage


class InputTooLong(LLMRequestRejected):
    """The prompt does not fit the model's context window."""


@dataclass(frozen=True)
class PlannedCall:
    """One call about to be sent, as a gate in front of the LLM sees it."""

    task: str
    model: str
    messages: list[dict[str, Any]]
    max_output_tokens: int


class CallGate(Protocol):
    """Asked before each call (may raise to postpone it) and told how each call went."""

    def before(self, call: PlannedCall) -> None: ...

    def after(self, call: PlannedCall, status: int, headers: Mapping[str, str]) -> None: ...


_gate: ContextVar[CallGate | None] = ContextVar("llm_call_gate", default=None)


@contextmanager
def gated(gate: CallGate) -> Iterator[None]:
    """Every call made inside (this thread or task) goes through `gate`."""
    token = _gate.set(gate)
    try:
        yield
    finally:
        _gate.reset(token)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs more CPU than the rest of a
    client, and a context is safe to share across clients and threads. The system's CAs
    (OpenSSL honours SSL_CERT_FILE and SSL_CERT_DIR)."""
    return ssl.create_default_context()


@functools.cache
def strict_format(schema: type[BaseModel]) -> Any:
    """The strict `json_schema` response format the SDK's `parse()` sends for `schema`,
    built once per schema: pydantic builds the JSON schema anew on every call otherwise
    (a twentieth of an extraction's CPU). The answer is validated against `schema` here."""
    return type_to_response_format_param(schema)


def make_client(settings: LLMSettings) -> openai.OpenAI:
    """An SDK client for `settings`, the caller's to close; loopback endpoints bypass any
    environment proxy."""
    compat.configure(settings.base_url, settings.structured_output)
    host = urlsplit(settings.base_url).hostname or ""
    trust_env = host not in _LOOPBACK
    http_client = openai.DefaultHttpxClient(
        trust_env=trust_env,
        verify=_tls_context(),
        timeout=settings.timeout_s,
        event_hooks={"response": [capping(answer_byte_cap(settings.max_output_tokens))]},
    )
    return openai.OpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key.get_secret_value(),
        max_retries=0,
        timeout=settings.timeout_s,
        http_client=http_client,
    )


_shared: dict[tuple[Any, ...], openai.OpenAI] = {}
_shared_lock = threading.Lock()
os.register_at_fork(after_in_child=_shared.clear)  # a child opens its own connections


def shared_client(settings: LLMSettings) -> openai.OpenAI:
    """One SDK client per endpoint, key, timeout and answer cap in a process, never closed:
    a client and its connection pool cost more CPU to build than a call. The SDK's client
    and httpx's pool are safe to share across threads."""
    compat.configure(settings.base_url, settings.structured_output)
    key = (
        settings.base_url,
        settings.api_key.get_secret_value(),
        settings.timeout_s,
        answer_byte_cap(settings.max_output_tokens),
    )
    client = _shared.get(key)
    if client is None:
        with _shared_lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = make_client(settings)
    return client


def call_structured(
    client: openai.OpenAI,
    *,
    task: str,
    model: str,
    prompt_version: str,
    messages: list[dict[str, str]],
    schema: type[T],
    max_output_tokens: int,
    reasoning_effort: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[T, list[CallUsage]]:
    """The parsed answer and the usage of every call made, with bounded repairs on bad output.

    Strict `json_schema` gets one repair; JSON mode and prompt mode (endpoints or models that
    refuse strict schemas, see `extraction.compat` and `extraction.models`) get
    `compat.MAX_REPAIRS`. Sampling and length arguments are the ones `model` accepts.
    """
    usages: list[CallUsage] = []
    endpoint = str(client.base_url)
    mode = models.structured_mode(model, compat.mode_for(endpoint))
    # an experiment arm's parameters override the settings'; the model's capabilities decide
    # what is sent (a reasoning model gets no temperature)
    arm = params or {}
    options = models.request_options(
        model,
        max_output_tokens,
        temperature=float(arm.get("temperature", 0.0)),
        reasoning_effort=arm.get("reasoning_effort", reasoning_effort),
    )
    conversation: list[dict[str, Any]] = list(messages)
    attempt, problem = 0, ""
    while attempt <= (1 if mode == "json_schema" else compat.MAX_REPAIRS):
        try:
            parsed, raw_content, usage, problem = _one_call(
                client, conversation, task=task, model=model, prompt_version=prompt_version,
                schema=schema, max_output_tokens=max_output_tokens, mode=mode, options=options,
            )  # fmt: skip
        except _FormatRefused as refused:
            fallback = compat.downgrade(endpoint, mode)
            if fallback is None:
                raise refused.error from None
            log.warning(
                "endpoint refused structured output; falling back",
                extra={"task": task, "refused": mode, "mode": fallback},
            )
            mode, conversation, attempt = fallback, list(messages), 0
            continue
        usages.append(usage.model_copy(update={"repair": True}) if attempt else usage)
        if parsed is not None:
            return parsed, usages
        log.info("llm answer failed validation; asking for a repair", extra={"task": task})
        conversation = [
            *messages,
            {"role": "assistant", "content": raw_content or ""},
            compat.repair_message(problem),
        ]
        attempt += 1
    raise LLMInvalidOutput(
        f"{task}: answer did not validate after {attempt - 1} repair(s): {problem}"
    )


class _FormatRefused(Exception):
    """The endpoint answered 400 to the response format itself."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _one_call(
    client: openai.OpenAI,
    messages: list[dict[str, Any]],
    *,
    task: str,
    model: str,
    prompt_version: str,
    schema: type[T],
    max_output_tokens: int,
    mode: compat.Mode = "json_schema",
    options: dict[str, Any] | None = None,
) -> tuple[T | None, str | None, CallUsage, str]:
    options = options or models.request_options(model, max_output_tokens)
    usage = CallUsage(task=task, model=model, prompt_version=prompt_version)
    gate = _gate.get()
    if mode != "json_schema":
        messages = [compat.schema_message(schema), *messages]
    planned = PlannedCall(task, model, messages, max_output_tokens)
    if gate is not None:
        gate.before(planned)
    try:
        # the messages and the schema go in extra_body, which the SDK sends as they are (its
        # keys win over the typed arguments'): the same JSON, but as typed arguments the SDK
        # walks them against its TypedDicts and every union member on each call (a tenth of
        # an extraction's CPU)
        if mode == "json_schema":
            raw: Any = client.chat.completions.with_raw_response.create(
                model=model,
                messages=[],
                store=False,
                **options,
                extra_body={"messages": messages, "response_format": strict_format(schema)},
            )
        else:
            fmt = compat.request_format(mode, schema)
            body: dict[str, Any] = {"messages": messages}
            if fmt:
                body["response_format"] = fmt
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[], **options, extra_body=body
            )
    except openai.APIStatusError as exc:
        code, message = compat.describe_error(exc.body, exc.message)
        if gate is not None:
            # a 429 for an empty account is no rate limit: nothing to cool down for
            status = 402 if code == "insufficient_quota" else exc.status_code
            gate.after(planned, status, exc.response.headers)
        if compat.refuses_format(exc.status_code, code, message):
            raise _FormatRefused(_mapped(exc)) from exc
        raise _mapped(exc) from exc
    except AnswerTooLarge as exc:
        if gate is not None:
            gate.after(planned, 0, {})
        raise _oversized(usage, max_output_tokens) from exc
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        if gate is not None:
            gate.after(planned, 0, {})
        if isinstance(exc.__cause__, AnswerTooLarge):
            raise _oversized(usage, max_output_tokens) from exc
        raise LLMTransient(f"{task}: {type(exc).__name__}: {exc}") from exc
    if gate is not None:
        gate.after(planned, raw.http_response.status_code, raw.headers)
    try:
        body = _body(raw.http_response)  # the SDK reads the body here, up to the cap
    except AnswerTooLarge as exc:
        raise _oversized(usage, max_output_tokens) from exc
    usage = _usage(usage, body, messages)
    return _answer(body, schema, usage, task)


def _oversized(usage: CallUsage, max_output_tokens: int) -> Truncated:
    """An answer bigger than its token limit allows: as good as a length error."""
    update = {"output_tokens": max_output_tokens, "finish_reason": "length"}
    return Truncated(usage.model_copy(update=update))


def _answer(
    body: dict[str, Any], schema: type[T], usage: CallUsage, task: str
) -> tuple[T | None, str | None, CallUsage, str]:
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    if choice.get("finish_reason") == "length":
        raise Truncated(usage.model_copy(update={"finish_reason": "length"}))
    if choice.get("finish_reason") == "content_filter":
        raise LLMRefused(f"{task}: answer withheld by the content filter")
    if message.get("refusal"):
        raise LLMRefused(f"{task}: {message['refusal']}")
    content = message.get("content") if isinstance(message.get("content"), str) else None
    parsed, problem = compat.parse_json(content, schema)
    return parsed, content, usage, problem  # type: ignore[return-value]


def _body(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _usage(usage: CallUsage, body: dict[str, Any], messages: list[dict[str, Any]]) -> CallUsage:
    counts = body.get("usage") or {}
    choices = body.get("choices") or [{}]
    update: dict[str, Any] = {
        "input_tokens": int(counts.get("prompt_tokens") or 0),
        "output_tokens": int(counts.get("completion_tokens") or 0),
        "finish_reason": choices[0].get("finish_reason"),
    }
    if not counts.get("prompt_tokens"):
        update["input_tokens"], update["output_tokens"] = compat.local_tokens(
            messages, _content(body)
        )
        update["estimated"] = True
    return usage.model_copy(update=update)


def _content(body: dict[str, Any]) -> str | None:
    choices = body.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else None


def retry_after_of(response: Any) -> float:
    """Seconds to wait, from retry-after-ms, Retry-After or the rate-limit reset headers."""
    headers = response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    waits = [
        _seconds(headers.get(h, ""))
        for h in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
    ]
    known = [w for w in waits if w is not None]
    return min(known) if known else DEFAULT_RETRY_AFTER_S


def _seconds(value: str) -> float | None:
    """'6m0s', '1.5s', '20ms' → seconds."""
    if not value:
        return None
    total, number = 0.0, ""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch.isdigit() or ch == ".":
            number += ch
        elif value.startswith("ms", i):
            total += float(number or 0) / 1000
            number, i = "", i + 1
        elif ch in "hms":
            total += float(number or 0) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
        else:
            return None
        i += 1
    return total


def _mapped(exc: openai.APIStatusError) -> Exception:
    code, said = compat.describe_error(exc.body, exc.message)
    message = f"HTTP {exc.status_code} {code or ''}: {said}".strip()
    if exc.status_code == 429:
        if code == "insufficient_quota":
            return LLMQuotaExhausted(
                "the LLM account is out of quota (insufficient_quota): add credit or raise its "
                f"limit, then replay with `meetsync dlq replay --meeting`; provider said: {message}"
            )
        if "Request too large" in said:
            return LLMRequestRejected(message)
        return LLMRateLimited(retry_after_of(exc.response), message)
    if code == "context_length_exceeded" or (
        exc.status_code in {400, 413, 422} and compat.is_context_length(code, said)
    ):
        return InputTooLong(message)
    if exc.status_code in {408, 409} or exc.status_code >= 500:
        return LLMTransient(message)
    return LLMRequestRejected(message)
