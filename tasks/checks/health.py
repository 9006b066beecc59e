"""Service-health checks of one window: latency percentiles against SLOs, error rate, throughput.

Pure functions of the window frame and the model's :class:`~mlmon.tasks.config.ServiceConfig`; vectorised over
every row.

Checks: ``latency_p50`` / ``latency_p95`` / ``latency_p99`` (fail above the configured SLO; only for the
SLOs that are configured), ``latency_logged`` (warn: latency is mapped but no row carries it, and no SLO
is configured to report it), ``error_rate`` (fail above ``service.max_error_rate``; warn when no row has a
status), ``volume_history`` (window level, only without ``quality.expected_volume``: rows against the
model's own past windows, see :func:`volume_history`).

Metrics: ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms`` (``np.nanpercentile``, linear
interpolation), ``error_rate``, ``requests_per_minute`` (rows / window minutes) and ``row_count``.

Fields the config explicitly does not log (``fields.latency_ms: null`` / ``fields.status: null``) are
skipped quietly: that is a configuration choice, not a problem of the window. An empty window publishes
``row_count`` 0 and ``requests_per_minute`` 0 and no checks: the ``volume`` quality check reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.config import ModelConfig, ServiceConfig
from mlmon.tasks.window import Window

PERCENTILES = (50, 95, 99)

Found = tuple[list[CheckResult], list[Metric]]


def health_checks(frame: pd.DataFrame, cfg: ModelConfig, window_seconds: float, segment: str = ALL) -> Found:
    """Every health check of one window (or one segment of it); ``window_seconds`` is the window length."""
    if window_seconds <= 0:
        raise ValueError(f"window_seconds must be positive, got {window_seconds}")
    rows = len(frame)
    metrics = [
        Metric("row_count", float(rows), "", segment),
        Metric("requests_per_minute", rows / (window_seconds / 60.0), "", segment),
    ]
    if rows == 0:
        return [], metrics
    checks: list[CheckResult] = []
    found = latency(frame, cfg.service, logged=cfg.fields.latency_ms is not None, segment=segment)
    checks += found[0]
    metrics += found[1]
    if cfg.fields.status is not None:
        found = error_rate(frame, cfg.service, segment)
        checks += found[0]
        metrics += found[1]
    return checks, metrics


def latency(frame: pd.DataFrame, service: ServiceConfig, *, logged: bool = True, segment: str = ALL) -> Found:
    """Latency percentiles (linear interpolation over the logged values) and their SLO checks.

    When no row carries a latency: every configured SLO check warns "latency not logged" (or, with no
    SLO, one ``latency_logged`` warning) unless the config says latency is not logged at all.
    """
    slos = {p: getattr(service, f"latency_p{p}_ms") for p in PERCENTILES}
    configured = {p: v for p, v in slos.items() if v is not None}
    has_column = c.LATENCY in frame
    values = frame[c.LATENCY].to_numpy(dtype=np.float64, na_value=np.nan) if has_column else np.empty(0)
    n = int(np.count_nonzero(~np.isnan(values)))
    if n == 0:
        if not logged and not configured:
            return [], []
        message = "latency not logged" + (" (no row has a latency)" if has_column else " (no latency column)")
        if not configured:
            return [
                CheckResult("latency_logged", Category.HEALTH, Status.WARN, None, None, message, "", segment)
            ], []
        return [
            CheckResult(f"latency_p{p}", Category.HEALTH, Status.WARN, None, slo, message, "", segment)
            for p, slo in configured.items()
        ], []

    found = np.nanpercentile(values, PERCENTILES, method="linear")
    metrics = [
        Metric(f"latency_p{p}_ms", float(v), "", segment) for p, v in zip(PERCENTILES, found, strict=True)
    ]
    checks = []
    for p, v in zip(PERCENTILES, found, strict=True):
        slo = configured.get(p)
        if slo is None:
            continue
        failed = v > slo
        message = f"p{p} latency {v:.1f} ms {'>' if failed else '≤'} {slo:g} ms SLO ({n:,} requests)"
        status = Status.FAIL if failed else Status.PASS
        checks.append(
            CheckResult(f"latency_p{p}", Category.HEALTH, status, float(v), slo, message, "", segment)
        )
    return checks, metrics


SIGNIFICANCE = 0.01  # one-sided binomial test of the error rate against the allowed rate


def error_rate(frame: pd.DataFrame, service: ServiceConfig, segment: str = ALL) -> Found:
    """Share of requests flagged ``__is_error``; fail above ``service.max_error_rate``.

    Warns instead when no row carries a status (extraction would flag none of them as errors).
    """
    allowed = service.max_error_rate
    no_status = c.STATUS in frame and not frame[c.STATUS].notna().any()
    if c.IS_ERROR not in frame or no_status:
        message = "status not logged: error rate unknown" + (" (no row has a status)" if no_status else "")
        check = CheckResult("error_rate", Category.HEALTH, Status.WARN, None, allowed, message, "", segment)
        return [check], []
    flags = frame[c.IS_ERROR].to_numpy(dtype=bool, na_value=False)
    rows = len(flags)
    n_err = int(np.count_nonzero(flags))
    rate = n_err / rows
    failed = rate > allowed
    op = ">" if failed else "≤"
    message = f"{_pct(rate)} of {rows:,} requests failed ({n_err:,}) {op} {_pct(allowed)} allowed"
    if failed:
        # a handful of errors in a small segment is not an incident: the excess must be significant
        p = float(stats.binomtest(n_err, rows, allowed, alternative="greater").pvalue)
        if p >= SIGNIFICANCE:
            failed = False
            message += f", but not significant at {rows:,} requests (p={p:.2g}): not flagged"
    status = Status.FAIL if failed else Status.PASS
    return (
        [CheckResult("error_rate", Category.HEALTH, status, rate, allowed, message, "", segment)],
        [Metric("error_rate", rate, "", segment)],
    )


def _pct(share: float) -> str:
    if 0 < abs(share) < 0.001:
        return f"{share * 100:.2g}%"
    return f"{share:.1%}"


# ------------------------------------------------------------------------------------ learned volume

MIN_HISTORY = 4  # past windows needed before a learned expectation is trusted
HISTORY_Z = 4.0  # band half-width in robust standard deviations (log scale): rare on ordinary traffic
MIN_LOG_SPREAD = 0.05  # never narrower than ±22 % at HISTORY_Z, however regular the history looks
_KEEP = {"same hour of the week": 8, "same time of day": 14, "same weekday": 8, "every": 28}


@dataclass(frozen=True)
class PastVolume:
    """Rows of one processed past window of the model (a row of ``mlmon.runs``)."""

    window: Window
    rows: int


def volume_history(
    rows: int, window: Window, history: Sequence[PastVolume], segment: str = ALL
) -> CheckResult:
    """``volume_history``: the window's rows against what the model's own past windows had, for models
    without a configured ``quality.expected_volume``.

    The comparable windows are those of the same length that ended before this one, narrowed to the
    same slot when the window length allows and at least :data:`MIN_HISTORY` of them exist: the same
    hour of the week (sub-day windows), else the same time of day; the same weekday (daily windows);
    else every past window (the most recent few of them). The band is the median ± :data:`HISTORY_Z`
    robust standard deviations (1.4826 × MAD) of log(1 + rows), never narrower than Poisson noise at
    the median count nor than :data:`MIN_LOG_SPREAD`. Fewer rows than the band fails; more warns.
    Too few past windows: pass with "insufficient history" (no alarm without an expectation).

    >>> from datetime import UTC, datetime, timedelta
    >>> day = lambda i: Window(datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=i),
    ...                        datetime(2026, 3, 3, tzinfo=UTC) + timedelta(days=i))
    >>> past = [PastVolume(day(i), 2500 + 37 * (i % 3)) for i in range(28)]
    >>> volume_history(225, day(28), past).status.value, volume_history(2480, day(28), past).status.value
    ('fail', 'pass')
    """
    comparable = sorted(
        (h for h in history if h.window.length == window.length and h.window.end <= window.start),
        key=lambda h: h.window.start,
        reverse=True,
    )
    which, chosen = _comparable(window, comparable)
    if len(chosen) < MIN_HISTORY:
        message = (
            f"{rows:,} predictions; insufficient history to learn the expected volume "
            f"({len(comparable)} past window(s) of this length, {MIN_HISTORY} needed; "
            "or set quality.expected_volume)"
        )
        return CheckResult(
            "volume_history", Category.HEALTH, Status.PASS, float(rows), None, message, "", segment
        )
    logs = np.log1p(np.array([h.rows for h in chosen], dtype=np.float64))
    center = float(np.median(logs))
    mad = 1.4826 * float(np.median(np.abs(logs - center)))
    spread = max(mad, 1.0 / np.sqrt(max(np.expm1(center), 1.0)), MIN_LOG_SPREAD)
    lo = float(round(np.expm1(center - HISTORY_Z * spread)))  # row counts: whole numbers
    hi = float(round(np.expm1(center + HISTORY_Z * spread)))
    typical = float(np.expm1(center))
    span = f"{chosen[-1].window.start:%Y-%m-%d}…{chosen[0].window.end:%Y-%m-%d}"
    source = f"median {typical:,.0f} of the last {len(chosen)} {which} windows in mlmon.runs ({span})"
    share = rows / typical if typical > 0 else float("inf")
    if rows < lo:
        status, op, threshold = Status.FAIL, "<", lo
    elif rows > hi:
        status, op, threshold = Status.WARN, ">", hi
    else:
        status, op, threshold = Status.PASS, "within", lo
    band = f"[{lo:,.0f}, {hi:,.0f}]"
    message = f"{rows:,} predictions ({share:.0%} of usual) {op} {band if op == 'within' else f'{threshold:,.0f}'} expected: {source}"
    return CheckResult(
        "volume_history", Category.HEALTH, status, float(rows), threshold, message, "", segment
    )


def _comparable(window: Window, past: list[PastVolume]) -> tuple[str, list[PastVolume]]:
    """The narrowest slot with at least MIN_HISTORY past windows, and its most recent windows."""
    start, length = window.start, window.length
    slots: list[tuple[str, Any]] = []
    if length < timedelta(days=1):
        slots += [
            (f"same hour of the week ({start:%a %H:%M} UTC)", lambda s: (s.weekday(), s.time())),
            (f"same time of day ({start:%H:%M} UTC)", lambda s: s.time()),
        ]
    elif length == timedelta(days=1):
        slots.append((f"same weekday ({start:%A}s)", lambda s: s.weekday()))
    for label, key in slots:
        same = [h for h in past if key(h.window.start) == key(start)]
        if len(same) >= MIN_HISTORY:
            return label, same[: _KEEP[label.split(" (")[0]]]
    return "previous", past[: _KEEP["every"]]
