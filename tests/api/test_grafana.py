"""docs/grafana/cachepoint.json: every query names metrics that /metrics exports (checked against the live
exposition of a server that has served a call), and every label it groups or filters by exists on them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from cachepoint.api.common import AppServices
from tests.api.wire import Boto

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "cachepoint.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    found += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def metric_names(expr: str) -> set[str]:
    """Identifiers in metric position: not functions or keywords, not inside label matchers, groupings or ranges."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(by|without)\s*\([^)]*\)|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,[^)]*\)", r"\1", bare)  # (metric, label)
    names = set()
    for word in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        if not bare[word.end() :].lstrip().startswith("("):  # a function's name is followed by its arguments
            names.add(word.group())
    return names


def exported(text: str, services: AppServices) -> dict[str, set[str]]:
    """Sample names the exposition can carry → their label names: from the TYPE lines and samples, and for
    families without samples yet (no throttle has happened), from the metric's declared label names."""
    declared = {
        name: set(getattr(collector, "_labelnames", ()))
        for name, collector in services.telemetry.registry._names_to_collectors.items()
    }
    names: dict[str, set[str]] = {}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        base = family.removesuffix("_total") if kind == "counter" else family
        for suffix in SUFFIXES.get(kind, ("",)):
            names.setdefault(base + suffix, set()).update(declared.get(base + suffix, set()))
    for name, labels in re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}", text, re.M):
        names.setdefault(name, set()).update(re.findall(r"([A-Za-z_]+)=", labels))
    return names


def test_every_dashboard_query_names_exported_metrics_and_labels(
    client: TestClient, runtime: Boto, fake_services: AppServices
) -> None:
    runtime("Converse", modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            messages=[{"role": "user", "content": [{"text": "Hello"}]}])  # fmt: skip
    available = exported(client.get("/metrics").text, fake_services)
    used = {name for expr in queries() for name in metric_names(expr)}
    assert used, "the dashboard has queries"
    assert sorted(used - set(available)) == []
    for expr in queries():
        for name in metric_names(expr):
            matchers = re.findall(rf"{re.escape(name)}\{{([^}}]*)\}}", expr)
            for label in re.findall(r"([A-Za-z_]+)\s*=~?", " ".join(matchers)):
                assert label in available[name], f"{name} has no label {label!r} ({expr})"
