"""The KubeRay manifest (deploy/kuberay/raycluster.yaml), validated offline: the shape the
KubeRay operator (ray.io/v1 RayCluster) expects and what asyncspark's executors need from
it (the custom executor resource, token authentication, the client and GCS ports)."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

MANIFEST = pathlib.Path(__file__).parents[2] / "deploy" / "kuberay" / "raycluster.yaml"
RESOURCE = "asyncspark_executor"


@pytest.fixture(scope="module")
def cluster() -> dict:
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert len(docs) == 1
    return docs[0]


def containers(spec: dict) -> list[dict]:
    return spec["template"]["spec"]["containers"]


def test_is_a_raycluster(cluster):
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["kind"] == "RayCluster"
    assert cluster["metadata"]["name"]
    assert set(cluster["spec"]) >= {"rayVersion", "headGroupSpec", "workerGroupSpecs"}


def test_ray_version_is_the_one_the_extra_installs(cluster):
    ray = pytest.importorskip("ray", reason="ray is not installed (.ci/run installs it)")
    major_minor = ".".join(ray.__version__.split(".")[:2])
    assert cluster["spec"]["rayVersion"].startswith(major_minor)


def test_every_container_is_token_authenticated(cluster):
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    for group in groups:
        for c in containers(group):
            env = {e["name"]: e for e in c["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token", c["name"]
            ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "asyncspark-ray-token", "key": "token"}
            assert c["image"]


def test_head_runs_no_executor_and_exposes_gcs_and_client(cluster):
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert "resources" not in head["rayStartParams"]
    ports = {p["containerPort"] for c in containers(head) for p in c["ports"]}
    assert {6379, 10001} <= ports


def test_workers_offer_the_executor_resource_per_cpu(cluster):
    (group,) = cluster["spec"]["workerGroupSpecs"]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    params = group["rayStartParams"]
    # KubeRay passes the value to `ray start --resources=` as it is: a quoted JSON string.
    raw = params["resources"]
    assert raw[0] == raw[-1] == '"'
    resources = json.loads(json.loads(raw))
    cpus = int(params["num-cpus"])
    assert resources == {RESOURCE: cpus}
    (c,) = containers(group)
    assert c["resources"]["limits"]["cpu"] == str(cpus)
    assert c["resources"]["requests"] == c["resources"]["limits"]
    mounts = {m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"] for v in group["template"]["spec"]["volumes"]}
    assert mounts <= volumes
