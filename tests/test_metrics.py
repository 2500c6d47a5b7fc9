"""/metrics: the series an operator's dashboards and alerts rely on, with exact names and values."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_hooks.metrics import ServiceMetrics, metrics_router

ROOT = Path(__file__).resolve().parent.parent


def card(rule_id: str | None, indicator: str) -> dict:
    extension = {"spinecds": {"ruleId": rule_id, "ruleVersion": "1.0.0"}} if rule_id else {}
    return {"summary": "s", "indicator": indicator, "source": {"label": "x"}, "extension": extension}


def sorted_labels(line: str) -> str:
    """One exposition line with its labels in name order (prometheus-client versions differ on `le`)."""
    match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
    if not match:
        return line
    name, labels, value = match.groups()
    pairs = sorted(re.findall(r'\w+="[^"]*"', labels))
    return name + "{" + ",".join(pairs) + "} " + value


def scrape(metrics: ServiceMetrics) -> tuple[str, list[str]]:
    app = FastAPI()
    app.include_router(metrics_router(metrics))
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    return response.headers["content-type"], [sorted_labels(line) for line in response.text.splitlines()]


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics(process_metrics=False)


def test_scrape_is_prometheus_text_format_and_not_cached(metrics: ServiceMetrics) -> None:
    app = FastAPI()
    app.include_router(metrics_router(metrics))
    response = TestClient(app).get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    assert "# TYPE spinecds_cards_total counter" in response.text


def test_cards_counted_by_rule_and_indicator(metrics: ServiceMetrics) -> None:
    metrics.count_cards(
        [
            card("mri-urgency", "critical"),
            card("sins-referral", "warning"),
            card("sins-referral", "warning"),
            card(None, "info"),
            card("x", "bogus"),
        ]
    )
    _, lines = scrape(metrics)
    assert 'spinecds_cards_total{indicator="critical",rule_id="mri-urgency"} 1.0' in lines
    assert 'spinecds_cards_total{indicator="warning",rule_id="sins-referral"} 2.0' in lines
    assert 'spinecds_cards_total{indicator="info",rule_id="unknown"} 1.0' in lines
    assert 'spinecds_cards_total{indicator="unknown",rule_id="x"} 1.0' in lines


def test_hook_latency_lands_in_the_budget_buckets(metrics: ServiceMetrics) -> None:
    metrics.observe_hook("spinecds-order-sign", "order-sign", 0.040)
    metrics.observe_hook("spinecds-order-sign", "order-sign", 0.600)
    _, lines = scrape(metrics)
    bucket = 'spinecds_hook_request_duration_seconds_bucket{hook="order-sign",le="%s",service_id="spinecds-order-sign"}'
    assert bucket % "0.025" + " 0.0" in lines
    assert bucket % "0.05" + " 1.0" in lines
    assert bucket % "0.5" + " 1.0" in lines
    assert bucket % "1.0" + " 2.0" in lines
    assert bucket % "+Inf" + " 2.0" in lines
    count = 'spinecds_hook_request_duration_seconds_count{hook="order-sign",service_id="spinecds-order-sign"}'
    assert count + " 2.0" in lines
    buckets = [line for line in lines if line.startswith("spinecds_hook_request_duration_seconds_bucket")]
    assert [line.split('le="')[1].split('"')[0] for line in buckets] == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "+Inf",
    ]


def test_prefetch_outcomes_and_412(metrics: ServiceMetrics) -> None:
    metrics.count_prefetch("patient", "prefetched")
    metrics.count_prefetch("conditions", "null")
    metrics.count_prefetch("observations", "fetched")
    metrics.count_prefetch("observations", "failed")
    metrics.count_precondition_failed("spinecds-patient-view")
    _, lines = scrape(metrics)
    assert 'spinecds_prefetch_keys_total{key="patient",outcome="prefetched"} 1.0' in lines
    assert 'spinecds_prefetch_keys_total{key="conditions",outcome="null"} 1.0' in lines
    assert 'spinecds_prefetch_keys_total{key="observations",outcome="fetched"} 1.0' in lines
    assert 'spinecds_prefetch_keys_total{key="observations",outcome="failed"} 1.0' in lines
    assert 'spinecds_precondition_failed_responses_total{service_id="spinecds-patient-view"} 1.0' in lines


def test_fhir_calls_and_failures_by_reason(metrics: ServiceMetrics) -> None:
    metrics.observe_fhir_call(0.020)
    metrics.observe_fhir_call(2.5, failure_reason="timeout")
    metrics.observe_fhir_call(0.003, failure_reason="http-status")
    _, lines = scrape(metrics)
    assert "spinecds_fhir_request_duration_seconds_count 3.0" in lines
    assert 'spinecds_fhir_request_duration_seconds_bucket{le="0.005"} 1.0' in lines
    assert 'spinecds_fhir_request_failures_total{reason="timeout"} 1.0' in lines
    assert 'spinecds_fhir_request_failures_total{reason="http-status"} 1.0' in lines
    # Known reasons are exported as 0 before they happen, so alerts have a series to watch.
    assert 'spinecds_fhir_request_failures_total{reason="connect"} 0.0' in lines
    assert 'spinecds_fhir_request_failures_total{reason="bad-json"} 0.0' in lines


def test_reloads_feedback_and_lost_audit_records(metrics: ServiceMetrics) -> None:
    metrics.count_reload(ok=True)
    metrics.count_reload(ok=True)
    metrics.count_reload(ok=False)
    metrics.count_feedback("mri-urgency", "accepted")
    metrics.count_feedback("mri-urgency", "overridden")
    metrics.count_feedback(None, "overridden")
    metrics.count_audit_lost()
    metrics.count_audit_lost(2)
    _, lines = scrape(metrics)
    assert 'spinecds_rule_reloads_total{result="ok"} 2.0' in lines
    assert 'spinecds_rule_reloads_total{result="failed"} 1.0' in lines
    assert 'spinecds_feedback_total{outcome="accepted",rule_id="mri-urgency"} 1.0' in lines
    assert 'spinecds_feedback_total{outcome="overridden",rule_id="mri-urgency"} 1.0' in lines
    assert 'spinecds_feedback_total{outcome="overridden",rule_id="unknown"} 1.0' in lines
    assert "spinecds_audit_records_lost_total 3.0" in lines


def test_evaluations_in_flight_gauge_goes_up_and_back_down(metrics: ServiceMetrics) -> None:
    with metrics.track_evaluation(), metrics.track_evaluation():
        assert "spinecds_engine_evaluations_in_flight 2.0" in scrape(metrics)[1]
    with pytest.raises(RuntimeError), metrics.track_evaluation():
        raise RuntimeError("engine failed")
    assert "spinecds_engine_evaluations_in_flight 0.0" in scrape(metrics)[1]


def test_unknown_outcomes_are_programming_errors(metrics: ServiceMetrics) -> None:
    with pytest.raises(ValueError, match="prefetch outcome"):
        metrics.count_prefetch("patient", "cached")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feedback outcome"):
        metrics.count_feedback("mri-urgency", "ignored")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="FHIR failure reason"):
        metrics.observe_fhir_call(0.1, failure_reason="dns")  # type: ignore[arg-type]


def test_each_instance_has_its_own_registry() -> None:
    first, second = ServiceMetrics(process_metrics=False), ServiceMetrics(process_metrics=False)
    first.count_reload(ok=True)
    assert 'spinecds_rule_reloads_total{result="ok"} 1.0' in scrape(first)[1]
    assert 'spinecds_rule_reloads_total{result="ok"} 0.0' in scrape(second)[1]


def test_process_metrics_included_by_default() -> None:
    _, lines = scrape(ServiceMetrics())
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    assert any(line.startswith("python_info{") for line in lines)


def test_multiprocess_mode_sums_all_workers(tmp_path: Path) -> None:
    """Under gunicorn each worker counts alone; with PROMETHEUS_MULTIPROC_DIR one scrape sees them all.

    The mode is fixed when prometheus_client is imported, so each "worker" is a fresh interpreter.
    """
    worker = textwrap.dedent("""
        from cds_hooks.metrics import ServiceMetrics
        metrics = ServiceMetrics()
        metrics.count_cards([{"indicator": "critical", "extension": {"spinecds": {"ruleId": "mri-urgency"}}}])
        metrics.count_reload(ok=True)
        metrics.observe_hook("spinecds-order-sign", "order-sign", 0.04)
    """)
    scraper = textwrap.dedent("""
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from cds_hooks.metrics import ServiceMetrics, metrics_router
        app = FastAPI()
        metrics = ServiceMetrics()
        app.include_router(metrics_router(metrics))
        with metrics.track_evaluation():
            print(TestClient(app).get("/metrics").text)
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, cwd=ROOT)
    lines = subprocess.run(
        [sys.executable, "-c", scraper], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout.splitlines()
    lines = [sorted_labels(line) for line in lines]
    assert 'spinecds_cards_total{indicator="critical",rule_id="mri-urgency"} 2.0' in lines
    assert 'spinecds_rule_reloads_total{result="ok"} 2.0' in lines
    assert (
        'spinecds_hook_request_duration_seconds_count{hook="order-sign",service_id="spinecds-order-sign"} 2.0' in lines
    )
    # Summed over processes (dead workers are dropped by gunicorn.conf.py); the scraper is mid-evaluation.
    assert "spinecds_engine_evaluations_in_flight 1.0" in lines
