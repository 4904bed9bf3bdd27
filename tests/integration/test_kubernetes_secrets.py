"""Secrets applied to Kubernetes cells, on the wire (kmock): sent whole, never kept in clear
in the store, and their values still repaired when changed by hand."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.integration import test_kubernetes_backend
from tests.integration.test_kubernetes_backend import World, edit, patched

world = test_kubernetes_backend.world  # the fixture: the example Kubernetes fleet on kmock

PASSWORD = "hunter2-correct-horse"
TOKEN = "s3cr3t-token-battery-staple"
SECRET = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: payments-keys}}
type: Opaque
data: {{password: {base64.b64encode(PASSWORD.encode()).decode()}}}
stringData: {{token: {TOKEN}}}
"""
PATH = "/api/v1/namespaces/cell-us-1/secrets/payments-keys"


def store_bytes(world: World) -> bytes:
    """Everything the store's files hold, its write-ahead log included."""
    folder = Path(str(world.store._db.execute("PRAGMA database_list").fetchone()[2])).parent
    return b"".join(p.read_bytes() for p in folder.glob("cellops.db*"))


def secret_item(world: World) -> dict[str, object]:
    item = next(i for i in world.store.inventory("us-1") if " Secret " in i.key)
    return dict(json.loads(item.body))


def with_secret(world: World) -> None:
    world.repo.write("services/payments/manifests/keys.yaml", SECRET)
    world.repo.commit("payments keys")
    world.apply("us-1")


def test_a_secret_is_sent_whole_and_kept_without_its_values(world: World) -> None:
    with_secret(world)
    sent = next(s.body for s in world.us.sent("PATCH") if s.path == PATH)
    assert sent["data"] == {"password": base64.b64encode(PASSWORD.encode()).decode()}
    assert sent["stringData"] == {"token": TOKEN}
    kept = secret_item(world)
    assert "data" not in kept and "stringData" not in kept
    assert kept["type"] == "Opaque" and kept["metadata"]["name"] == "payments-keys"  # type: ignore[index]
    held = store_bytes(world)
    for value in (PASSWORD, TOKEN, base64.b64encode(PASSWORD.encode()).decode()):
        assert value.encode() not in held
    assert world.backend.observe("us-1").drifted == ()


def test_a_secret_value_changed_by_hand_is_drift_and_repaired(world: World) -> None:
    with_secret(world)
    edit(world.us, PATH, {"data": {"password": base64.b64encode(b"guessed").decode()}})
    seen = world.backend.observe("us-1")
    assert seen.drifted == ("Secret cell-us-1/payments-keys: data",)
    world.us.clear()
    world.apply("us-1")
    assert patched(world.us) == [PATH]
    live = world.us.call(lambda c: c.live("v1", "secrets", "cell-us-1", "payments-keys"))
    assert base64.b64decode(live["data"]["password"]).decode() == PASSWORD
    assert world.backend.observe("us-1").drifted == ()


def test_a_secret_changed_in_git_is_sent_again(world: World) -> None:
    with_secret(world)
    world.repo.replace("services/payments/manifests/keys.yaml", TOKEN, "rotated-token")
    world.repo.commit("rotate the token")
    world.us.clear()
    world.apply("us-1")
    assert PATH in patched(world.us)
    assert b"rotated-token" not in store_bytes(world)
    assert world.backend.observe("us-1").drifted == ()
