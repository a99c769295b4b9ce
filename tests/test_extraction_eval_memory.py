"""The eval with an org's memory: the same meetings with memory off and on, side by side."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import extraction
from extraction.dataset import InvalidDataset, load_dataset
from extraction.eval import EvalOptions, compare_memory, run_eval
from meetsync.settings import LLMSettings
from sandbox.server import Sandbox

MEMORY_SET = Path(extraction.__file__).parent / "datasets" / "memory"


def test_memory_fixes_owners_terms_and_closes_earlier_commitments(sandbox: Sandbox) -> None:
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    off, on = compare_memory(MEMORY_SET, settings, options=EvalOptions(resamples=200))
    assert (off.memory, on.memory) == (False, True)
    # misspelt and first-name owners, misspelt terms: memory resolves them
    assert off.owner_accuracy is not None and on.owner_accuracy is not None
    assert on.owner_accuracy >= off.owner_accuracy + 0.5
    assert off.term_accuracy == 0.0 and on.term_accuracy == 1.0
    # closures: none without memory; with it, each reported one and no other
    assert (off.closures_correct, off.closures_predicted) == (0, 0)
    assert on.closures_correct == on.closures_gold == on.closures_predicted == 4
    # what it costs: the recalled block, in both prompts of every meeting, within budget
    assert off.memory_tokens == 0 < on.memory_tokens <= 600 * on.meetings
    assert on.input_tokens - off.input_tokens >= on.memory_tokens
    assert on.f1 >= off.f1


def test_a_bad_row_in_a_datasets_memory_is_reported_with_its_place(tmp_path: Path) -> None:
    shutil.copytree(MEMORY_SET, tmp_path / "set")
    memory = tmp_path / "set" / "memory.yaml"
    memory.write_text(memory.read_text().replace("email: jon@northwind.io", "email: jon at nw"))
    with pytest.raises(InvalidDataset) as refused:
        load_dataset(tmp_path / "set")
    assert "memory.yaml: $.people[0].email: Value error" in str(refused.value)


def test_memory_on_a_set_without_memory_says_so(sandbox: Sandbox, tmp_path: Path) -> None:
    shutil.copytree(MEMORY_SET, tmp_path / "set")
    (tmp_path / "set" / "memory.yaml").unlink()
    settings = LLMSettings(base_url=sandbox.urls["openai"])
    with pytest.raises(ValueError, match=r"has no memory\.yaml"):
        run_eval(tmp_path / "set", settings, options=EvalOptions(memory=True, resamples=10))
