"""Salesforce record ids: 15 case-sensitive characters plus a 3-character checksum."""

from __future__ import annotations

import re

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
POD = "Dn"  # the two "instance" characters after the key prefix


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def make_id(prefix: str, serial: int) -> str:
    """The 18-character id of the `serial`-th record of an object with key `prefix`."""
    digits = []
    for _ in range(10):
        serial, rem = divmod(serial, 62)
        digits.append(_BASE62[rem])
    id15 = prefix + POD + "".join(reversed(digits))
    return id15 + checksum(id15)


def normalize(value: str) -> str | None:
    """The 18-character form of a well-formed id, or None when it is malformed."""
    if not _SHAPE.match(value):
        return None
    id15 = value[:15]
    full = id15 + checksum(id15)
    if len(value) == 18 and value[15:] != full[15:]:
        return None
    return full
