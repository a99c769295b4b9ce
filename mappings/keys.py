"""Item keys: which write an op is, stable across re-runs of the same meeting.

The key of a per-item op is the destination name plus the item's normalised title and
owner, so re-extracting the same meeting plans the same keys; matching re-worded items to
earlier ones happens elsewhere (the ledger) and only needs to change `item_key`.
"""

from __future__ import annotations

import re
import unicodedata

from extraction.schemas import ActionItem


def normalise_title(title: str) -> str:
    """Lower case, no accents, punctuation or repeated spaces: 'Send the SOW!' → 'send the sow'."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain.lower()).split())


def meeting_key(destination: str) -> str:
    """The item key of a destination's one op per meeting."""
    return destination


def item_key(destination: str, item: ActionItem) -> str:
    """The item key of one action item's op: '<destination>:<title>|<owner>'."""
    owner = (item.owner_email or item.owner or "").strip().lower()
    return f"{destination}:{normalise_title(item.title)}|{owner}"
