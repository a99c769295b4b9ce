"""What each model accepts, so a request carries only parameters its model takes.

Reasoning models (gpt-5, the o-series) answer 400 `unsupported_value` to `temperature=0`
and `unsupported_parameter` to `top_p`, penalties, logprobs and `max_tokens`; classic chat
models refuse `reasoning_effort`. The table below is the published behaviour
(https://platform.openai.com/docs/guides/reasoning, the models pages); a model is found by
its longest matching prefix, so dated snapshots (`gpt-5-2025-08-07`) inherit their family.

A model the table does not know gets the conservative set: no sampling parameters, no
reasoning effort, `max_completion_tokens`, strict structured outputs (an endpoint that
refuses them is downgraded by `extraction.compat`), and the default context window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from extraction import compat
from meetsync.tokens import CONTEXT_WINDOWS

TokenParameter = Literal["max_completion_tokens", "max_tokens"]
DEFAULT_CONTEXT = 128_000  # what an unknown model is assumed to hold
_MODE_RANK: dict[compat.Mode, int] = {"prompt": 0, "json_object": 1, "json_schema": 2}


@dataclass(frozen=True)
class Capabilities:
    """What one model family accepts in a chat completion request."""

    sampling: bool  # temperature, top_p, penalties, logprobs
    structured_output: compat.Mode  # the strongest response_format it takes
    token_parameter: TokenParameter
    reasoning_efforts: tuple[str, ...] = ()  # accepted `reasoning_effort` values; () = none
    context_window: int = DEFAULT_CONTEXT
    known: bool = True

    @property
    def reasoning(self) -> bool:
        """A reasoning model: no sampling parameters, an optional effort."""
        return bool(self.reasoning_efforts)


_CLASSIC = Capabilities(
    sampling=True, structured_output="json_schema", token_parameter="max_completion_tokens"
)
_JSON_MODE_ONLY = Capabilities(
    sampling=True, structured_output="json_object", token_parameter="max_completion_tokens"
)
_O_SERIES = Capabilities(
    sampling=False,
    structured_output="json_schema",
    token_parameter="max_completion_tokens",
    reasoning_efforts=("low", "medium", "high"),
)
_GPT5 = Capabilities(
    sampling=False,
    structured_output="json_schema",
    token_parameter="max_completion_tokens",
    reasoning_efforts=("minimal", "low", "medium", "high"),
)
_GPT51 = Capabilities(
    sampling=False,
    structured_output="json_schema",
    token_parameter="max_completion_tokens",
    reasoning_efforts=("none", "low", "medium", "high"),
)
CONSERVATIVE = Capabilities(
    sampling=False,
    structured_output="json_schema",
    token_parameter="max_completion_tokens",
    known=False,
)

# family prefix → capabilities; the longest prefix that matches wins
TABLE: dict[str, Capabilities] = {
    "gpt-4o": _CLASSIC,
    "gpt-4.1": _CLASSIC,
    "gpt-4-turbo": _JSON_MODE_ONLY,
    "gpt-3.5-turbo": _JSON_MODE_ONLY,
    "o1": _O_SERIES,
    "o3": _O_SERIES,
    "o4-mini": _O_SERIES,
    "gpt-5": _GPT5,
    "gpt-5.1": _GPT51,
    "gpt-5-chat": _CLASSIC,  # the non-reasoning chat model behind ChatGPT
    "sandbox-": _CLASSIC,  # the sandbox's small-window models
}


def capabilities(model: str, context_windows: dict[str, int] | None = None) -> Capabilities:
    """The capabilities of `model`, with its context window (overrides first)."""
    matches = [prefix for prefix in TABLE if model.startswith(prefix)]
    found = TABLE[max(matches, key=len)] if matches else CONSERVATIVE
    window = (context_windows or {}).get(model) or CONTEXT_WINDOWS.get(model)
    if window is None and matches:
        window = CONTEXT_WINDOWS.get(max(matches, key=len).rstrip("-"))
    return replace(found, context_window=window or DEFAULT_CONTEXT)


def request_options(
    model: str,
    max_output_tokens: int,
    *,
    temperature: float = 0.0,
    reasoning_effort: str | None = None,
) -> dict[str, Any]:
    """The sampling, length and reasoning arguments `model` accepts, and nothing else."""
    caps = capabilities(model)
    options: dict[str, Any] = {caps.token_parameter: max_output_tokens}
    if caps.sampling:
        options["temperature"] = temperature
    if reasoning_effort is not None and reasoning_effort in caps.reasoning_efforts:
        options["reasoning_effort"] = reasoning_effort
    return options


def structured_mode(model: str, endpoint_mode: compat.Mode) -> compat.Mode:
    """The weaker of what the endpoint takes and what the model takes."""
    own = capabilities(model).structured_output
    return own if _MODE_RANK[own] < _MODE_RANK[endpoint_mode] else endpoint_mode
