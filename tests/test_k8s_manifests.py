"""deploy/k8s: every overlay renders to objects the Kubernetes (and KEDA) schemas accept,
and to a deployment that keeps its promises: non-root, read-only, requests set, secrets
from a Secret, one lane per queue, each lane scaled by KEDA on exactly its queues.

The overlays use only what a small renderer here does as `kubectl kustomize` would:
resources, a configMapGenerator, namespace, labels and images. No network, no binary.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["redis", "rabbitmq"]
KUBERNETES = "1.37.0"
KEDA = yaml.safe_load((Path(__file__).parent / "schemas" / "keda-v2.yaml").read_text())
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
SECRET_NAME = "meetsync-secrets"

Doc = dict[str, Any]


def render(directory: Path) -> list[Doc]:
    """What `kubectl kustomize directory` gives, for the features our overlays use."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for generator in spec.get("configMapGenerator", []):
        literals = dict(item.split("=", 1) for item in generator.get("literals", []))
        existing = [
            d
            for d in docs
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == generator["name"]
        ]
        if generator.get("behavior") == "merge":
            existing[0]["data"].update(literals)
        else:
            assert not existing, f"ConfigMap {generator['name']} generated twice"
            docs.append(
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": generator["name"]}, "data": literals}
            )  # fmt: skip
    for doc in docs:
        metadata = doc.setdefault("metadata", {})
        for group in spec.get("labels", []):
            metadata.setdefault("labels", {}).update(group["pairs"])
        if spec.get("namespace") and doc["kind"] not in CLUSTER_SCOPED:
            metadata["namespace"] = spec["namespace"]
        for image in spec.get("images", []):
            for container in _containers(doc):
                if container["image"] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    return docs


def _pod(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "Job"):
        pod: Doc = doc["spec"]["template"]["spec"]
        return pod
    return None


def _containers(doc: Doc) -> list[Doc]:
    pod = _pod(doc)
    return [] if pod is None else pod["containers"]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return render(K8S / "overlays" / request.param)


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_object_fits_its_schema(rendered: list[Doc]) -> None:
    for doc in rendered:
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, {**KEDA[doc["kind"]], "definitions": KEDA["definitions"]})
        else:
            kubernetes_validate.validate(copy.deepcopy(doc), KUBERNETES, strict=True)


def test_the_secret_example_fits_its_schema() -> None:
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    kubernetes_validate.validate(example, KUBERNETES, strict=True)
    for value in example["stringData"].values():
        assert "CHANGE-ME" in value or value in ("{}", "redis:6379"), value


def test_a_schema_error_is_caught() -> None:
    """The validation above is not vacuous: a misspelt field fails, in both kinds."""
    docs = render(K8S / "overlays" / "redis")
    broken = copy.deepcopy(by_kind(docs, "Deployment")["meetsync-api"])
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    scaled = copy.deepcopy(next(iter(by_kind(docs, "ScaledObject").values())))
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, {**KEDA["ScaledObject"], "definitions": KEDA["definitions"]})


def test_every_pod_runs_as_nobody_read_only_with_requests_and_secrets_from_a_secret(
    rendered: list[Doc],
) -> None:
    config = by_kind(rendered, "ConfigMap")["meetsync-config"]["data"]
    assert not [k for k in config if any(w in k for w in ("SECRET", "KEY", "TOKEN", "PASSWORD"))]
    account = by_kind(rendered, "ServiceAccount")["meetsync"]
    assert account["automountServiceAccountToken"] is False
    pods = [d for d in rendered if _pod(d) is not None]
    assert pods
    for doc in pods:
        pod = _pod(doc)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert (
            pod["automountServiceAccountToken"] is False
            if "automountServiceAccountToken" in pod
            else True
        )
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert container["image"].startswith("registry.example.com/meetsync:")
            sources = [s.get("secretRef", {}).get("name") for s in container["envFrom"]]
            assert SECRET_NAME in sources
            assert not container.get("env"), "settings come from the ConfigMap and Secret"


def test_the_api_scales_on_cpu_and_keeps_one_pod_through_disruptions(rendered: list[Doc]) -> None:
    hpa = by_kind(rendered, "HorizontalPodAutoscaler")["meetsync-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "meetsync-api"
    assert hpa["spec"]["minReplicas"] >= 2
    assert by_kind(rendered, "PodDisruptionBudget")["meetsync-api"]["spec"]["minAvailable"] == 1
    api = by_kind(rendered, "Deployment")["meetsync-api"]["spec"]["template"]["spec"]
    probes = api["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_migrations_run_as_a_job() -> None:
    job = by_kind(render(K8S / "overlays" / "redis"), "Job")["meetsync-migrate"]
    assert _containers(job)[0]["command"] == ["meetsync", "db", "upgrade"]


def _lane_queues(deployment: Doc) -> list[str]:
    command = _containers(deployment)[0]["command"]
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--queue"]


def declared_queues() -> set[str]:
    broker = make_broker("stub")
    from meetsync.settings import Settings

    declare(broker, Runtime(Settings(database_url="sqlite://")))
    return {q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))}


def test_each_queue_has_exactly_one_lane_and_each_lane_is_scaled_on_its_queues(
    rendered: list[Doc], request: pytest.FixtureRequest
) -> None:
    workers = {name: d for name, d in by_kind(rendered, "Deployment").items() if "worker" in name}
    lanes = {name: _lane_queues(d) for name, d in workers.items()}
    served = [q for queues in lanes.values() for q in queues]
    assert sorted(served) == sorted(declared_queues()), "every queue served, once"
    disruption = by_kind(rendered, "PodDisruptionBudget")
    scaled = by_kind(rendered, "ScaledObject")
    assert set(scaled) == set(workers)
    for name, queues in lanes.items():
        assert name in disruption
        selector = disruption[name]["spec"]["selector"]["matchLabels"]
        labels = workers[name]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        triggers = spec["triggers"]
        for trigger in triggers:
            rules = KEDA["scalers"][trigger["type"]]
            assert set(rules["required"]) <= set(trigger["metadata"])
            assert set(trigger["metadata"]) <= set(rules["allowed"]), trigger["metadata"]
            auth = trigger["authenticationRef"]["name"]
            refs = by_kind(rendered, "TriggerAuthentication")[auth]["spec"]["secretTargetRef"]
            assert {r["name"] for r in refs} == {SECRET_NAME}
        if request.node.callspec.params["rendered"] == "redis":
            watched = [t["metadata"]["listName"].removeprefix("dramatiq:") for t in triggers]
        else:
            watched = [t["metadata"]["queueName"] for t in triggers]
        assert watched == queues, name
