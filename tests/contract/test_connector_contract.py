"""One contract every connector passes against its emulator, through the real SDK."""

from __future__ import annotations

import importlib

import pytest

from connectors.base import ConnectorFacts, Limits
from connectors.errors import AuthExpired, Permanent, RateLimited, Transient
from connectors.registry import available, connector_class, facts
from sandbox.server import Sandbox
from tests.contract.case import ContractCase

# every connector installed under the `meetsync.connectors` entry points, none left out
PROVIDERS = sorted(available())
# a second way to key writes: Asana's personal access tokens may not use `external`
CASES = sorted([*PROVIDERS, "asana:pat"])
REFRESHABLE = ["asana", "salesforce"]  # OAuth access tokens; Slack bot tokens do not expire


def _make(case: str, sandbox: Sandbox) -> ContractCase:
    # an installed connector without a case fails here rather than going untested
    provider, _, variant = case.partition(":")
    module = importlib.import_module(f"tests.contract.case_{provider}")
    made: ContractCase = (
        module.make_case(sandbox, variant) if variant else module.make_case(sandbox)
    )
    return made


@pytest.fixture(params=[pytest.param(p, id=p) for p in CASES])
def case(request: pytest.FixtureRequest, clean_sandbox: Sandbox) -> ContractCase:
    return _make(request.param, clean_sandbox)


@pytest.fixture(params=[pytest.param(p, id=p) for p in REFRESHABLE])
def refreshable(request: pytest.FixtureRequest, clean_sandbox: Sandbox) -> ContractCase:
    return _make(request.param, clean_sandbox)


def test_create_makes_exactly_one_object(case: ContractCase) -> None:
    op = case.op()
    receipt = case.connector.apply(op, None)
    held = case.held(op)
    assert len(held) == 1
    assert receipt.external_id
    assert case.reflects(held[0], op)


def test_reapply_with_same_payload_writes_nothing_new(case: ContractCase) -> None:
    op = case.op()
    first = case.connector.apply(op, None)
    second = case.connector.apply(op, first)
    assert second.external_id == first.external_id
    assert len(case.held(op)) == 1


def test_changed_payload_updates_in_place(case: ContractCase) -> None:
    first_op, changed = case.op("a"), case.op("b")
    assert first_op.key == changed.key and first_op.payload_hash != changed.payload_hash
    first = case.connector.apply(first_op, None)
    second = case.connector.apply(changed, first)
    held = case.held(changed)
    assert second.external_id == first.external_id
    assert len(held) == 1
    assert case.reflects(held[0], changed)


def test_lost_response_is_recovered_by_find_without_duplicate(case: ContractCase) -> None:
    op = case.op()
    method = getattr(case, "write_method", "POST")  # Salesforce upserts by External ID: PATCH
    case.admin.arm("lost_response", method=method, path=case.write_path)
    with pytest.raises(Transient):
        case.connector.apply(op, None)
    found = case.connector.find(op)
    assert found is not None
    held = case.held(op)
    assert len(held) == 1
    assert case.connector.apply(op, found).external_id == found.external_id
    assert len(case.held(op)) == 1


def test_nothing_found_for_an_op_never_sent(case: ContractCase) -> None:
    assert case.connector.find(case.op()) is None


def test_429_becomes_rate_limited_with_the_providers_wait(case: ContractCase) -> None:
    case.admin.arm("error", status=429, retry_after=7, path=case.write_path)
    with pytest.raises(RateLimited) as caught:
        case.connector.apply(case.op(), None)
    assert caught.value.retry_after == pytest.approx(7, abs=1)
    assert case.held(case.op()) == []


def test_5xx_becomes_transient(case: ContractCase) -> None:
    case.admin.arm("error", status=503, path=case.write_path)
    with pytest.raises(Transient):
        case.connector.apply(case.op(), None)


def test_permanent_error_keeps_the_providers_reason(case: ContractCase) -> None:
    with pytest.raises(Permanent) as caught:
        case.connector.apply(case.rejected_op(), None)
    assert caught.value.provider_code


def test_provider_refusals_become_the_error_that_says_what_to_do(case: ContractCase) -> None:
    for refusal in case.refusals():
        case.admin.clear_faults()
        case.admin.arm("error", **refusal.fault)
        with pytest.raises(refusal.error) as caught:
            case.connector.apply(case.op(), None)
        assert caught.value.provider_code == refusal.code
        assert refusal.words in str(caught.value)
        assert case.held(case.op()) == []
    case.admin.clear_faults()


def test_expired_auth_is_refreshed(refreshable: ContractCase) -> None:
    refreshable.set_auth("expire")
    op = refreshable.op()
    refreshable.connector.apply(op, None)
    assert len(refreshable.held(op)) == 1


def test_revoked_auth_raises_auth_expired(case: ContractCase) -> None:
    case.set_auth("revoke")
    try:
        with pytest.raises(AuthExpired):
            case.connector.apply(case.op(), None)
    finally:
        case.set_auth("restore")


@pytest.mark.parametrize("provider", [pytest.param(p, id=p) for p in PROVIDERS])
def test_a_connector_states_its_facts_on_its_class(provider: str) -> None:
    cls = connector_class(provider)
    known = facts(provider)
    assert issubclass(cls, ConnectorFacts) and known is cls
    assert cls.name == provider and isinstance(cls.default_limits, Limits)
    assert known.actions, "the verbs a mapping may name are checked when it is saved"
    if known.workspace_limits is not None:
        assert known.workspace_limits.rate >= cls.default_limits.rate
    for target in ({"object": "Task"}, {"object": "Opportunity"}, {"project": "P"}, {}):
        # whatever closes a record can reopen it, and the two set the same fields
        closing, reopening = known.closing(target), known.reopening(target)
        assert (closing is None) == (reopening is None)
        if closing is not None and reopening is not None:
            assert set(closing) == set(reopening) and closing != reopening


def test_an_unknown_connector_has_no_facts() -> None:
    assert facts("no-such-connector") is ConnectorFacts
    assert ConnectorFacts.closing({"object": "Task"}) is None and ConnectorFacts.actions == ()
