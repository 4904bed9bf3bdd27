"""A service's Helm chart -> Kubernetes objects, rendered offline with Helm's own Go SDK
(helm-python-sdk: no `helm` binary, no cluster; `lookup` finds nothing).

What a cell cannot hold is refused or left out, before anything is applied:
- a chart's `crds/` (CustomResourceDefinitions are cluster-scoped): refused;
- hooks and test pods (`helm.sh/hook`): not objects of the release, and test pods get a
  random name on every render: left out;
- output that differs between two renders (`randAlphaNum`, `now`, `uuidv4` in a
  template): refused, since every apply would change it and the service's version
  would mean nothing.
Rendered objects are then checked and adopted like `manifests/` (`render.kubernetes`).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cellops.backends.kubernetes.kustomization import ManifestError, as_objects, read_yaml
from cellops.model.problems import Problem
from cellops.spec.chart import Chart
from cellops.spec.mergepatch import merge_patch
from cellops.spec.yamldoc import YamlError, parse_yaml_stream

MAX_OUTPUT_BYTES = 64 << 20
HOOK = "helm.sh/hook"
_AT = re.compile(r"(?P<template>[\w.-]+/templates/[\w./-]+):(?P<line>\d+):\d+")
FROM_CHART = "cellops.dev/from-chart"  # on each object of a chart: the template it came from
Obj = dict[str, Any]


def chart_values(chart: Chart, folders: dict[str, Path], label: str) -> dict[str, Any]:
    """The values a chart renders with: each of `valuesFiles` in order, then `values`.
    `folders`: the materialised `chart/` and `values/` folders of the service."""
    merged: object = {}
    for entry in chart.values_files:
        top, _, rest = entry.partition("/")
        name = f"{label}/{entry}"
        folder = folders.get(top)
        path = folder / rest if folder is not None else None
        if path is None or not path.is_file():
            raise ManifestError(f"{name}: does not exist: expected a values file there")
        documents = [d for d in read_yaml(path, name, single=False) if d is not None]
        if len(documents) > 1 or not all(isinstance(d, dict) for d in documents):
            raise ManifestError(f"{name}: expected one mapping of values")
        merged = merge_patch(merged, documents[0] if documents else {})
    merged = merge_patch(merged, chart.values)
    assert isinstance(merged, dict)
    return merged


def render_chart(
    source: Path, values: dict[str, Any], *, release: str, namespace: str, label: str
) -> list[Obj]:
    """The objects of the chart at `source` (a folder or a .tgz) for one release."""
    import helm_python as helm

    try:
        with helm.Chart.load(source) as chart:
            _refuse_crds(chart.crds, label)
            chart.validate_schema(values)
            first, second = (
                chart.render(values, name=release, namespace=namespace, revision=1, is_install=True)
                for _ in range(2)
            )
    except helm.HelmError as exc:
        raise _render_error(label, _one_line(str(exc))) from None
    objects, again = _objects(first, label), _objects(second, label)
    if objects != again:
        changed = next(t for (t, o), (_, a) in zip(objects, again, strict=True) if o != a)
        raise ManifestError(
            f"{label}/{changed}: renders differently every time (random or time-based"
            " values): its objects would change on every apply; set the value in"
            " chart.values, or make the template deterministic"
        )
    return [obj for _, obj in objects]


def _objects(rendered: dict[str, str], label: str) -> list[tuple[str, Obj]]:
    """(template, object) of each object a render gives, in template order, hooks left
    out."""
    objects: list[tuple[str, Obj]] = []
    for template in sorted(rendered):
        text = rendered[template]
        if template.endswith("NOTES.txt") or not text.strip():
            continue
        name = f"{label}/{_template(template)}"
        try:
            documents = parse_yaml_stream(name, text.encode(), MAX_OUTPUT_BYTES)
        except YamlError as exc:
            raise ManifestError.at(exc.problem) from exc
        for obj in as_objects(name, documents):
            if not _hook(obj):
                annotations = {**(obj["metadata"].get("annotations") or {}), FROM_CHART: name}
                obj["metadata"] = {**obj["metadata"], "annotations": annotations}
                objects.append((_template(template), obj))
    return objects


def pull_chart(chart: Chart, cache: Path, label: str) -> Path:
    """The archive of an OCI chart, pulled once and kept by digest: the registry is
    asked only for a digest not seen before, and must serve exactly that one."""
    import helm_python as helm

    assert chart.oci is not None and chart.version is not None and chart.digest is not None
    archive = cache / f"{chart.digest.removeprefix('sha256:')}.tgz"
    if archive.is_file():
        return archive
    plain = _loopback(chart.oci)  # a registry on this machine may speak plain HTTP
    staging = cache / f".pull-{chart.digest[7:19]}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        with helm.RegistryClient(plain_http=plain) as client:
            found = client.resolve(f"{chart.oci}:{chart.version}")["digest"]
            if found != chart.digest:
                raise ManifestError(
                    f"{label}: {chart.oci}:{chart.version} has digest {found}, not the"
                    f" pinned {chart.digest}: the version was pushed again; check it and"
                    " pin the new digest"
                )
            pulled = client.pull(
                f"{chart.oci}@{chart.digest}", destination=staging, plain_http=plain
            )
    except helm.HelmError as exc:
        raise ManifestError(
            f"{label}: cannot pull {chart.oci}:{chart.version}: {_one_line(str(exc))}"
        ) from None
    tarballs = sorted(staging.glob("*.tgz"))
    if len(tarballs) != 1:
        raise ManifestError(f"{label}: pulling {chart.oci} gave no chart archive: {pulled}")
    tarballs[0].rename(archive)
    staging.rmdir()
    return archive


def _refuse_crds(crds: list[dict[str, str]], label: str) -> None:
    if crds:
        raise ManifestError(
            f"{label}/{_template(crds[0].get('filename') or '-/crds/')}: a chart's crds/ holds"
            " CustomResourceDefinitions, which are cluster-scoped: a cell owns only its"
            " namespace; install the CRDs with the cluster, and remove crds/ from the chart"
        )


def _hook(obj: Obj) -> bool:
    """Hooks (and test pods, `test` hooks) run around an install; they are not objects
    the release keeps, and cellops has no install to run them around."""
    return HOOK in (obj["metadata"].get("annotations") or {})


def _template(path: str) -> str:
    """`podinfo/templates/x.yaml` -> `templates/x.yaml` (the chart's own folder name is
    the service's `chart/`); subcharts keep their `charts/<name>/` prefix."""
    return path.split("/", 1)[1] if "/" in path else path


def _render_error(label: str, message: str) -> ManifestError:
    """Helm's error, at the template and line it names (`web/templates/x.yaml:3:10`)."""
    found = _AT.search(message)
    if found is None:
        return ManifestError(f"{label}: helm: {message}")
    file = f"{label}/{_template(found['template'])}"
    return ManifestError.at(Problem(file, int(found["line"]), "", f"helm: {message}"))


def _loopback(reference: str) -> bool:
    host = urlsplit(reference.replace("oci://", "http://", 1)).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(message: str) -> str:
    return " ".join(message.split())
