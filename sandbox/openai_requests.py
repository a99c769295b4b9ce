"""What the Chat Completions endpoint refuses in a request, as api.openai.com refuses it.

`validate` reads a request body into the parts the emulator uses, or raises `Rejected` with
OpenAI's status, message, param and code: an argument the API does not define, a model it
does not serve, sampling parameters on a reasoning model and `reasoning_effort` on a classic
one, `max_tokens` where only `max_completion_tokens` is taken, a `json_schema` a model
predates, and strict schemas outside what structured outputs accept (`strict_problem`).
"""

from __future__ import annotations

from typing import Any

_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# CreateChatCompletionRequest's properties in the published spec (tests check the list)
KNOWN_ARGUMENTS = frozenset(
    [
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)
# reasoning model family prefix → the reasoning_effort values it takes (longest prefix wins)
REASONING: dict[str, tuple[str, ...]] = {
    "o1": ("low", "medium", "high"),
    "o3": ("low", "medium", "high"),
    "o4-mini": ("low", "medium", "high"),
    "gpt-5": ("minimal", "low", "medium", "high"),
    "gpt-5.1": ("none", "low", "medium", "high"),
}
NOT_REASONING = ("gpt-5-chat",)
# models that predate structured outputs: JSON mode only
NO_JSON_SCHEMA = ("gpt-3.5-turbo", "gpt-4-turbo", "gpt-4-0")
_SAMPLING = ("top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs",
             "logit_bias")  # fmt: skip


class Rejected(Exception):
    """A request OpenAI would refuse: rendered as its error body by the app."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_
        self.param, self.code, self.retry_after = param, code, retry_after


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def validate(body: Any, models: dict[str, int]) -> dict[str, Any]:
    """The parts of a chat request the emulator uses; 400/404 for what OpenAI rejects."""
    if not isinstance(body, dict):
        raise Rejected(400, "Invalid request body: expected a JSON object.")
    model = body.get("model")
    if not model:
        raise Rejected(400, "you must provide a model parameter", param="model")
    if model not in models:
        raise Rejected(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Rejected(
            400,
            "[] is too short - 'messages'",
            param="messages",
            code="empty_array" if messages == [] else None,
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise Rejected(
                400,
                f"Invalid value for 'messages[{i}].role': expected one of 'system', "
                "'developer', 'user', 'assistant', 'tool'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
    unknown = sorted(set(body) - KNOWN_ARGUMENTS)
    if unknown:
        raise Rejected(400, f"Unrecognized request argument supplied: {', '.join(unknown)}")
    _check_model_arguments(body, model)
    if "max_tokens" in body and "max_completion_tokens" in body:
        raise Rejected(
            400,
            "max_tokens and max_completion_tokens cannot both be set. Use max_completion_tokens.",
            param="max_tokens",
        )
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise Rejected(
            400,
            f"Invalid 'max_completion_tokens': integer below minimum value. "
            f"Expected a value >= 1, but got {limit} instead.",
            param="max_completion_tokens",
            code="integer_below_min_value",
        )
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        raise Rejected(
            400,
            f"Invalid 'temperature': decimal above maximum value. Expected a "
            f"value <= 2, but got {temperature} instead.",
            param="temperature",
            code="decimal_above_max_value",
        )
    n = body.get("n", 1) or 1
    if not isinstance(n, int) or not 1 <= n <= 128:
        raise Rejected(400, f"Invalid 'n': expected an integer from 1 to 128, got {n}.", param="n")
    fmt = body.get("response_format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    schema: dict[str, Any] | None = None
    schema_name: str | None = None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise Rejected(
                400,
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name",
                code="missing_required_parameter",
            )
        if model.startswith(NO_JSON_SCHEMA):
            raise Rejected(
                400,
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                "with this model.",
                param="response_format",
            )
        schema_name = spec["name"]
        schema = spec.get("schema") or {"type": "object", "properties": {}}
        if spec.get("strict"):
            problem = _root_problem(schema) or strict_problem(schema)
            if problem:
                raise Rejected(
                    400,
                    f"Invalid schema for response_format '{schema_name}': {problem}",
                    param="response_format",
                    code="invalid_json_schema",
                )
    elif kind == "json_object":
        if not any("json" in message_text(m).lower() for m in messages):
            raise Rejected(
                400,
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                param="messages",
            )
    elif kind != "text":
        raise Rejected(
            400,
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and "
            "'json_schema'.",
            param="response_format.type",
            code="invalid_value",
        )
    return {
        "model": model,
        "messages": messages,
        "max_output": limit,
        "n": n,
        "schema": schema,
        "schema_name": schema_name,
        "response_format": kind,
        "format": "text" if kind == "text" else "json",
    }


def reasoning_efforts(model: str) -> tuple[str, ...] | None:
    """The reasoning_effort values a reasoning model takes; None for a classic model."""
    if model.startswith(NOT_REASONING):
        return None
    matches = [prefix for prefix in REASONING if model.startswith(prefix)]
    return REASONING[max(matches, key=len)] if matches else None


def _check_model_arguments(body: dict[str, Any], model: str) -> None:
    """What this model refuses: sampling on reasoning models, reasoning on classic ones."""
    efforts = reasoning_efforts(model)
    effort = body.get("reasoning_effort")
    if efforts is None:
        if effort is not None:
            raise Rejected(
                400,
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                param="reasoning_effort",
                code="unsupported_parameter",
            )
        return
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise Rejected(
            400,
            f"Unsupported value: 'temperature' does not support {temperature} with this "
            "model. Only the default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )
    for name in (*_SAMPLING, "max_tokens"):
        if body.get(name) is not None:
            hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
            raise Rejected(
                400,
                f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
                param=name,
                code="unsupported_parameter",
            )
    if effort is not None and effort not in efforts:
        raise Rejected(
            400,
            f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this "
            f"model. Supported values are: {', '.join(repr(e) for e in efforts)}.",
            param="reasoning_effort",
            code="unsupported_value",
        )


def _root_problem(schema: dict[str, Any]) -> str | None:
    """Strict structured outputs need an object at the root (no anyOf there either)."""
    if schema.get("type") != "object" or "anyOf" in schema:
        got = schema.get("type", "anyOf" if "anyOf" in schema else "None")
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    return None


def strict_problem(schema: dict[str, Any], context: str = "()") -> str | None:
    """What strict structured outputs would reject in `schema`, or None."""
    for name, sub in (schema.get("$defs") or {}).items():
        problem = strict_problem(sub, f"('$defs', '{name}')")
        if problem:
            return problem
    if "anyOf" in schema:
        for i, branch in enumerate(schema["anyOf"]):
            problem = strict_problem(branch, f"{context[:-1]}, 'anyOf', '{i}')")
            if problem:
                return problem
        return None
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={context}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        missing = [p for p in props if p not in schema.get("required", [])]
        if missing:
            return (
                f"In context={context}, 'required' is required to be supplied and to be an "
                f"array including every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in props.items():
            problem = strict_problem(sub, f"{context[:-1]}, 'properties', '{name}')")
            if problem:
                return problem
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return strict_problem(schema["items"], f"{context[:-1]}, 'items')")
    return None
