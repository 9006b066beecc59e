"""Live drift in PromQL: recording and alert rules over the serving app's live metrics (:mod:`mlmon.live`).

The counters ``mlmon_live_bin_total`` share the reference profile's bins, so a window's share of each bin
is ``increase(counter[W])`` over the column's total, and PSI is computed exactly as the batch check
(:func:`mlmon.tasks.checks.drift.psi`): ``Σ (c − r)·ln(c / r)`` with empty bins floored at ``1e-4`` on
both sides; and so is the Jensen–Shannon distance (:func:`mlmon.tasks.checks.drift.jensen_shannon`:
base 2, in [0, 1], no smoothing). A test checks both PromQL values against mlmon's own on the same counts
on a real Prometheus.

One difference with the batch PSI: every category the reference lacks falls into one ``(other)`` bin
live, where the batch check gives each unseen category a bin of its own; with two or more unseen
categories the live PSI is lower.

Noise at low traffic: with ``k`` bins and ``n`` values in the window, PSI on a stream drawn from the
reference itself is about ``(k − 1) / n`` on average (a chi-square with ``k − 1`` degrees of freedom
divided by ``n``): 0.19 at n = 100 and 20 bins, 0.019 at n = 1,000. So below :data:`MIN_COUNT` values in
the window the live verdict is not trusted: the alert rules require at least that many, and the batch
window's verdict (its own tests with multiple-testing correction) takes over.

``python -m mlmon.promql`` writes ``deployments/prometheus/rules/mlmon-live.yml`` (``--check``: exit 1 when
the file is out of date); ``mlmon up`` writes the same rules next to its own Prometheus.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

EPS = 1e-4  # as mlmon.tasks.checks.drift.EPS and mlmon.live.EPS
WINDOW = "15m"
"""The rolling window of live drift."""
RATE_WINDOW = "5m"
"""The window of request rates, error ratios and latency percentiles."""
MIN_COUNT = 1000
"""Fewest values in the window for a live drift alert: below it PSI is mostly sampling noise."""
PSI_ALERT = 0.25
"""PSI above which a live drift alert fires (the usual "major shift" rule of thumb)."""
ERROR_RATIO_ALERT = 0.05
"""Error ratio above which the live error alert fires (the default of ``service.max_error_rate``)."""
MIN_REQUESTS = 100
"""Fewest requests in the rate window for the error-ratio alert."""
QUANTILES = (0.5, 0.95, 0.99)

COLUMN = ("model", "role", "column")
BIN = (*COLUMN, "bin")
RULES_FILE = Path(__file__).resolve().parents[1] / "deployments" / "prometheus" / "rules" / "mlmon-live.yml"


def _by(labels: tuple[str, ...]) -> str:
    return ", ".join(labels)


def bin_counts(window: str = WINDOW) -> str:
    """Values per bin in the last ``window``, summed over instances and worker processes."""
    return f"sum by ({_by(BIN)}) (increase(mlmon_live_bin_total[{window}]))"


def shares(counts: str) -> str:
    """Each bin's share of its column in ``counts`` (a per-bin vector); columns with no value drop out."""
    return f"({counts}) / on ({_by(COLUMN)}) group_left () (sum by ({_by(COLUMN)}) ({counts}) > 0)"


def reference_shares() -> str:
    """The reference's share of each bin (the same gauge from every instance: take one)."""
    return f"max by ({_by(BIN)}) (mlmon_live_reference_share)"


def _floored(share: str) -> str:
    """``share`` with empty bins at :data:`EPS` (as the batch PSI's floor)."""
    return f"(({share}) > 0 or ({share}) * 0 + {EPS})"


def psi(share: str, reference: str) -> str:
    """PSI per column from a window's ``share`` vector and the ``reference`` shares, empty bins floored at
    EPS on both sides (as :func:`mlmon.tasks.checks.drift.psi`)."""
    c, r = _floored(share), _floored(reference)
    on = f"on ({_by(BIN)})"
    return f"sum by ({_by(COLUMN)}) (({c} - {on} {r}) * ln({c} / {on} {r}))"


def jensen_shannon(share: str, reference: str) -> str:
    """Jensen–Shannon distance per column, base 2, in [0, 1], as
    :func:`mlmon.tasks.checks.drift.jensen_shannon`: ``sqrt(½ Σ c·log2(c/m) + ½ Σ r·log2(r/m))`` with
    ``m = (c + r) / 2``, each sum over the bins where its side is positive (no smoothing needed)."""
    on = f"on ({_by(BIN)})"
    m = f"((({share}) + {on} ({reference})) / 2)"

    def half(p: str) -> str:
        positive = f"(({p}) > 0)"
        return f"sum by ({_by(COLUMN)}) ({positive} * log2({positive} / {on} {m}))"

    # clamp: a rounding-level negative divergence when the two are equal
    return f"sqrt(clamp_min(0.5 * {half(share)} + 0.5 * {half(reference)}, 0))"


def names(window: str = WINDOW, rate_window: str = RATE_WINDOW) -> dict[str, str]:
    """The recording rules' names."""
    return {
        "bin_count": f"mlmon:live_bin_count:increase{window}",
        "column_count": f"mlmon:live_column_count:increase{window}",
        "bin_share": f"mlmon:live_bin_share:{window}",
        "reference_share": "mlmon:live_reference_share",
        "psi": f"mlmon:live_psi:{window}",
        "jensen_shannon": f"mlmon:live_jensen_shannon:{window}",
        "requests": f"mlmon:live_requests:rate{rate_window}",
        "error_ratio": f"mlmon:live_error_ratio:rate{rate_window}",
        **{f"latency_p{round(q * 100)}": f"mlmon:live_latency_seconds:p{round(q * 100)}_rate{rate_window}"
           for q in QUANTILES},
    }  # fmt: skip


def recording_rules(window: str = WINDOW, rate_window: str = RATE_WINDOW) -> list[dict[str, str]]:
    n = names(window, rate_window)
    total_rate = f"sum by (model) (rate(mlmon_live_predictions_total[{rate_window}]))"
    rules = [
        (n["bin_count"], bin_counts(window)),
        (n["column_count"], f"sum by ({_by(COLUMN)}) ({n['bin_count']})"),
        (n["bin_share"], shares(n["bin_count"])),
        (n["reference_share"], reference_shares()),
        (n["psi"], psi(n["bin_share"], n["reference_share"])),
        (n["jensen_shannon"], jensen_shannon(n["bin_share"], n["reference_share"])),
        (
            n["requests"],
            f"sum by (model, version, outcome) (rate(mlmon_live_predictions_total[{rate_window}]))",
        ),
        (
            n["error_ratio"],
            # `or … * 0`: a model with no error yet has no error series, and its ratio is 0, not absent
            f'(sum by (model) (rate(mlmon_live_predictions_total{{outcome="error"}}[{rate_window}])) '
            f"or {total_rate} * 0) / ({total_rate} > 0)",
        ),
    ]
    rules += [
        (
            n[f"latency_p{round(q * 100)}"],
            f"histogram_quantile({q}, sum by (model, le) (rate(mlmon_live_latency_seconds_bucket[{rate_window}])))",
        )
        for q in QUANTILES
    ]
    return [{"record": name, "expr": expr} for name, expr in rules]


def alert_rules(window: str = WINDOW, rate_window: str = RATE_WINDOW) -> list[dict[str, Any]]:
    n = names(window, rate_window)
    enough = f"and on ({_by(COLUMN)}) {n['column_count']} >= {MIN_COUNT}"

    def drift(alert: str, role: str, what: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": f'{n["psi"]}{{role="{role}"}} > {PSI_ALERT} {enough}',
            "for": "10m",
            "labels": {"severity": "warning", "source": "mlmon-live"},
            "annotations": {
                "summary": f"{{{{ $labels.model }}}}: live drift of {what} {{{{ $labels.column }}}}",
                "description": f"PSI over the last {window} is {{{{ $value | printf \"%.3f\" }}}} (> {PSI_ALERT}) "
                f"on at least {MIN_COUNT} values. The batch window's verdict follows at its next run.",
            },
        }  # fmt: skip

    total = f"sum by (model) (increase(mlmon_live_predictions_total[{rate_window}]))"
    return [
        drift("MlmonLiveFeatureDrift", "feature", "feature"),
        drift("MlmonLivePredictionDrift", "output", "model output"),
        {
            "alert": "MlmonLiveErrorRatio",
            "expr": f"{n['error_ratio']} > {ERROR_RATIO_ALERT} and on (model) {total} >= {MIN_REQUESTS}",
            "for": "5m",
            "labels": {"severity": "critical", "source": "mlmon-live"},
            "annotations": {
                "summary": "{{ $labels.model }}: live error ratio {{ $value | humanizePercentage }}",
                "description": f"Share of predictions whose status is not ok over the last {rate_window}.",
            },
        },
        {
            "alert": "MlmonLoggerDropping",
            "expr": f'sum by (model) (increase(mlmon_logger_documents_total{{outcome="dropped"}}[{window}])) > 0',
            "labels": {"severity": "warning", "source": "mlmon-live"},
            "annotations": {
                "summary": "{{ $labels.model }}: the logging helper dropped prediction logs",
                "description": "Its buffer was full or MongoDB unreachable at close: these predictions are "
                "missing from the batch windows. Raise max_buffer or check MongoDB.",
            },
        },
    ]  # fmt: skip


def rules(window: str = WINDOW, rate_window: str = RATE_WINDOW) -> dict[str, Any]:
    """The Prometheus rule file: recording rules, then alert rules."""
    return {
        "groups": [
            {"name": "mlmon-live-recording", "rules": recording_rules(window, rate_window)},
            {"name": "mlmon-live-alerts", "rules": alert_rules(window, rate_window)},
        ]
    }


def render(window: str = WINDOW, rate_window: str = RATE_WINDOW) -> str:
    head = "# Generated by `python -m mlmon.promql` (mlmon/promql.py): edit the generator, not this file.\n"
    return head + yaml.safe_dump(rules(window, rate_window), sort_keys=False, width=1000)


def prometheus_config(
    targets: list[str], rule_files: list[str], *, scrape_interval: str = "15s", job: str = "mlmon-serving"
) -> dict[str, Any]:
    """A ``prometheus.yml`` scraping the serving apps at ``targets`` (``host:port``, path /metrics)."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": rule_files,
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": targets}]}
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmon.promql", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether the rule file is current")
    args = parser.parse_args(argv)
    text = render()
    current = RULES_FILE.read_text(encoding="utf-8") if RULES_FILE.exists() else None
    if current == text:
        return 0
    if args.check:
        print(f"out of date: {RULES_FILE} (run `python -m mlmon.promql`)")
        return 1
    RULES_FILE.parent.mkdir(parents=True, exist_ok=True)
    RULES_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {RULES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
