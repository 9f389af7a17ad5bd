"""Reading a server's Prometheus ``/-/metrics`` in the real-world tests: what the origin asked
its uplink, what the edge answered from its cache."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "metric_values", "total"]

#: A family's samples by their sorted label pairs.
Samples = dict[tuple[tuple[str, str], ...], float]


def metric_values(url: str, family: str, token: str | None = None, suffix: str = "_total") -> Samples:
    """The samples of ``family`` at ``url``/-/metrics whose name ends with ``suffix`` (a
    counter's ``_total``, a histogram's ``_count``), by their labels."""
    request = urllib.request.Request(f"{url}/-/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    found: Samples = {}
    for metric in text_string_to_metric_families(text):
        if metric.name == family:
            for sample in metric.samples:
                if sample.name == family + suffix:
                    found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def total(samples: Mapping[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    """The sum of the samples that carry every label given."""
    return sum(v for key, v in samples.items() if all((k, labels[k]) in key for k in labels))
