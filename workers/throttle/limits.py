"""Which bucket a push draws from, and its limits: connector defaults, then settings."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from connectors.base import Limits
from connectors.registry import UnknownConnector, connector_class, facts
from meetsync.settings import LimitOverride, LLMModelLimits, Settings
from workers.throttle.buckets import Ask, Throttle, Tuning

FALLBACK = Limits(rate=1.0, burst=5, concurrency=2)


@lru_cache(maxsize=64)
def connector_defaults(connector: str) -> Limits:
    """A connection's bucket: the connector's `workspace_limits` when its `default_limits`
    read per flow (Slack's channels), else `default_limits`; a cautious fallback for unknown
    connectors."""
    if (shared := facts(connector).workspace_limits) is not None:
        return shared
    try:
        limits: Limits = getattr(connector_class(connector), "default_limits")  # noqa: B009
    except (UnknownConnector, AttributeError, ImportError):
        return FALLBACK
    return limits


def apply_override(limits: Limits, override: LimitOverride | None) -> Limits:
    if override is None:
        return limits
    return limits.model_copy(update=override.model_dump(exclude_none=True))


def limits_for(settings: Settings, connector: str, connection: str, org: str) -> Limits:
    """Defaults, then the connector's override, then the org's, then the connection's."""
    t = settings.throttle
    limits = connector_defaults(connector)
    limits = apply_override(limits, t.connectors.get(connector))
    limits = apply_override(limits, t.orgs.get(org, {}).get(connector))
    limits = apply_override(limits, t.connections.get(connection))
    return with_headroom(limits, t.headroom)


def with_headroom(limits: Limits, headroom: float) -> Limits:
    """Plan for a little under the provider's limit, so clock skew never costs a 429."""
    return limits.model_copy(
        update={"rate": limits.rate * headroom, "burst": max(1, int(limits.burst * headroom))}
    )


def ask_for_op(
    settings: Settings,
    *,
    connector: str,
    connection: str,
    org: str,
    target: dict[str, Any],
    backfill: bool,
) -> Ask:
    """The bucket of a connection; Slack's flows are channels, others' are orgs."""
    flow_override = settings.throttle.flows.get(connector)
    flow, flow_limits = org, None
    if flow_override is not None and target.get("channel"):
        flow = f"{org}/{target['channel']}"
        base = Limits(rate=1.0, burst=1, concurrency=1)
        flow_limits = with_headroom(apply_override(base, flow_override), settings.throttle.headroom)
    return Ask(
        bucket=f"{connector}:{connection}",
        limits=limits_for(settings, connector, connection, org),
        flow=flow,
        org=org,
        backfill=backfill,
        flow_limits=flow_limits,
        width=facts(connector).writes_at_once,
    )


def llm_limits(settings: Settings, model: str) -> LLMModelLimits:
    """The model's RPM and TPM from settings ('*' for models not named)."""
    table = settings.throttle.llm_limits
    found = table.get(model) or table.get("*")
    return found or LLMModelLimits(rpm=500, tpm=30_000)


def llm_bucket(settings: Settings, model: str) -> str:
    """Requests bucket of one model at one LLM endpoint; its tokens bucket adds ':tokens'."""
    endpoint = settings.llm.base_url.split("//", 1)[-1].rstrip("/")
    return f"openai:{endpoint}:{model}"


def asks_for_llm(
    settings: Settings, model: str, org: str, *, backfill: bool = False
) -> tuple[Ask, Ask]:
    """A model's two buckets, requests and tokens, shared by every org; orgs are its flows."""
    t = settings.throttle
    lim = llm_limits(settings, model)
    per_s = lim.rpm / 60
    requests = Limits(
        rate=per_s, burst=max(1, int(per_s * lim.burst_s)), concurrency=lim.concurrency
    )
    requests = apply_override(requests, t.llm_models.get(model))
    tokens_per_s = lim.tpm / 60
    tokens = Limits(
        rate=tokens_per_s,
        burst=max(1, int(tokens_per_s * lim.burst_s)),
        # in-flight calls are bounded by the requests bucket; a token holds no slot
        concurrency=1_000_000,
    )
    bucket = llm_bucket(settings, model)
    common: dict[str, Any] = {"flow": org, "org": org, "backfill": backfill}
    return (
        Ask(bucket=bucket, limits=with_headroom(requests, t.headroom), **common),
        Ask(bucket=f"{bucket}:tokens", limits=with_headroom(tokens, t.headroom), **common),
    )


def tuning_of(settings: Settings) -> Tuning:
    t = settings.throttle
    return Tuning(
        lease_ms=t.lease_ms,
        horizon_ms=t.horizon_ms,
        idle_ms=t.idle_ms,
        recovery_per_s=t.recovery_per_s,
        min_factor=t.min_factor,
        early_ms=t.early_ms,
    )


def make_throttle(settings: Settings) -> Throttle:
    """Redis when the workers are distributed (or asked for); memory on the stub broker."""
    backend = settings.throttle.backend
    if backend == "auto":
        backend = "memory" if settings.broker_url == "stub" else "redis"
    if backend == "memory":
        from workers.throttle.memory import MemoryThrottle

        return MemoryThrottle(tuning_of(settings))
    from workers.throttle.redis import RedisThrottle

    return RedisThrottle.from_url(settings.redis_url, tuning_of(settings))
