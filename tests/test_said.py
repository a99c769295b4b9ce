"""Whether a meeting says a name: the word-set shortcut answers as the regex scan does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from extraction.said import Said, says

WORDS = ["Jon", "jon's", "Smith", "O'Brien", "ß", "STRASSE", "straße", "Łukasz", "ŁUKASZ", "C++"]
phrases = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
texts = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=12).map(" ".join)


@given(texts, phrases)
@settings(max_examples=400, deadline=None)
def test_the_shortcut_agrees_with_scanning_the_text(text: str, phrase: str) -> None:
    assert Said(text).says(phrase) == says(text, phrase)


def test_a_name_is_said_as_whole_words_in_any_case() -> None:
    said = Said("Did JON SMITH send it?\nO'Brien will, and jon's team too.")
    assert said.says("Jon Smith") and said.says("o'brien") and said.says("Jon")
    assert not said.says("Jo")  # inside a longer word
    assert not said.says("Smithers") and not said.says("Jon Brien")
