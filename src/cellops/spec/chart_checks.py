"""Rules about a service's `spec.chart`: a local chart needs its folder, values files
must exist where the service's version covers them, a chart folder left unused is worth
a warning. Part of `checks.check_backends`. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellops.model.problems import Problem
from cellops.spec.messages import warning
from cellops.spec.revision import Variant
from cellops.spec.service import ServiceSpec
from cellops.spec.yamldoc import PathItem

if TYPE_CHECKING:
    from cellops.spec.checks import Context


def chart_problems(ctx: Context, name: str, variants: tuple[Variant, ...]) -> list[Problem]:
    """A local chart needs its folder; values files live in folders that are part of the
    service's version; a chart folder nobody uses is a mistake worth a warning."""
    folder = f"services/{name}/chart"
    problems = []
    local_chart = False
    for variant in variants:
        chart = variant.spec.chart
        if chart is None:
            continue
        local_chart = local_chart or chart.local
        for i, entry in enumerate(chart.values_files):
            if f"services/{name}/{entry.split('/', 1)[0]}" not in ctx.trees:
                where = _chart_field(ctx.service(name).spec, ("valuesFiles", i))
                message = f"services/{name}/{entry} does not exist: expected a values file there"
                problems.append(ctx.problem(name, where, message))
    if local_chart and folder not in ctx.trees:
        message = (
            f"{folder}/ does not exist: expected the chart there (Chart.yaml, templates/),"
            " or chart.oci with version and digest"
        )
        problems.append(ctx.problem(name, _chart_field(ctx.service(name).spec, ()), message))
    used = any(v.spec.chart is not None for v in variants)
    if folder in ctx.trees and not used:
        parsed = ctx.services[name]
        problems.append(
            warning(
                parsed.path,
                parsed.line("spec"),
                "spec",
                f"{folder}/ is not used: set spec.chart: {{}} to render it",
            )
        )
    return problems


def _chart_field(spec: ServiceSpec, below: tuple[PathItem, ...]) -> tuple[PathItem, ...]:
    if spec.chart is not None:
        return ("spec", "chart", *below)
    for i, override in reversed(list(enumerate(spec.overrides))):
        if "chart" in override.patch:
            return ("spec", "overrides", i, "patch", "chart")
    return ("spec",)
