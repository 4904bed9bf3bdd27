"""At apply time the server's discovery has the last word on a kind's scope: a kind it
says is cluster-scoped is never sent, even when the fleet declared it namespaced (or the
revision was rendered with --no-validate). On the wire, with kmock."""

from __future__ import annotations

import kmock
import pytest

from cellops.model.errors import BackendError
from tests.integration import test_kubernetes_backend
from tests.integration.test_kubernetes_backend import World, patched

world = test_kubernetes_backend.world  # the example fleet, two clusters

ISSUER = """\
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: letsencrypt}
spec: {acme: {server: https://acme.invalid/directory}}
"""
CERTIFICATE = """\
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: payments}
spec: {secretName: payments-tls, issuerRef: {name: letsencrypt}}
"""


def serve_cert_manager(world: World) -> None:
    resources = world.us.cluster.resources
    resources["cert-manager.io/v1/clusterissuers"] = kmock.ResourceInfo(
        kind="ClusterIssuer", namespaced=False
    )
    resources["cert-manager.io/v1/certificates"] = kmock.ResourceInfo(
        kind="Certificate", namespaced=True
    )


def test_a_kind_discovery_says_is_cluster_scoped_is_not_applied(world: World) -> None:
    serve_cert_manager(world)
    world.repo.write("services/payments/manifests/issuer.yaml", ISSUER)
    world.repo.commit("an issuer for the whole cluster, from a cell")
    with pytest.raises(
        BackendError, match=r"ClusterIssuer \(cert-manager\.io/v1\) is cluster-scoped"
    ):
        world.apply("us-1")
    assert not any("clusterissuers" in path for path in patched(world.us))


def test_a_kind_discovery_says_is_namespaced_is_applied_in_the_cell(world: World) -> None:
    serve_cert_manager(world)
    world.repo.write("services/payments/manifests/certificate.yaml", CERTIFICATE)
    world.repo.commit("a certificate in the cell")
    world.apply("us-1")
    path = "/apis/cert-manager.io/v1/namespaces/cell-us-1/certificates/payments"
    assert path in patched(world.us)
