"""What an OpenAI-compatible endpoint can do, and how to talk to the ones that can't do it all.

vLLM, Ollama, llama.cpp's server and gateways differ from api.openai.com in four ways
that matter here, each handled in one place:

- structured output: `json_schema` (strict, OpenAI), `json_object` (JSON mode) or
  `prompt` (no `response_format`; the schema is in the prompt and the answer parsed out of
  the text). Configured per endpoint (`LLMSettings.structured_output`) or, with `auto`,
  learnt: the first 400 that refuses `json_schema` moves that endpoint to `json_object`,
  and one that refuses `json_object` moves it to `prompt`, for the rest of the process.
- validation: outside strict mode nothing guarantees the shape, so answers are validated
  with the pydantic model and a bounded number of repair rounds are asked for.
- usage: when a server omits `usage`, tokens are counted locally (meetsync.tokens).
- errors: bodies come as OpenAI's `{"error": {...}}`, vLLM's flat `{"object": "error",
  "message", "code": 400}`, Ollama's `{"error": "text"}`, FastAPI's `{"detail": ...}` or
  plain text; `describe_error` reads all of them, and context-length errors are recognised
  by their wording as well as by OpenAI's code.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Literal

from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel

from meetsync.tokens import count_tokens

Mode = Literal["json_schema", "json_object", "prompt"]
Setting = Literal["auto", "json_schema", "json_object", "prompt"]
MAX_REPAIRS = 2  # repair rounds after the first answer, outside strict mode
_DOWNGRADE: dict[str, Mode] = {"json_schema": "json_object", "json_object": "prompt"}

_lock = threading.Lock()
_configured: dict[str, Setting] = {}
_learnt: dict[str, Mode] = {}

_CONTEXT = re.compile(
    r"maximum context length|context length|context size|context window|exceeds? the (?:"
    r"available )?context|too many tokens|prompt is too long|input is too long",
    re.IGNORECASE,
)
_FORMAT_WORDS = re.compile(
    r"response_format|json_schema|json schema|strict|structured output|guided_json|grammar"
    r"|json_object|json mode",
    re.IGNORECASE,
)


def configure(base_url: str, setting: Setting) -> None:
    """Record how the endpoint at `base_url` takes structured output (`make_client` calls it)."""
    key = _key(base_url)
    with _lock:
        if _configured.get(key) != setting:
            _learnt.pop(key, None)
        _configured[key] = setting


def forget(base_url: str) -> None:
    """Drop what was configured or learnt about this endpoint (a new server on an old port)."""
    key = _key(base_url)
    with _lock:
        _configured.pop(key, None)
        _learnt.pop(key, None)


def mode_for(base_url: str) -> Mode:
    """The structured-output mode to use now for this endpoint."""
    key = _key(base_url)
    with _lock:
        setting = _configured.get(key, "auto")
        if setting != "auto":
            return setting
        return _learnt.get(key, "json_schema")


def downgrade(base_url: str, refused: Mode) -> Mode | None:
    """After a 400 refusing `refused`: the next mode to try, or None when not allowed."""
    key = _key(base_url)
    with _lock:
        if _configured.get(key, "auto") != "auto" or refused not in _DOWNGRADE:
            return None
        _learnt[key] = _DOWNGRADE[refused]
        return _learnt[key]


def refuses_format(status: int, code: str | None, message: str) -> bool:
    """Whether a 400/422 refused the response format (not the prompt or the model)."""
    if status not in {400, 415, 422, 501}:
        return False
    if code in {"context_length_exceeded", "model_not_found", "invalid_api_key"}:
        return False
    return bool(_FORMAT_WORDS.search(message)) and not _CONTEXT.search(message)


def is_context_length(code: str | None, message: str) -> bool:
    """A prompt that does not fit, whatever the server calls it."""
    return code == "context_length_exceeded" or bool(_CONTEXT.search(message))


def describe_error(body: object, fallback: str) -> tuple[str | None, str]:
    """(code, message) from an error body in any of the shapes servers answer with."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, str):
            return None, inner
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or inner.get("msg")
            if isinstance(message, list | dict):
                message = json.dumps(message)
            code = inner.get("code")
            text_code = code if isinstance(code, str) else None
            return text_code, str(message) if message else fallback
    if isinstance(body, str) and body.strip():
        return None, body.strip()[:500]
    return None, fallback


def request_format(mode: Mode, schema: type[BaseModel]) -> dict[str, Any] | None:
    """The `response_format` to send in a non-strict mode (None: send none)."""
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def schema_message(schema: type[BaseModel]) -> dict[str, str]:
    """A system message carrying the JSON Schema, for modes where the server can't enforce it."""
    spec = json.dumps(to_strict_json_schema(schema), separators=(",", ":"))
    return {
        "role": "system",
        "content": "Answer with a single JSON object and nothing else: no prose, no code "
        f"fences. It must validate against this JSON Schema:\n<json_schema>\n{spec}\n"
        "</json_schema>",
    }


def parse_json(content: str | None, schema: type[BaseModel]) -> tuple[BaseModel | None, str]:
    """The validated answer, or None and what was wrong (for the repair round)."""
    if not content or not content.strip():
        return None, "the answer was empty"
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end < start:
        return None, "the answer held no JSON object"
    try:
        return schema.model_validate_json(text[start : end + 1]), ""
    except ValueError as exc:
        return None, _short(exc)


def repair_message(problem: str) -> dict[str, str]:
    """What to tell the model after an answer that did not validate."""
    return {
        "role": "user",
        "content": "Your previous answer did not match the required JSON schema: "
        f"{problem}. Answer again with one JSON object that matches the schema exactly.",
    }


def local_tokens(messages: list[dict[str, Any]], content: str | None) -> tuple[int, int]:
    """(input, output) tokens counted here, the way OpenAI counts chat messages."""
    prompt = sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages) + 3
    return prompt, count_tokens(content or "")


def _short(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors(include_url=False, include_input=False)[:5]
        return json.dumps([{"loc": list(e["loc"]), "msg": e["msg"]} for e in found])
    return str(exc)[:300]


def _key(base_url: str) -> str:
    return str(base_url).rstrip("/")
