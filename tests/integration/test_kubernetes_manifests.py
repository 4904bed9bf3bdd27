"""Services bring their own Kubernetes manifests: podinfo's real kustomize bases (from
shared/realworld), built with kubectl kustomize, adopted into each cell's namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.fleetrepo import FleetRepo

ROOT = Path(__file__).parents[2]
PODINFO = ROOT.parent / "shared" / "realworld" / "podinfo"
CELLOPS = str(Path(sys.executable).parent / "cellops")


# podinfo's bases run as the image's user, with tagged public images: a fleet that takes
# them as they are accepts Pod Security `baseline` and those registries' tags.
AS_THEY_ARE = """\
  imagePolicy:
    requireDigest: false
    allowedRegistries: [123456789012.dkr.ecr.eu-west-1.amazonaws.com, ghcr.io, docker.io]
  kubernetes:
    podSecurity: baseline
"""
STRICT = """\
  imagePolicy:
    requireDigest: true
    allowedRegistries: [123456789012.dkr.ecr.eu-west-1.amazonaws.com, ghcr.io, docker.io]
  kubernetes:
"""


@pytest.fixture
def fleet(tmp_path: Path) -> FleetRepo:
    if not PODINFO.is_dir():
        pytest.skip("shared/realworld is not beside this checkout")
    repo = FleetRepo(tmp_path / "k8s", ROOT / "examples" / "k8s-fleet")
    shutil.copytree(PODINFO / "backend", repo.path / "services/payments/manifests")
    shutil.copytree(PODINFO / "cache", repo.path / "services/ledger/manifests")
    policy = repo.read("cellops.yaml")
    start, end = policy.index("  imagePolicy:"), policy.index("    version:")
    repo.write("cellops.yaml", policy[:start] + AS_THEY_ARE + policy[end:])
    repo.commit("payments and ledger bring podinfo's bases")
    return repo


def render(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CELLOPS, "render", *map(str, args), "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or dict(os.environ),
    )


def test_podinfo_bases_render_into_the_cell(fleet: FleetRepo) -> None:
    result = render(fleet.path, "--cell", "eu-1")
    assert result.returncode == 0, result.stderr
    objects = list(yaml.safe_load_all(result.stdout))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    # podinfo's objects, including what kustomize generated from redis.conf
    assert {
        ("Deployment", "backend"),
        ("HorizontalPodAutoscaler", "backend"),
        ("Service", "cache"),
        ("Deployment", "cache"),
    } <= names
    assert any(kind == "ConfigMap" and name.startswith("redis-config-") for kind, name in names)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.32", strict=True)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "cell-eu-1"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cellops"
    backend = next(
        o for o in objects if o["metadata"]["name"] == "backend" and o["kind"] == "Deployment"
    )
    assert backend["metadata"]["labels"]["cellops.dev/service"] == "payments"
    # the files as they are give the same objects as the commit
    same = render("--path", fleet.path, "--cell", "eu-1")
    assert same.returncode == 0, same.stderr
    assert {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(same.stdout)} == names


def test_cluster_scoped_objects_are_refused(fleet: FleetRepo) -> None:
    fleet.write(
        "services/payments/manifests/role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: everything}\nrules: []\n",
    )
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:\n",
        "resources:\n  - role.yaml\n",
    )
    fleet.commit("a cluster role")
    result = render(fleet.path, "--cell", "eu-1")
    assert result.returncode == 1
    assert (
        "services/payments/manifests: ClusterRole everything: ClusterRole 'everything' is"
        " cluster-scoped" in result.stderr
    )
    assert result.stdout == ""  # nothing for `kubectl apply -f -` to apply
    anyway = render(fleet.path, "--cell", "eu-1", "--no-validate")
    assert anyway.returncode == 0, anyway.stderr
    assert "kind: ClusterRole" in anyway.stdout


def test_render_refuses_what_validate_rejects(fleet: FleetRepo) -> None:
    """`render -o yaml | kubectl apply -f -` applied a revision `validate` rejected."""
    fleet.replace(
        "services/payments/manifests/deployment.yaml", "  minReadySeconds: 3", "  minReadySecond: 3"
    )
    fleet.commit("a typo")
    for args in ([fleet.path], ["--path", fleet.path]):
        result = render(*args, "--cell", "us-1")
        assert result.returncode == 1, result.stdout
        assert result.stdout == ""
        assert "services/payments/manifests: Deployment backend: spec" in result.stderr
        assert "minReadySecond" in result.stderr and "nothing rendered" in result.stderr
    assert render(fleet.path, "--cell", "us-1", "--no-validate").returncode == 0


def test_a_kustomization_without_kubectl_says_so(fleet: FleetRepo, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = render(fleet.path, "--cell", "eu-1", env={**os.environ, "PATH": str(empty)})
    assert result.returncode == 1
    assert "needs kubectl (with kustomize) on PATH" in result.stderr


def test_plain_yaml_manifests_need_no_kubectl(fleet: FleetRepo) -> None:
    (fleet.path / "services/ledger/manifests/kustomization.yaml").unlink()
    (fleet.path / "services/ledger/manifests/redis.conf").unlink()
    fleet.replace("services/ledger/manifests/deployment.yaml", "redis-config", "redis-settings")
    fleet.commit("plain files")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    shutil.rmtree(fleet.path / "services/payments/manifests")
    fleet.commit("payments without manifests")
    result = render(fleet.path, "--cell", "us-1", env=env)
    assert result.returncode == 0, result.stderr
    names = {(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(result.stdout)}
    assert {("Service", "cache"), ("Deployment", "cache")} <= names


def cellops(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CELLOPS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_objects_are_validated_before_a_revision_is_accepted(fleet: FleetRepo) -> None:
    assert cellops("validate", fleet.path).returncode == 0
    fleet.replace(
        "services/payments/manifests/deployment.yaml",
        "  minReadySeconds: 3",
        "  minReadySeconds: 3\n  minReadySecond: 3",
    )
    fleet.commit("a typo in podinfo's deployment")
    for command in ("validate", "plan"):
        result = cellops(command, fleet.path)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "services/payments/manifests: Deployment backend" in result.stdout
        assert "not valid for Kubernetes 1.32" in result.stdout
        assert "minReadySecond" in result.stdout
    # the same, on the files before committing
    path_result = cellops("validate", "--path", fleet.path)
    assert path_result.returncode == 1 and "minReadySecond" in path_result.stdout


def test_a_custom_resource_is_refused_until_the_fleet_declares_it_namespaced(
    fleet: FleetRepo,
) -> None:
    fleet.write(
        "services/payments/manifests/monitor.yaml",
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
        "metadata: {name: backend}\nspec: {endpoints: [{port: http}]}\n",
    )
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:",
        "resources:\n  - monitor.yaml",
    )
    fleet.commit("payments is scraped")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "services/payments/manifests: ServiceMonitor backend: ServiceMonitor"
        " (monitoring.coreos.com/v1) is not a kind cellops knows to be namespaced" in result.stdout
    )
    assert "namespacedKinds: [{group: monitoring.coreos.com, kind: ServiceMonitor}]" in (
        result.stdout
    )
    fleet.replace(
        "cellops.yaml",
        "  kubernetes:\n",
        "  kubernetes:\n    namespacedKinds:\n"
        "      - {group: monitoring.coreos.com, kind: ServiceMonitor}\n",
    )
    fleet.commit("ServiceMonitors are namespaced")
    result = cellops("validate", fleet.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "services/payments/manifests: ServiceMonitor backend: warning: no schema" in result.stdout
    )


def test_a_kubernetes_version_without_schemas_is_blamed_on_the_fleet(fleet: FleetRepo) -> None:
    fleet.replace("cellops.yaml", 'version: "1.32"', 'version: "1.99"')
    fleet.commit("a version from the future")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert "cellops.yaml: spec.kubernetes.version: kubernetes-validate has no schemas" in (
        result.stdout
    )


def test_an_object_rendered_twice_is_rejected(fleet: FleetRepo) -> None:
    fleet.write(
        "services/payments/manifests/also-payments.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: payments}\nspec: {ports: [{port: 80}]}\n",
    )
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:",
        "resources:\n  - also-payments.yaml",
    )
    fleet.commit("payments' manifests bring a Service cellops renders too")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    assert (
        "services/payments/manifests: Service payments: the same object is already rendered"
        " from services/payments/service.yaml" in result.stdout
    )
    assert "rename it in services/payments/manifests, or remove spec.ports from" in result.stdout


HARDENED = """\
resources: [base]
images:
  - {name: ghcr.io/stefanprodan/podinfo, digest: "sha256:PODINFO"}
  - {name: docker.io/redis, digest: "sha256:REDIS"}
patches:
  - target: {kind: Deployment}
    patch: |
      - op: add
        path: /spec/template/spec/securityContext
        value: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      - op: add
        path: /spec/template/spec/containers/0/securityContext
        value: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
""".replace("PODINFO", "1" * 64).replace("REDIS", "2" * 64)


def test_podinfo_meets_the_default_level_under_an_overlay_of_its_unchanged_bases(
    fleet: FleetRepo,
) -> None:
    """At the default Pod Security level (restricted) and with digests required, podinfo's
    bases are refused, each missing field named; a kustomization over the unchanged bases
    (what a user adds) makes them pass."""
    fleet.write("cellops.yaml", fleet.read("cellops.yaml").replace(AS_THEY_ARE, STRICT))
    fleet.commit("restricted pods, pinned images")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    for service, name, image in (
        ("payments", "backend", "ghcr.io/stefanprodan/podinfo:6.14.1"),
        ("ledger", "cache", "docker.io/redis:8.8.0"),
    ):
        at = f"services/{service}/manifests: Deployment {name}: spec.template.spec.containers[0]"
        for field in ("runAsNonRoot", "seccompProfile.type", "allowPrivilegeEscalation"):
            assert f"{at}.securityContext.{field}: expected" in result.stdout, result.stdout
        assert f"{at}.securityContext.capabilities.drop: expected to drop ALL" in result.stdout
        assert f"{at}.image: {image!r} is not pinned by digest" in result.stdout
    for service in ("payments", "ledger"):
        manifests = fleet.path / f"services/{service}/manifests"
        manifests.rename(manifests.with_name("base"))
        manifests.mkdir()
        manifests.with_name("base").rename(manifests / "base")
        fleet.write(f"services/{service}/manifests/kustomization.yaml", HARDENED)
    fleet.commit("podinfo's bases, unchanged, under an overlay")
    result = cellops("validate", fleet.path)
    assert result.returncode == 0, result.stdout
    objects = list(yaml.safe_load_all(render(fleet.path, "--cell", "eu-1").stdout))
    backend = next(o for o in objects if (o["kind"], o["metadata"]["name"]) == BACKEND)
    assert backend["spec"]["template"]["spec"]["containers"][0]["image"].endswith("1" * 64)


BACKEND = ("Deployment", "backend")
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replica: 1
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: main
          image: ghcr.io/org/NAME:1
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def test_each_object_gets_its_own_errors(fleet: FleetRepo) -> None:
    """Errors were kept once per file and message: three Deployments with one typo gave
    one error, and a clashing Service hid behind a clashing Deployment."""
    names = ["one", "two", "three", "payments"]
    for name in names:
        fleet.write(f"services/payments/manifests/{name}.yaml", DEPLOYMENT.replace("NAME", name))
    fleet.write(
        "services/payments/manifests/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: payments}\nspec: {ports: [{port: 80}]}\n",
    )
    listed = "".join(f"  - {n}.yaml\n" for n in [*names, "svc"])
    fleet.replace(
        "services/payments/manifests/kustomization.yaml", "resources:\n", f"resources:\n{listed}"
    )
    fleet.commit("three typos, and two objects cellops renders too")
    result = cellops("validate", fleet.path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    for name in ("one", "two", "three"):
        assert sum(f"Deployment {name}: spec: not valid" in line for line in lines) == 1, name
    clashes = [
        line for line in lines if "already rendered from services/payments/service.yaml" in line
    ]
    assert len(clashes) == 2, result.stdout
    deployment, service = sorted(clashes)
    assert deployment.startswith("services/payments/manifests: Deployment payments: ")
    assert "drop spec.image from services/payments/service.yaml" in deployment
    assert service.startswith("services/payments/manifests: Service payments: ")
    assert "remove spec.ports from services/payments/service.yaml" in service


def test_a_failed_build_is_one_error_not_one_per_cell(fleet: FleetRepo, tmp_path: Path) -> None:
    """kubectl's messages carry a timestamp: each cell's build failed differently, and one
    broken kustomization was reported once per cell."""
    bin_folder = tmp_path / "fake"
    bin_folder.mkdir()
    fake = bin_folder / "kubectl"
    fake.write_text(
        '#!/bin/sh\necho "E$(date +%H%M%S%N) run.go:72] broken at $(date +%N)" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_folder}:{os.environ['PATH']}"}
    for args in ([fleet.path], ["--path", fleet.path]):
        result = cellops("validate", *args, env=env)
        assert result.returncode == 1
        for service in ("payments", "ledger"):
            failed = f"services/{service}/manifests: kubectl kustomize failed"
            assert result.stdout.count(failed) == 1, result.stdout


# -- hostile manifests ----------------------------------------------------------------------
@pytest.fixture
def spy(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose `kubectl` records its arguments and environment, then runs the real one."""
    real = shutil.which("kubectl")
    if real is None:
        pytest.skip("kubectl is not installed")
    folder = tmp_path / "spy"
    folder.mkdir()
    record = tmp_path / "kubectl-calls"
    script = folder / "kubectl"
    script.write_text(f'#!/bin/sh\n{{ echo "ARGS $*"; env; }} >> {record}\nexec {real} "$@"\n')
    script.chmod(0o755)
    path = f"{folder}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {**os.environ, "PATH": path}, record


def own_kustomization(fleet: FleetRepo, resources: list[str], **files: str) -> None:
    """payments' manifests become a kustomization of `resources` and the given files; the
    ledger's go (so that whatever kubectl builds is payments')."""
    shutil.rmtree(fleet.path / "services/ledger/manifests")
    shutil.rmtree(fleet.path / "services/payments/manifests")
    body = "".join(f"  - {r}\n" for r in resources)
    fleet.write("services/payments/manifests/kustomization.yaml", f"resources:\n{body}")
    for name, text in files.items():
        fleet.write(f"services/payments/manifests/{name.replace('__', '/')}", text)


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/stefanprodan/podinfo//kustomize?ref=6.7.0",
        "github.com/org/repo//path?ref=x",
        "git@github.com:org/repo.git",
        "http://203.0.113.9/deployment.yaml",
    ],
)
def test_remote_resources_are_refused_before_kubectl_runs(
    fleet: FleetRepo, spy: tuple[dict[str, str], Path], remote: str
) -> None:
    env, record = spy
    own_kustomization(fleet, ["service.yaml", remote], **{"service.yaml": CONFIG_MAP})
    fleet.commit("a remote base")
    for args in (["validate", fleet.path], ["validate", "--path", fleet.path]):
        result = cellops(*args, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert (
            f"services/payments/manifests/kustomization.yaml: resources[1]: {remote!r} is"
            " remote" in result.stdout
        )
        assert "Traceback" not in result.stdout + result.stderr
    assert not record.exists(), "kubectl ran"


CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("components: [github.com/org/repo//c?ref=v1]\n", "components[0]: 'github.com"),
        ("bases: [https://example.com/base]\n", "bases[0]: 'https://example.com/base' is remote"),
        (
            "helmCharts: [{name: redis, repo: https://charts.example.com}]\n",
            "helmCharts: Helm charts are fetched",
        ),
        (
            "configMapGenerator: [{name: c, files: [https://example.com/x.conf]}]\n",
            "configMapGenerator[0].files[0]: 'https://example.com/x.conf' is remote",
        ),
        ("resources: [nothing-here.yaml]\n", "'nothing-here.yaml' is not a file or folder"),
        ("resources: [../../ledger/manifests]\n", "'../../ledger/manifests' is outside"),
        ("resources: [/etc]\n", "'/etc' is outside manifests/"),
    ],
)
def test_what_kustomize_would_fetch_or_reach_out_for_is_refused(
    fleet: FleetRepo, spy: tuple[dict[str, str], Path], kustomization: str, message: str
) -> None:
    env, record = spy
    own_kustomization(fleet, [])
    fleet.write("services/payments/manifests/kustomization.yaml", kustomization)
    fleet.commit("kustomize reaches out")
    result = cellops("validate", fleet.path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "services/payments/manifests/kustomization.yaml: " in result.stdout
    assert message in result.stdout
    assert not record.exists(), "kubectl ran"


def test_kubectl_runs_offline_and_confined_to_the_folder(
    fleet: FleetRepo, spy: tuple[dict[str, str], Path]
) -> None:
    env, record = spy
    own_kustomization(fleet, ["settings.yaml"], **{"settings.yaml": CONFIG_MAP})
    fleet.commit("a local kustomization")
    result = cellops("validate", fleet.path, env={**env, "NO_PROXY": "*"})
    assert result.returncode == 0, result.stdout + result.stderr
    calls = record.read_text()
    assert "--load-restrictor LoadRestrictionsRootOnly" in calls
    proxies = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in calls.splitlines()
        if "_proxy=" in line.lower()
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        assert proxies[name].startswith("http://127.0.0.1:"), proxies
    assert not any(line.lower().startswith("no_proxy=") for line in calls.splitlines())
    assert "GIT_ALLOW_PROTOCOL=cellops-offline" in calls


LAUGHS = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9)}]\n" for i in range(1, 9)
)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("laughs.yaml", "x: &x [lol, lol, lol]\n" + LAUGHS.replace("*`", "*x"), 1),
        ("deployment.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: a}\n", 3),
        ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n", 1),
    ],
)
def test_hostile_yaml_in_manifests_is_refused_with_file_and_line(
    fleet: FleetRepo, spy: tuple[dict[str, str], Path], name: str, text: str, line: int
) -> None:
    env, record = spy
    # as a resource of a kustomization: refused before kustomize expands it
    own_kustomization(fleet, ["service.yaml", name], **{"service.yaml": CONFIG_MAP, name: text})
    fleet.commit("hostile YAML in a kustomization")
    result = cellops("validate", fleet.path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"services/payments/manifests/{name}:{line}: " in result.stdout
    assert not record.exists(), "kubectl ran"
    # as plain YAML: refused as it is parsed
    (fleet.path / "services/payments/manifests/kustomization.yaml").unlink()
    fleet.commit("hostile plain YAML")
    result = cellops("validate", fleet.path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"services/payments/manifests/{name}:{line}: " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_symlink_chain_cannot_bring_a_file_from_outside_into_a_config_map(
    fleet: FleetRepo, tmp_path: Path
) -> None:
    """l1 -> .., l2 -> l1/.., ...: each target alone looked harmless, together they left the
    repo, and kustomize built the file they reached into a ConfigMap."""
    own_kustomization(fleet, [])
    manifests = fleet.path / "services/payments/manifests"
    fleet.write(
        "services/payments/manifests/kustomization.yaml",
        "configMapGenerator:\n  - name: stolen\n    files: [l5/secret.txt]\n",
    )
    os.symlink("..", manifests / "l1")
    for index in range(2, 6):
        os.symlink(f"l{index - 1}/..", manifests / f"l{index}")
    (tmp_path / "secret.txt").write_text("outside the repo\n")
    fleet.commit("a chain of links")
    for args in ([fleet.path], ["--path", fleet.path]):
        result = cellops("validate", *args)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "services/payments/manifests/l2: symlink to 'l1/..' leads outside" in result.stdout
        result = render(*args, "--cell", "eu-1")
        assert result.returncode == 1 and "outside the repo" not in result.stdout


def test_a_local_folder_named_like_a_host_is_local(tmp_path: Path) -> None:
    """`base.v2/app/x` reads like `github.com/org/repo`: it is local when it is there."""
    from cellops.backends.kubernetes.kustomization import ManifestError, check_kustomization

    (tmp_path / "base.v2/app").mkdir(parents=True)
    (tmp_path / "base.v2/app/cm.yaml").write_text(CONFIG_MAP)
    (tmp_path / "kustomization.yaml").write_text("resources: [base.v2/app/cm.yaml]\n")
    check_kustomization(tmp_path, "services/x/manifests")
    (tmp_path / "kustomization.yaml").write_text("resources: [base.v3/app/cm.yaml]\n")
    with pytest.raises(ManifestError, match=r"'base\.v3/app/cm\.yaml' is remote"):
        check_kustomization(tmp_path, "services/x/manifests")


def test_the_image_policy_covers_a_charts_containers(tmp_path: Path) -> None:
    """`requireDigest` skipped everything but service.yaml: a chart's tagged image passed."""
    from tests.integration.moved_apps import moved_fleet

    moved = moved_fleet(tmp_path / "moved")
    assert cellops("validate", moved.path).returncode == 0
    moved.replace("cellops.yaml", "imagePolicy: {requireDigest: false}", "imagePolicy: {}")
    moved.commit("digests required")
    result = cellops("validate", moved.path)
    assert result.returncode == 1
    assert (
        "services/podinfo/chart/templates/deployment.yaml: Deployment podinfo:"
        " spec.template.spec.containers[0].image: 'ghcr.io/stefanprodan/podinfo:" in result.stdout
    )
    assert "is not pinned by digest" in result.stdout


INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: backend}
spec:
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: backend, port: {number: 9898}}}}
"""


def test_an_ingress_no_controller_may_reach_is_a_warning(fleet: FleetRepo) -> None:
    fleet.write("services/payments/manifests/ingress.yaml", INGRESS)
    fleet.replace(
        "services/payments/manifests/kustomization.yaml",
        "resources:",
        "resources:\n  - ingress.yaml",
    )
    fleet.commit("payments is reached from outside")
    result = cellops("validate", fleet.path)
    assert result.returncode == 0, result.stdout
    assert (
        "services/payments/manifests: Ingress backend: warning: no ingress controller may reach"
        " the cell's pods" in result.stdout
    )
    assert "spec.kubernetes.ingressNamespace" in result.stdout
    fleet.replace(
        "cellops.yaml", "  kubernetes:\n", "  kubernetes:\n    ingressNamespace: ingress-nginx\n"
    )
    fleet.commit("the ingress controller may reach the cells")
    result = cellops("validate", fleet.path)
    assert result.returncode == 0 and "Ingress backend" not in result.stdout, result.stdout
