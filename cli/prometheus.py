"""Reading Watchword's metrics back from the Ray nodes' Prometheus endpoints.

Every Ray node serves what its processes recorded at
``http://<node>:<metrics export port>/metrics``. Names there carry Ray's
``ray_`` prefix (and ``_total`` on counters), and one series per worker
process: ``Samples.total`` sums them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

RAY_PREFIX = "ray_"
SCRAPE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Samples:
    """The ``watchword_*`` samples of one scrape, filtered to one deployment."""

    def __init__(self, samples: Iterable[Sample], deployment: str) -> None:
        self._samples = [s for s in samples if s.labels.get("deployment") == deployment]

    def __len__(self) -> int:
        return len(self._samples)

    def total(self, name: str, **labels: str) -> float:
        """Sum of ``ray_<name>`` over every series whose labels match ``labels``."""
        return sum(
            s.value
            for s in self._samples
            if s.name == RAY_PREFIX + name
            and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Sums of ``ray_<name>`` grouped by the values of ``keys``."""
        groups: dict[tuple[str, ...], float] = {}
        for s in self._samples:
            if s.name == RAY_PREFIX + name:
                group = tuple(s.labels.get(k, "") for k in keys)
                groups[group] = groups.get(group, 0.0) + s.value
        return groups


def node_endpoints() -> list[str]:
    """The metrics URL of every live node of the connected Ray cluster."""
    import ray

    return [
        f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        for node in ray.nodes()
        if node.get("Alive") and node.get("MetricsExportPort")
    ]


def scrape(endpoints: Iterable[str]) -> tuple[list[Sample], list[str]]:
    """The ``ray_watchword_*`` samples of every endpoint, and those that failed."""
    samples: list[Sample] = []
    failed: list[str] = []
    for url in endpoints:
        try:
            response = httpx.get(url, timeout=SCRAPE_TIMEOUT_SECONDS)
            response.raise_for_status()
        except httpx.HTTPError:
            failed.append(url)
            continue
        samples.extend(parse(response.text))
    return samples, failed


def parse(text: str) -> list[Sample]:
    """The ``ray_watchword_*`` samples of one page in Prometheus' text format."""
    wanted = f"{RAY_PREFIX}watchword_"
    return [
        Sample(sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        if family.name.startswith(wanted)
        for sample in family.samples
    ]
