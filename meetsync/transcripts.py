"""Fetch a meeting's `transcript_url`: allow-listed hosts only, never a private address.

The host must be in `transcript_fetch.allowed_hosts`. Its name is resolved once and every
address checked: loopback, private, link-local, reserved and multicast ranges are refused
unless a CIDR in `allowed_networks` covers them. The request then goes to the checked
address itself (Host header and TLS SNI keep the name), so a second DNS answer cannot
point it elsewhere (DNS rebinding). Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from pydantic import TypeAdapter, ValidationError

from meetsync.models import MeetingOutput, Utterance
from meetsync.settings import TranscriptFetchSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_UTTERANCES = TypeAdapter(list[Utterance])


class TranscriptUnavailable(Exception):
    """The transcript cannot be fetched and retrying will not help (refused, invalid)."""


class TranscriptFetchFailed(Exception):
    """A transient failure (timeout, 5xx, connection error): retry later."""


def resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Exact names, or `*.domain` for its subdomains; case-insensitive."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def address_allowed(address: Address, networks: list[str]) -> bool:
    """Public addresses pass; others only inside an explicitly allowed network."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_global and not address.is_multicast:
        return True
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def checked_address(url: str, settings: TranscriptFetchSettings, resolver: Resolver) -> str:
    """The address to connect to, after the allow-list and private-range checks."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TranscriptUnavailable("transcript_url must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise TranscriptUnavailable("transcript_url must not carry credentials")
    host = parts.hostname
    if not host_allowed(host, settings.allowed_hosts):
        raise TranscriptUnavailable(f"host {host!r} is not in transcript_fetch.allowed_hosts")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        try:
            candidates = resolver(host, port)
        except OSError as exc:
            raise TranscriptFetchFailed(f"cannot resolve {host!r}: {exc}") from exc
    else:
        candidates = [str(literal)]
    if not candidates:
        raise TranscriptFetchFailed(f"{host!r} resolved to no address")
    for candidate in candidates:
        if not address_allowed(ipaddress.ip_address(candidate), settings.allowed_networks):
            raise TranscriptUnavailable(
                f"{host!r} resolves to {candidate}, a non-public address not allowed"
            )
    return candidates[0]


def fetch_transcript(
    url: str,
    settings: TranscriptFetchSettings,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[Utterance]:
    """GET the transcript: a JSON list of utterances or an object with a `transcript` list."""
    address = checked_address(url, settings, resolver or resolve)
    parts = urlsplit(url)
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "application/json"}
    if settings.auth_header is not None:
        headers["Authorization"] = settings.auth_header.get_secret_value()
    body = _get(pinned, headers, parts.hostname or "", settings, transport)
    try:
        data = json.loads(body)
        items = data.get("transcript") if isinstance(data, dict) else data
        return _UTTERANCES.validate_python(items)
    except (ValueError, ValidationError) as exc:
        raise TranscriptUnavailable(f"the transcript at the URL is not valid: {exc}") from exc


def _get(
    url: str,
    headers: dict[str, str],
    sni: str,
    settings: TranscriptFetchSettings,
    transport: httpx.BaseTransport | None,
) -> bytes:
    try:
        with (
            httpx.Client(
                timeout=settings.timeout_s,
                follow_redirects=False,
                trust_env=False,
                transport=transport,
            ) as client,
            client.stream("GET", url, headers=headers, extensions={"sni_hostname": sni}) as resp,
        ):
            if resp.status_code == 429 or resp.status_code >= 500:
                raise TranscriptFetchFailed(f"transcript host answered {resp.status_code}")
            if resp.status_code != 200:
                raise TranscriptUnavailable(f"transcript host answered {resp.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > settings.max_bytes:
                    raise TranscriptUnavailable(f"transcript is over {settings.max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TransportError as exc:
        raise TranscriptFetchFailed(f"transcript fetch failed: {type(exc).__name__}") from exc


def with_transcript(
    meeting: MeetingOutput, settings: TranscriptFetchSettings, **kwargs: object
) -> MeetingOutput:
    """The meeting with its transcript inline (fetched when it came as a URL)."""
    if meeting.transcript_url is None:
        return meeting
    utterances = fetch_transcript(meeting.transcript_url, settings, **kwargs)  # type: ignore[arg-type]
    return meeting.model_copy(update={"transcript": utterances, "transcript_url": None})
