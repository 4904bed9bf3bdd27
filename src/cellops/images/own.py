"""The images of services' own objects (`manifests/` and chart output) in Kubernetes
cells, so that the image policy covers every container cellops would run, not only
`spec.image`. Built once per service version (the manifest cache keeps the builds)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cellops.backends.kubernetes.helm import FROM_CHART
from cellops.backends.kubernetes.manifests import ManifestError, Manifests, own_objects
from cellops.render import DesiredFleet
from cellops.render.hashing import canonical_json
from cellops.render.k8s_podsecurity import containers, pod_template
from cellops.spec.cell import KubernetesBackend


def own_images(
    manifests: Manifests, desired: DesiredFleet, services: set[str]
) -> Iterator[tuple[str, str, str, str]]:
    """(service, image, file, field) of each distinct container image in the own objects
    of `services`. A build that fails yields nothing: the Kubernetes check reports it."""
    done: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for cell in desired.cells.values():
        if not isinstance(cell.spec.backend, KubernetesBackend):
            continue
        for name, service in cell.services.items():
            chart = service.spec.chart
            key = canonical_json([name, service.code, chart and chart.model_dump(mode="json")])
            if name not in services or key in done:
                continue
            done.add(key)
            try:
                built = own_objects(manifests, cell, {name: service}).get(name, [])
            except ManifestError:
                continue
            for obj in built:
                for image, file, field in _images(obj, name):
                    if (name, image) not in seen:
                        seen.add((name, image))
                        yield name, image, file, field


def _images(obj: dict[str, Any], service: str) -> Iterator[tuple[str, str, str]]:
    template = pod_template(obj)
    if template is None:
        return
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    file = annotations.get(FROM_CHART) or f"services/{service}/manifests"  # as validation says
    where = f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
    for path, container in containers(template[1], template[0]):
        image = container.get("image")
        if isinstance(image, str):
            yield image, str(file), f"{where}: {path}.image"
