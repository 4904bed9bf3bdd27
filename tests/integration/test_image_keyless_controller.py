"""Keyless-signed images through the real controller (`cellops up`) and real local cells:
an image with a valid Sigstore bundle rolls out; a commit whose image's bundle was made
for another identity is rejected, naming the service, the image and why, and touches no
cell."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import imagekit
from tests.imagekit import LocalRegistry
from tests.imagekit_controller import rejected_untouched, started
from tests.integration.controller_harness import Fleet, ServiceDef
from tests.sigstorekit import TestSigstore, attach, statement

pytestmark = pytest.mark.slow
registry = imagekit.registry  # the fixture
WEB = ServiceDef("web", 18_447)
ROOT = "keys/trusted_root.json"
ISSUER = "https://issuer.cellops.test"
SUBJECT = "https://ci.cellops.test/tests/web/.ci/release.yml@refs/heads/main"


@pytest.fixture
def keyless(tmp_path: Path, registry: LocalRegistry) -> Iterator[tuple[Fleet, TestSigstore]]:
    """A started local fleet whose one image is signed keylessly, the trusted root and the
    identity in the fleet repo."""
    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:5]  # addresses of its own
    fleet = Fleet(tmp_path / "fleet", f"k{tag}", [WEB], regions=("a", "b"), canary_bake="4s")
    sigstore = TestSigstore()
    fleet.repo.write(ROOT, sigstore.trusted_root())
    identity = f"{{issuer: '{ISSUER}', subject: '{SUBJECT}', trustedRoot: {ROOT}}}"
    fleet.repo.replace(
        "cellops.yaml",
        "allowedRegistries: [registry.example.com]",
        f"allowedRegistries: [{registry.host}]\n    signatures: [{identity}]",
    )
    use_image(fleet, registry, sigstore, "v1", SUBJECT)
    fleet.commit("keyless signed images")
    with started(fleet, registry, tmp_path / "docker"):
        yield fleet, sigstore


def use_image(
    fleet: Fleet, registry: LocalRegistry, sigstore: TestSigstore, note: str, subject: str
) -> str:
    digest = registry.push_image("tests/web", note, note=note)
    attach(registry, "tests/web", digest, sigstore.bundle(statement(digest), subject, ISSUER))
    path = "services/web/service.yaml"
    image = f"{registry.host}/tests/web@{digest}"
    fleet.repo.write(path, re.sub(r"image: .*", f"image: {image}", fleet.repo.read(path)))
    return image


def test_a_bundle_of_another_identity_is_rejected_and_touches_no_cell(
    keyless: tuple[Fleet, TestSigstore], registry: LocalRegistry
) -> None:
    fleet, sigstore = keyless
    intruder = "https://ci.cellops.test/intruder/.ci/release.yml@refs/heads/main"
    image = use_image(fleet, registry, sigstore, "intruder", intruder)
    fleet.write_app("web", "v2")
    message = rejected_untouched(fleet, "web v2, signed by another identity", image)
    assert message.startswith(f"{image} cannot run: no valid signature: ")
    assert f"Certificate's SANs do not match {SUBJECT}" in message
