"""Image verdicts where they stop a revision: at acceptance (the revision is rejected,
naming the service, the image and why) and before each wave (a signature deleted or a key
removed from the fleet since acceptance blocks it; a registry down blocks it too), against
a real registry with the tests' own cosign signatures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cellops.backends.kubernetes.manifests import ManifestCache
from cellops.images.gate import RegistryUnavailable, WaveGate, image_check, key_reader
from cellops.images.ledger import VerdictLedger, verdict_lines
from cellops.images.registry import Registry
from cellops.images.tags import PinTags
from cellops.images.verify import ImageVerifier, Verdict
from cellops.model.errors import RevisionRejected
from cellops.pipeline import Compiler
from cellops.source.git import GitSource, export_tree
from cellops.store.sqlite import SqliteStore
from tests import imagekit
from tests.fleetrepo import FleetRepo
from tests.imagekit import LocalRegistry, public_pem, running_registry

registry, key = imagekit.registry, imagekit.key  # the fixtures
CELLS = frozenset({"canary", "eu-1", "us-1"})


def signed_fleet(fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey) -> str:
    """The base fleet with both images in `registry`, signed by `key`, and the policy
    naming its public key."""
    fleet.write("keys/cosign.pub", public_pem(key))
    fleet.replace(
        "cellops.yaml",
        "    allowedRegistries: [registry.example.com]\n",
        f"    allowedRegistries: [{registry.host}]\n"
        "    signatures:\n      - key: keys/cosign.pub\n",
    )
    for service in ("api", "store"):
        digest = registry.push_image(f"base/{service}", "1.0", note=service)
        registry.sign(f"base/{service}", digest, key)
        path = f"services/{service}/service.yaml"
        text = re.sub(
            r"image: .*", f"image: {registry.host}/base/{service}@{digest}", fleet.read(path)
        )
        fleet.write(path, text)
    return fleet.commit("signed images")


def compiler_for(fleet: FleetRepo, verifier: ImageVerifier) -> Compiler:
    source = GitSource(fleet.path)
    return Compiler(source, checks=[image_check(verifier, str(source.root), None)])


def test_a_signed_revision_is_accepted_and_its_verdicts_recorded(
    fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    commit = signed_fleet(fleet, registry, key)
    ledger = VerdictLedger(tmp_path / "state" / "cellops.db")
    verifier = ImageVerifier(Registry(registry.credentials), ledger=ledger)
    assert compiler_for(fleet, verifier).revision(commit).id == commit
    verdicts = ledger.verdicts()
    assert [(v.signer, v.ok) for v in verdicts] == [("keys/cosign.pub", True)] * 2
    assert verdict_lines(verdicts) == ["images: 2 verified"]


def test_an_unsigned_image_rejects_the_revision_naming_service_image_and_reason(
    fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    signed_fleet(fleet, registry, key)
    unsigned = registry.push_image("base/api", "2.0", note="unsigned")
    path = "services/api/service.yaml"
    fleet.write(path, re.sub(r"@sha256:[0-9a-f]+", f"@{unsigned}", fleet.read(path)))
    commit = fleet.commit("an unsigned api")
    verifier = ImageVerifier(Registry(registry.credentials))
    with pytest.raises(RevisionRejected) as rejected:
        compiler_for(fleet, verifier).revision(commit)
    [problem] = rejected.value.problems
    assert problem.file == "services/api/service.yaml" and problem.field == "spec.image"
    assert problem.message == (
        f"{registry.host}/base/api@{unsigned} cannot run: {unsigned} has no cosign"
        " signature (referrers, or the tag sha256-….sig)"
    )


def gate_for(
    fleet: FleetRepo, registry: LocalRegistry, tmp_path: Path, verifier: ImageVerifier
) -> tuple[WaveGate, SqliteStore]:
    source = GitSource(fleet.path)
    compiler = compiler_for(fleet, verifier)
    store = SqliteStore(tmp_path / "state" / "cellops.db")
    keys_now = lambda: key_reader(str(source.root), source.resolve("HEAD"))  # noqa: E731
    return WaveGate(verifier, compiler.revision, keys_now, store), store


def test_a_key_removed_from_the_fleet_since_acceptance_blocks_the_wave(
    fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    commit = signed_fleet(fleet, registry, key)
    verifier = ImageVerifier(Registry(registry.credentials))
    gate, store = gate_for(fleet, registry, tmp_path, verifier)
    assert gate(commit, CELLS) is None
    fleet.remove("keys/cosign.pub")
    fleet.commit("the key is revoked")
    reason = gate(commit, CELLS)
    assert reason is not None
    assert "api: " in reason and "keys/cosign.pub: the key file is not in the fleet repo" in reason
    assert gate(commit, CELLS) == reason
    [event] = store.events(kind="images-blocked")
    assert event.message == f"wave not applied: {reason}"


def test_a_signature_deleted_since_acceptance_blocks_the_wave(
    fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    commit = signed_fleet(fleet, registry, key)
    verifier = ImageVerifier(Registry(registry.credentials), recheck_after=0)
    gate, _ = gate_for(fleet, registry, tmp_path, verifier)
    assert gate(commit, CELLS) is None
    digest = re.search(r"@(sha256:[0-9a-f]+)", fleet.read("services/store/service.yaml"))
    assert digest is not None
    registry.delete_manifest("base/store", signature_of(registry, "base/store", digest[1]))
    reason = gate(commit, CELLS)
    assert reason is not None and reason.startswith("store: ")
    assert "has no cosign signature" in reason


def signature_of(registry: LocalRegistry, repository: str, digest: str) -> str:
    client = Registry(registry.credentials)
    return client.manifest(registry.host, repository, digest.replace(":", "-") + ".sig").digest


def test_a_registry_down_blocks_the_wave_and_it_goes_once_the_registry_is_back(
    fleet: FleetRepo, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    with running_registry(tmp_path / "registry") as registry:
        commit = signed_fleet(fleet, registry, key)
        verifier = ImageVerifier(Registry(registry.credentials), recheck_after=0)
        gate, _ = gate_for(fleet, registry, tmp_path, verifier)
        assert gate(commit, CELLS) is None
    reason = gate(commit, CELLS)
    assert reason is not None and "cannot reach" in reason
    assert "(the registry will be asked again)" in reason
    with running_registry(tmp_path / "registry", port=int(registry.host.split(":")[1])):
        assert gate(commit, CELLS) is None


def test_a_registry_down_at_acceptance_neither_rejects_nor_accepts(
    fleet: FleetRepo, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    with running_registry(tmp_path / "registry") as registry:
        commit = signed_fleet(fleet, registry, key)
    compiler = compiler_for(fleet, ImageVerifier(Registry(registry.credentials)))
    with pytest.raises(RegistryUnavailable, match="cannot reach"):
        compiler.revision(commit)


def test_status_shows_the_verdicts(tmp_path: Path, fleet: FleetRepo) -> None:
    ledger = VerdictLedger(tmp_path / "state" / "cellops.db")
    good, bad = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    ledger.record(Verdict(f"r.example/a@{good}", good, "keys/cosign.pub", None, 1.0))
    ledger.record(Verdict(f"r.example/b@{bad}", bad, None, "signed by none of the keys", 2.0))
    ledger.close()
    state = str(tmp_path / "state")

    def status(*more: str) -> str:
        command = [sys.executable, "-m", "cellops.cli.main", "status", str(fleet.path)]
        return subprocess.run(
            [*command, "--state-dir", state, *more], capture_output=True, text=True, check=True
        ).stdout

    assert status().splitlines()[-2:] == [
        "images: 1 verified",
        f"image refused: r.example/b@{bad}: signed by none of the keys",
    ]
    images = json.loads(status("-o", "json"))["images"]
    assert [(i["image"], i["signer"], i["reason"]) for i in images] == [
        (f"r.example/a@{good}", "keys/cosign.pub", None),
        (f"r.example/b@{bad}", None, "signed by none of the keys"),
    ]


MANIFESTS_FLEET = """\
apiVersion: cellops.dev/v1
kind: Fleet
metadata: {{name: own}}
spec:
  rollout:
    waves: [{{name: all, percent: 100}}]
  imagePolicy:
    allowedRegistries: [{host}]
    signatures: [{{key: keys/cosign.pub}}]
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {image}
"""


def test_an_unsigned_image_in_manifests_rejects_the_revision(
    tmp_path: Path, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    repo = FleetRepo(tmp_path / "own", None)
    repo.write("cellops.yaml", MANIFESTS_FLEET.format(host=registry.host))
    repo.write("keys/cosign.pub", public_pem(key))
    repo.write(
        "cells/c1.yaml",
        "apiVersion: cellops.dev/v1\nkind: Cell\nmetadata: {name: c1}\n"
        "spec: {backend: {type: kubernetes, context: kmock}}\n",
    )
    repo.write(
        "services/web/service.yaml",
        "apiVersion: cellops.dev/v1\nkind: Service\nmetadata: {name: web}\nspec: {}\n",
    )
    signed = registry.push_image("own/web", "1.0", note="signed")
    registry.sign("own/web", signed, key)
    repo.write(
        "services/web/manifests/web.yaml",
        DEPLOYMENT.format(image=f"{registry.host}/own/web@{signed}"),
    )
    first = repo.commit("a signed image in manifests/")
    source = GitSource(repo.path)
    built = ManifestCache(tmp_path / "built", partial(export_tree, source.root))
    verifier = ImageVerifier(Registry(registry.credentials))
    compiler = Compiler(source, checks=[image_check(verifier, str(source.root), built)])
    assert compiler.revision(first).id == first
    unsigned = registry.push_image("own/web", "2.0", note="unsigned")
    repo.write(
        "services/web/manifests/web.yaml",
        DEPLOYMENT.format(image=f"{registry.host}/own/web@{unsigned}"),
    )
    with pytest.raises(RevisionRejected) as rejected:
        compiler.revision(repo.commit("an unsigned image in manifests/"))
    [problem] = rejected.value.problems
    assert problem.file == "services/web/manifests"
    assert problem.field == "Deployment web: spec.template.spec.containers[0].image"
    assert problem.message.startswith(f"{registry.host}/own/web@{unsigned} cannot run: ")


RESOLVE_TAGS = "requireDigest: false\n    resolveTags: true"


def retag(fleet: FleetRepo, image: str) -> None:
    path = "services/api/service.yaml"
    fleet.write(path, re.sub(r"image: .*", f"image: {image}", fleet.read(path)))


def test_a_tag_is_pinned_once_at_acceptance_and_stays_pinned_after_a_restart(
    fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    signed_fleet(fleet, registry, key)
    fleet.replace(
        "cellops.yaml", "requireDigest: true", "requireDigest: false\n    resolveTags: true"
    )
    first = registry.push_image("base/api", "stable", note="first")
    registry.sign("base/api", first, key)
    retag(fleet, f"{registry.host}/base/api:stable")
    commit = fleet.commit("api by tag")
    state = tmp_path / "state" / "cellops.db"

    def desired_image(rev: str) -> str | None:
        ledger = VerdictLedger(state)  # a controller started afresh: the store remembers
        try:
            verifier = ImageVerifier(Registry(registry.credentials), ledger=ledger)
            source = GitSource(fleet.path)
            check = image_check(verifier, str(source.root), None)
            compiler = Compiler(source, checks=[check], prepare=[PinTags(verifier)])
            return compiler.desired(rev).cells["canary"].services["api"].spec.image
        finally:
            ledger.close()

    pinned = f"{registry.host}/base/api:stable@{first}"
    assert desired_image(commit) == pinned
    registry.push_image("base/api", "stable", note="moved")  # the tag moves, unsigned
    fleet.write("NOTES.md", "a later commit that does not touch api\n")
    assert desired_image(fleet.commit("later")) == pinned


def test_a_tag_the_registry_lacks_rejects_the_revision(
    fleet: FleetRepo, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey
) -> None:
    signed_fleet(fleet, registry, key)
    fleet.replace(
        "cellops.yaml", "requireDigest: true", "requireDigest: false\n    resolveTags: true"
    )
    retag(fleet, f"{registry.host}/base/api:nope")
    verifier = ImageVerifier(Registry(registry.credentials))
    compiler = Compiler(GitSource(fleet.path), prepare=[PinTags(verifier)])
    with pytest.raises(RevisionRejected) as rejected:
        compiler.revision(fleet.commit("a tag that is not there"))
    [problem] = [p for p in rejected.value.problems if p.file == "services/api/service.yaml"]
    assert problem.message == f"{registry.host}/base/api:nope: no such tag in its registry"
