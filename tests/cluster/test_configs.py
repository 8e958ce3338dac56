"""The cluster configs agree with odist: resource shares, flags, scripts, secrets and Ray versions."""

from __future__ import annotations

import copy
import math
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

import odist
from odist.cli import _teacher_pool_config, build_parser
from odist.fleet.student_actor import worker_options
from odist.fleet.teacher_pool import TeacherPoolConfig
from odist.plan.capacity import DEFAULT_STUDENT_GPUS, DEFAULT_TEACHER_BATCH, DEFAULT_TEACHER_GPUS

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
GUIDE = ROOT / "docs" / "cluster.md"  # the cluster guide, moved from cluster/README.md
IMAGE_REPO_ROOT = "/home/ray/odist/"  # where the image of docs/cluster.md holds this repository
S3_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
OPTIONAL_AWS_ENV = {"AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"}


def load(relative: str) -> Any:
    return yaml.safe_load((CLUSTER / relative).read_text())


@pytest.fixture(scope="module")
def raycluster() -> dict[str, Any]:
    return load("kuberay/raycluster.yaml")


@pytest.fixture(scope="module")
def rayjob() -> dict[str, Any]:
    return load("kuberay/rayjob.yaml")


@pytest.fixture(scope="module")
def aws() -> dict[str, Any]:
    return load("aws/odist-cluster.yaml")


def gpu_group(raycluster: dict[str, Any]) -> dict[str, Any]:
    (group,) = raycluster["spec"]["workerGroupSpecs"]
    return group


def containers(raycluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [raycluster["spec"]["headGroupSpec"], *raycluster["spec"]["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def job_argv(rayjob: dict[str, Any]) -> tuple[str, list[str]]:
    """The entrypoint's script (as a repository path) and its arguments."""
    words = shlex.split(rayjob["spec"]["entrypoint"])
    assert words[0] == "python"
    script = words[1]
    assert script.startswith(IMAGE_REPO_ROOT), script
    return script.removeprefix(IMAGE_REPO_ROOT), words[2:]


def job_args(rayjob: dict[str, Any]) -> Any:
    _, argv = job_argv(rayjob)
    return build_parser().parse_args(["run", *argv])


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", str(quantity)).groups()
    return int(number) * units.get(unit, 1)


# --- KubeRay RayCluster ---------------------------------------------------------------------------------


def test_raycluster_autoscales_with_a_cpu_only_head(raycluster):
    spec = raycluster["spec"]
    assert raycluster["apiVersion"] == "ray.io/v1" and raycluster["kind"] == "RayCluster"
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert head["rayStartParams"]["num-cpus"] == "0"
    (container,) = head["template"]["spec"]["containers"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})


def test_gpu_group_advertises_the_gpus_its_pods_get(raycluster):
    group = gpu_group(raycluster)
    (container,) = group["template"]["spec"]["containers"]
    gpus = int(group["rayStartParams"]["num-gpus"])
    assert gpus >= 1
    assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
    assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_groups_ask_for_no_custom_resources_odist_never_requests(raycluster):
    # odist's actors ask for GPU/CPU only, so a custom resource on a group would steer nothing.
    assert set(worker_options(DEFAULT_STUDENT_GPUS)) == {"num_gpus", "num_cpus"}
    assert set(TeacherPoolConfig(num_gpus=1.0).actor_options()) == {"num_gpus", "num_cpus"}
    for group in [raycluster["spec"]["headGroupSpec"], *raycluster["spec"]["workerGroupSpecs"]]:
        assert "resources" not in group["rayStartParams"]


def test_object_store_fits_shm_and_memory_limit(raycluster):
    for group in [raycluster["spec"]["headGroupSpec"], *raycluster["spec"]["workerGroupSpecs"]]:
        spec = group["template"]["spec"]
        (container,) = spec["containers"]
        store = int(group["rayStartParams"]["object-store-memory"])
        (shm,) = [v for v in spec["volumes"] if v["name"] == "dshm"]
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
        assert shm["emptyDir"]["medium"] == "Memory"
        limit = memory_bytes(container["resources"]["limits"]["memory"])
        assert store < memory_bytes(shm["emptyDir"]["sizeLimit"]) < limit


def test_every_container_gets_the_s3_secret(raycluster):
    for container in containers(raycluster):
        env = {e["name"]: e for e in container["env"]}
        assert set(env) >= S3_ENV, container["name"]
        assert set(env) <= S3_ENV | OPTIONAL_AWS_ENV
        secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values()}
        assert secrets == {"odist-s3"}
        for name in S3_ENV:
            assert not env[name]["valueFrom"]["secretKeyRef"].get("optional", False)


def test_secret_keys_are_the_ones_the_guide_creates(raycluster):
    readme = GUIDE.read_text()
    assert "kubectl create secret generic odist-s3" in readme
    for container in containers(raycluster):
        for entry in container["env"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert f"{ref['key']}=" in readme, ref["key"]


def test_odist_reads_the_s3_variables(s3_endpoint, s3_bucket):
    """The AWS_* variables the containers get reach odist: objects land at the endpoint AWS_ENDPOINT_URL names,
    and the Arrow filesystem (reports, datasets) reads them there in the AWS_DEFAULT_REGION region."""
    import boto3

    from odist.storage.objectstore import open_store

    store = open_store(f"s3://{s3_bucket}/run")
    store.put("probe.txt", b"odist")
    direct = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    assert direct.get_object(Bucket=s3_bucket, Key="run/probe.txt")["Body"].read() == b"odist"
    filesystem, root = store.arrow_filesystem()
    with filesystem.open_input_stream(f"{root}/probe.txt") as stream:
        assert stream.read() == b"odist"
    assert filesystem.region == "us-east-1"


def test_images_carry_odist_version(raycluster):
    images = {c["image"] for c in containers(raycluster)}
    assert len(images) == 1
    assert images.pop().rsplit(":", 1)[1] == odist.__version__


# --- KubeRay RayJob -------------------------------------------------------------------------------------


def test_rayjob_targets_the_raycluster(rayjob, raycluster):
    assert rayjob["kind"] == "RayJob"
    assert rayjob["spec"]["clusterSelector"] == {"ray.io/cluster": raycluster["metadata"]["name"]}


def test_rayjob_script_exists_and_accepts_its_flags(rayjob):
    script, argv = job_argv(rayjob)
    assert script == "ray_jobs/archive_job.py"
    assert (ROOT / script).is_file()
    assert "--address" not in argv  # archive_job.py adds --address auto
    args = job_args(rayjob)
    assert args.source.startswith("s3://") and args.out.startswith("s3://")
    assert args.device == "cuda"
    pool = _teacher_pool_config(args)
    assert pool is not None and pool.validate() is pool


def test_rayjob_shares_match_odist_defaults(rayjob, raycluster):
    args = job_args(rayjob)
    gpus_per_pod = int(gpu_group(raycluster)["rayStartParams"]["num-gpus"])
    assert args.student_gpus == DEFAULT_STUDENT_GPUS
    students_per_gpu = 1 / args.student_gpus
    assert students_per_gpu == int(students_per_gpu) == 8
    assert worker_options(args.student_gpus) == {"num_gpus": args.student_gpus, "num_cpus": 0.0}
    assert args.teacher_gpus == DEFAULT_TEACHER_GPUS
    assert float(args.teacher_gpus).is_integer() and args.teacher_gpus <= gpus_per_pod
    assert _teacher_pool_config(args).actor_options() == {"num_gpus": args.teacher_gpus, "num_cpus": 0.0}
    assert args.teacher_batch == DEFAULT_TEACHER_BATCH == TeacherPoolConfig().max_batch_size


def test_rayjob_fits_the_gpu_group(rayjob, raycluster):
    args = job_args(rayjob)
    group = gpu_group(raycluster)
    pool = _teacher_pool_config(args)
    student_gpus = math.ceil(args.workers / math.floor(1 / args.student_gpus))
    teacher_gpus = math.ceil(pool.max_replicas * pool.num_gpus)
    assert student_gpus + teacher_gpus <= group["maxReplicas"] * int(group["rayStartParams"]["num-gpus"])


# --- AWS ray up -----------------------------------------------------------------------------------------


def test_aws_config_passes_rays_schema(aws):
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(aws)))


def test_aws_head_has_no_gpu_and_workers_have_one(aws):
    assert aws["provider"]["type"] == "aws"
    types = aws["available_node_types"]
    assert types[aws["head_node_type"]]["resources"] == {"CPU": 0, "GPU": 0}
    workers = {name: t for name, t in types.items() if name != aws["head_node_type"]}
    assert list(workers) == ["gpu_worker"]
    worker = workers["gpu_worker"]
    assert worker["node_config"]["InstanceType"] == "g5.2xlarge"
    assert worker["resources"] == {"CPU": 8, "GPU": 1}  # g5.2xlarge: 8 vCPU, one A10G
    assert 0 <= worker["min_workers"] <= worker["max_workers"] == aws["max_workers"]
    assert worker["resources"]["CPU"] >= 1 / DEFAULT_STUDENT_GPUS  # a vCPU per student for video decoding


def test_aws_installs_odist_from_the_wheel(aws):
    mounts = aws["file_mounts"]
    (remote,) = [r for r, local in mounts.items() if local == "./dist"]
    assert any(f"{remote}/odist-" in cmd and "[s3]" in cmd and "pip install" in cmd for cmd in aws["setup_commands"])


def test_ray_versions_agree(aws, raycluster):
    version = raycluster["spec"]["rayVersion"]
    assert aws["docker"]["image"] == f"rayproject/ray:{version}-py311-gpu"
    assert f"FROM rayproject/ray:{version}-py311-gpu" in GUIDE.read_text()


def test_object_store_settings_in_start_commands(aws):
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("--object-store-memory=" in cmd for cmd in aws[key]), key


def test_local_script_is_kept():
    assert (CLUSTER / "local" / "ray-local.sh").is_file()
