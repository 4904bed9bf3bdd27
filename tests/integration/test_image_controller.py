"""Signed images through the real controller (`cellops up`) and real local cells: a commit
with an unsigned image is rejected and touches no cell; a key removed from the fleet
while a rollout runs stops it before its next wave, with the reason in the events."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cellops.store.records import Phase, RolloutState
from tests import imagekit
from tests.imagekit import LocalRegistry, new_key, public_pem
from tests.imagekit_controller import rejected_untouched, started
from tests.integration.controller_harness import Fleet, ServiceDef, wait_for

pytestmark = pytest.mark.slow
registry = imagekit.registry  # the fixture
WEB = ServiceDef("web", 18_431)


@pytest.fixture
def signed(
    tmp_path: Path, registry: LocalRegistry
) -> Iterator[tuple[Fleet, LocalRegistry, ec.EllipticCurvePrivateKey]]:
    """A started local fleet whose one image is signed, its key in the fleet repo."""
    # cells' names (hence addresses) of their own: two copies of the suite may run at once
    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:5]
    fleet = Fleet(tmp_path / "fleet", f"i{tag}", [WEB], regions=("a", "b"), canary_bake="4s")
    key = new_key()
    fleet.repo.write("keys/cosign.pub", public_pem(key))
    fleet.repo.replace(
        "cellops.yaml",
        "allowedRegistries: [registry.example.com]",
        f"allowedRegistries: [{registry.host}]\n    signatures: [{{key: keys/cosign.pub}}]",
    )
    use_image(fleet, registry, key, "v1")
    fleet.commit("signed images")
    with started(fleet, registry, tmp_path / "docker"):
        yield fleet, registry, key


def use_image(
    fleet: Fleet, registry: LocalRegistry, key: ec.EllipticCurvePrivateKey | None, note: str
) -> str:
    digest = registry.push_image("tests/web", note, note=note)
    if key is not None:
        registry.sign("tests/web", digest, key)
    path = "services/web/service.yaml"
    image = f"{registry.host}/tests/web@{digest}"
    fleet.repo.write(path, re.sub(r"image: .*", f"image: {image}", fleet.repo.read(path)))
    return image


def test_an_unsigned_image_is_rejected_and_touches_no_cell(
    signed: tuple[Fleet, LocalRegistry, ec.EllipticCurvePrivateKey],
) -> None:
    fleet, registry, _ = signed
    image = use_image(fleet, registry, None, "unsigned")
    fleet.write_app("web", "v2")
    assert "has no cosign signature" in rejected_untouched(fleet, "web v2, unsigned", image)


def test_a_key_removed_while_a_rollout_runs_stops_its_next_wave(
    signed: tuple[Fleet, LocalRegistry, ec.EllipticCurvePrivateKey],
) -> None:
    fleet, registry, key = signed
    use_image(fleet, registry, key, "v2")
    v2 = fleet.release("web", "v2")
    fleet.wait_rollout(v2, RolloutState.RUNNING)
    wait_for(
        "the canary to bake",
        lambda: ((r := fleet.rollout_of(v2)) is not None and r.phase is Phase.BAKE) or None,
        30,
    )
    fleet.repo.remove("keys/cosign.pub")
    fleet.commit("the key is revoked")
    blocked = wait_for(
        "the next wave to be blocked",
        lambda: fleet.events(kind="images-blocked") or None,
        30,
    )
    assert "keys/cosign.pub: the key file is not in the fleet repo" in blocked[0].message
    rest = [c for c in fleet.cells if not c.endswith("-canary")]
    time.sleep(1.0)  # several passes: the wave stays blocked
    rollout = fleet.rollout_of(v2)
    assert rollout is not None and rollout.wave == 1 and rollout.phase is Phase.APPLY
    for cell in rest:
        assert fleet.ledger("web")[cell].applied_rev != v2
