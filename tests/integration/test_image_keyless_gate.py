"""Keyless image signatures where they stop a revision, against a real registry and the
tests' own Sigstore instance (tests/sigstorekit.py): a bad or missing bundle, a trusted root
that is not one or is a symlink, each rejects the revision at acceptance naming the service,
the image and why; a trusted root withdrawn from the fleet since acceptance blocks the
wave. (The verdicts themselves: test_image_keyless.py.)"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cellops.images.gate import WaveGate, image_check, key_reader
from cellops.images.registry import Registry
from cellops.images.verify import ImageVerifier
from cellops.model.errors import RevisionRejected
from cellops.pipeline import Compiler
from cellops.source.git import GitSource
from cellops.store.sqlite import SqliteStore
from tests import imagekit
from tests.fleetrepo import FleetRepo
from tests.imagekit import LocalRegistry
from tests.integration.test_image_keyless import ISSUER, NO_BUNDLE, ROOT, SUBJECT
from tests.sigstorekit import TestSigstore, attach, statement

pytestmark = pytest.mark.slow  # a registry per test
registry = imagekit.registry  # the fixture


@pytest.fixture
def sigstore() -> TestSigstore:
    return TestSigstore()


def keyless_fleet(fleet: FleetRepo, registry: LocalRegistry, sigstore: TestSigstore) -> None:
    """The base fleet with both images in `registry`, signed keylessly, and the policy
    naming the identity and the trusted root."""
    fleet.write(ROOT, sigstore.trusted_root())
    fleet.replace(
        "cellops.yaml",
        "    allowedRegistries: [registry.example.com]\n",
        f"    allowedRegistries: [{registry.host}]\n    signatures:\n"
        f"      - {{issuer: '{ISSUER}', subject: '{SUBJECT}', trustedRoot: {ROOT}}}\n",
    )
    for service in ("api", "store"):
        digest = registry.push_image(f"base/{service}", "1.0", note=service)
        attach(registry, f"base/{service}", digest, sigstore.bundle(statement(digest), SUBJECT))
        use(fleet, registry, service, digest)


def use(fleet: FleetRepo, registry: LocalRegistry, service: str, digest: str) -> str:
    path = f"services/{service}/service.yaml"
    image = f"{registry.host}/base/{service}@{digest}"
    fleet.write(path, re.sub(r"image: .*", f"image: {image}", fleet.read(path)))
    return image


def compiler_for(fleet: FleetRepo, registry: LocalRegistry) -> Compiler:
    source = GitSource(fleet.path)
    verifier = ImageVerifier(Registry(registry.credentials))
    return Compiler(source, checks=[image_check(verifier, str(source.root), None)])


def test_a_keyless_signed_revision_is_accepted(
    fleet: FleetRepo, registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    keyless_fleet(fleet, registry, sigstore)
    commit = fleet.commit("keyless signed images")
    assert compiler_for(fleet, registry).revision(commit).id == commit


Bad = Callable[[TestSigstore, str, str], bytes]
BAD: dict[str, tuple[Bad, str]] = {
    "wrong subject": (
        lambda s, d, o: s.bundle(statement(d), "https://ci.cellops.test/intruder"),
        "Certificate's SANs do not match",
    ),
    "wrong issuer": (
        lambda s, d, o: s.bundle(statement(d), SUBJECT, issuer="https://evil.test"),
        "OIDCIssuer does not match",
    ),
    "expired": (
        lambda s, d, o: s.bundle(
            statement(d),
            SUBJECT,
            logged_at=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
        ),
        "certificate has expired",
    ),
    "replay": (lambda s, d, o: s.bundle(statement(o), SUBJECT), "a replayed signature"),
    "tampered": (lambda s, d, o: s.bundle(statement(d), SUBJECT, tamper=True), "DSSE"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_keyless_signature_rejects_the_revision(
    case: str, fleet: FleetRepo, registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    keyless_fleet(fleet, registry, sigstore)
    make, why = BAD[case]
    other = registry.push_image("base/api", "0.9", note="other")
    digest = registry.push_image("base/api", "2.0", note="bad")
    attach(registry, "base/api", digest, make(sigstore, digest, other))
    image = use(fleet, registry, "api", digest)
    commit = fleet.commit(f"api signed badly: {case}")
    with pytest.raises(RevisionRejected) as rejected:
        compiler_for(fleet, registry).revision(commit)
    [problem] = rejected.value.problems
    assert problem.file == "services/api/service.yaml" and problem.field == "spec.image"
    assert problem.message.startswith(f"{image} cannot run: no valid signature: ")
    assert why in problem.message


def test_a_missing_bundle_or_root_rejects_the_revision(
    fleet: FleetRepo, registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    keyless_fleet(fleet, registry, sigstore)
    digest = registry.push_image("base/api", "2.0", note="unsigned")
    image = use(fleet, registry, "api", digest)
    commit = fleet.commit("an unsigned api")
    with pytest.raises(RevisionRejected) as rejected:
        compiler_for(fleet, registry).revision(commit)
    [problem] = rejected.value.problems
    assert problem.message == f"{image} cannot run: {digest} {NO_BUNDLE}"
    fleet.write(ROOT, b"<html>not a root</html>\n")
    commit = fleet.commit("the trusted root broken")
    with pytest.raises(RevisionRejected) as rejected:
        compiler_for(fleet, registry).revision(commit)
    assert {p.file for p in rejected.value.problems} == {
        "services/api/service.yaml",
        "services/store/service.yaml",
    }
    assert all(
        f": {ROOT}: not a Sigstore trusted root" in p.message for p in rejected.value.problems
    )


def test_a_trusted_root_that_is_a_symlink_is_not_followed(
    fleet: FleetRepo, registry: LocalRegistry, sigstore: TestSigstore
) -> None:
    keyless_fleet(fleet, registry, sigstore)
    fleet.write("roots/real.json", sigstore.trusted_root())
    fleet.remove(ROOT)
    (fleet.path / ROOT).symlink_to("../roots/real.json")
    commit = fleet.commit("the trusted root through a link")
    with pytest.raises(RevisionRejected) as rejected:
        compiler_for(fleet, registry).revision(commit)
    assert len(rejected.value.problems) == 2
    assert all(
        f"{ROOT}: the trusted root file is not in the fleet repo (as a regular file of at most"
        " 64 KiB, not a symlink)" in p.message
        for p in rejected.value.problems
    )


def test_a_trusted_root_removed_since_acceptance_blocks_the_wave(
    fleet: FleetRepo, registry: LocalRegistry, sigstore: TestSigstore, tmp_path: Path
) -> None:
    keyless_fleet(fleet, registry, sigstore)
    commit = fleet.commit("keyless signed images")
    source = GitSource(fleet.path)
    verifier = ImageVerifier(Registry(registry.credentials))
    compiler = Compiler(source, checks=[image_check(verifier, str(source.root), None)])
    store = SqliteStore(tmp_path / "state" / "cellops.db")
    keys_now = lambda: key_reader(str(source.root), source.resolve("HEAD"))  # noqa: E731
    gate = WaveGate(verifier, compiler.revision, keys_now, store)
    cells = frozenset({"canary", "eu-1", "us-1"})
    assert gate(commit, cells) is None
    fleet.remove(ROOT)
    fleet.commit("the trusted root is withdrawn")
    reason = gate(commit, cells)
    assert reason is not None and "api: " in reason and "store: " in reason
    assert f"{ROOT}: the trusted root file is not in the fleet repo" in reason
    [event] = store.events(kind="images-blocked")
    assert event.message == f"wave not applied: {reason}"
