"""Compatibility modes of the OpenAI emulator: servers that are OpenAI-shaped, not OpenAI.

Self-hosted and gateway endpoints (vLLM, Ollama, llama.cpp's server, LiteLLM-style
gateways) differ in what they accept and how they answer. Each mode is a set of flags:

    json_schema   "strict" accepts strict schemas (OpenAI); "loose" answers 400 to
                  `strict: true`; "none" answers 400 to any json_schema format
    json_object   False answers 400 to `{"type": "json_object"}` too
    usage         False leaves `usage` out of completions
    errors        the error body shape: "openai" {"error": {message, type, param, code}},
                  "vllm" {"object": "error", "message", "type", "code": 400},
                  "ollama" {"error": "text"}, "fastapi" {"detail": "text"}, "text" plain

Named modes (Sandbox(options={"openai": {"compat": "json_object_only"}})), or a dict of
flags: openai, no_strict, json_object_only, prompt_only, no_usage, text_errors.

In every mode the model reads a JSON Schema put in the prompt (`<json_schema>` … ), as a
real model follows a schema it is shown, so JSON mode and prompt mode answer in shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from starlette.responses import JSONResponse, PlainTextResponse, Response

_IN_PROMPT = re.compile(r"<json_schema>\s*(?P<schema>\{.*?\})\s*</json_schema>", re.S)


@dataclass(frozen=True)
class Compat:
    """What this emulated endpoint accepts and how it answers."""

    json_schema: Literal["strict", "loose", "none"] = "strict"
    json_object: bool = True
    usage: bool = True
    errors: Literal["openai", "vllm", "ollama", "fastapi", "text"] = "openai"

    @classmethod
    def of(cls, option: str | dict[str, Any] | None) -> Compat:
        """The mode named (or described) by the emulator's `compat` option."""
        if option is None:
            return cls()
        if isinstance(option, str):
            if option not in MODES:
                raise ValueError(f"unknown compat mode {option!r}; known: {sorted(MODES)}")
            return MODES[option]
        return replace(cls(), **option)

    def refusal(self, body: dict[str, Any]) -> str | None:
        """Why this endpoint answers 400 to the request's response_format, or None."""
        fmt = body.get("response_format")
        fmt = fmt if isinstance(fmt, dict) else {}
        kind = fmt.get("type")
        if kind == "json_schema":
            if self.json_schema == "none":
                return "response_format type json_schema is not supported by this server"
            strict = (fmt.get("json_schema") or {}).get("strict")
            if self.json_schema == "loose" and strict:
                return "response_format json_schema: 'strict' mode is not supported"
        if kind == "json_object" and not self.json_object:
            return "response_format json_object is not supported; send no response_format"
        return None

    def error(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
        """An error response in this endpoint's shape; `body` is OpenAI's."""
        inner = body.get("error") or {}
        message = str(inner.get("message") or "error")
        if self.errors == "vllm":
            shaped: Any = {"object": "error", "message": message,
                           "type": "BadRequestError" if status == 400 else "Error",
                           "param": None, "code": status}  # fmt: skip
        elif self.errors == "ollama":
            shaped = {"error": message}
        elif self.errors == "fastapi":
            shaped = {"detail": message}
        elif self.errors == "text":
            return PlainTextResponse(message, status_code=status, headers=headers)
        else:
            shaped = body
        return JSONResponse(shaped, status_code=status, headers=headers)


MODES: dict[str, Compat] = {
    "openai": Compat(),
    "no_strict": Compat(json_schema="loose", errors="vllm"),
    "json_object_only": Compat(json_schema="none", errors="ollama", usage=False),
    "prompt_only": Compat(json_schema="none", json_object=False, errors="fastapi", usage=False),
    "no_usage": Compat(usage=False),
    "text_errors": Compat(errors="text"),
}


def schema_in_prompt(texts: list[str]) -> dict[str, Any] | None:
    """A JSON Schema the prompt shows the model, if any."""
    for text in texts:
        found = _IN_PROMPT.search(text)
        if found:
            try:
                schema = json.loads(found["schema"])
            except ValueError:
                continue
            if isinstance(schema, dict):
                return schema
    return None
