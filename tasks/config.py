"""The models config: one YAML file describing every monitored model.

Validated on load with pydantic models that reject unknown keys; an error names the file, the model and
the key, and says what is allowed. Connection URIs never live here: they come from the environment
(``MLMON_MONGO_URI``, ``MLMON_POSTGRES_URI``; see ``mlmon.settings``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlmon.tasks.errors import ConfigError
from mlmon.tasks.window import EPOCH, as_utc, parse_duration


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Kind(StrEnum):
    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"


class TaskType(StrEnum):
    REGRESSION = "regression"
    BINARY = "binary"
    MULTICLASS = "multiclass"
    NONE = "none"


Duration = Annotated[str, Field(description="a duration such as '15m', '1h', '1d'")]


def _duration(v: str) -> str:
    parse_duration(v)
    return v


# --------------------------------------------------------------------------- names resolved at load
# Every name a run would look up (drift methods, metrics, cron, timezone) is resolved here, so a typo
# fails `mlmon config check` (file, model, key, what is allowed) instead of a run hours later.

_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_FIELDS = (  # name, lowest, highest, names allowed in place of numbers
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def check_cron(text: str) -> str:
    """A standard 5-field cron (or a macro such as ``@daily``), as Prefect's cron schedule reads it.

    >>> check_cron("15 0 * * 1-5")
    '15 0 * * 1-5'
    >>> check_cron("61 * * * *")
    Traceback (most recent call last):
    ...
    ValueError: cron '61 * * * *': minute 61 is outside 0-59
    """
    v = str(text).strip()
    if v.lower() in _CRON_MACROS:
        return v
    parts = v.split()
    if len(parts) != 5:
        raise ValueError(
            f"cron {v!r}: expected 5 fields (minute hour day-of-month month day-of-week, e.g. '15 0 * * *') "
            f"or one of {', '.join(_CRON_MACROS)}"
        )
    for part, (what, lo, hi, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            rng, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"cron {v!r}: {what} step {step!r} is not a positive number")
            if rng == "*":
                continue
            for bound in rng.split("-", 1):
                low = bound.lower()
                if low in names:
                    continue
                if not bound.isdigit():
                    raise ValueError(f"cron {v!r}: {what} {bound!r} is not a number ({lo}-{hi})")
                if not lo <= int(bound) <= hi:
                    raise ValueError(f"cron {v!r}: {what} {bound} is outside {lo}-{hi}")
    return v


def check_timezone(name: str) -> str:
    """An IANA timezone name (``UTC``, ``Europe/Berlin``); a typo lists the closest names."""
    import difflib
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown timezone {name!r}: use an IANA name such as UTC or Europe/Berlin{hint}"
        ) from None
    return name


def _drift_method(name: str, kind: Kind | None, role: Literal["test", "effect"] | None) -> str:
    """Resolve a drift method name in the registry (imported here: the registry imports this module)."""
    from mlmon.tasks.checks.drift import get_method

    try:
        get_method(name, kind, role)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return name


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def window_origin_instant(origin: str, timezone: str) -> datetime:
    """The UTC instant windows are aligned to: ``epoch`` (1970-01-01T00:00Z, a Thursday), a weekday
    (that day's 00:00 in ``timezone``, at the timezone's offset in the first week of 2024), or an ISO
    instant (naive = UTC).

    >>> window_origin_instant("monday", "UTC").isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> window_origin_instant("monday", "Europe/Berlin").isoformat()
    '2023-12-31T23:00:00+00:00'
    >>> window_origin_instant("2026-02-02T06:00", "UTC").isoformat()
    '2026-02-02T06:00:00+00:00'
    """
    from zoneinfo import ZoneInfo

    low = origin.strip().lower()
    if low == "epoch":
        return EPOCH
    if low in WEEKDAYS:
        local = datetime(2024, 1, 1 + WEEKDAYS.index(low), tzinfo=ZoneInfo(timezone))  # 2024-01-01: a Monday
        return local.astimezone(UTC)
    try:
        return as_utc(origin)
    except ValueError:
        raise ValueError(
            f"window_origin {origin!r}: use 'epoch', a weekday ({', '.join(WEEKDAYS)}) or an ISO instant "
            "such as 2026-01-05T00:00Z"
        ) from None


class FeatureSpec(Strict):
    """One model input."""

    type: Kind = Field(description="numerical or categorical")
    path: str | None = Field(None, description="dotted path in the document; default 'features.<name>'")
    required: bool = Field(False, description="quarantine a document where this feature is missing")
    drift_test: str | None = Field(None, description="override the significance test (e.g. ks, chisquare)")
    drift_effect: str | None = Field(None, description="override the effect-size method (e.g. psi)")
    drift_threshold: float | None = Field(None, description="override the minimum effect size")
    range: tuple[float, float] | None = Field(
        None, description="allowed [min, max]; default: reference range"
    )
    allowed: list[str] | None = Field(None, description="allowed categories; default: reference categories")
    max_missing_share: float | None = Field(None, ge=0, le=1, description="override the quality default")

    @field_validator("drift_test", "drift_effect")
    @classmethod
    def _known_method(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        role: Literal["test", "effect"] = "test" if info.field_name == "drift_test" else "effect"
        return None if v is None else _drift_method(v, kind, role if role == "test" else None)


class FieldMap(Strict):
    """Dotted paths of the non-feature fields in a prediction document. ``null`` = not logged."""

    timestamp: str = Field("timestamp", description="UTC time of the prediction")
    timestamp_type: Literal["date", "string", "epoch_s", "epoch_ms"] = Field(
        "date",
        description="how the timestamp is stored: BSON date, ISO-8601 string (Z, ±hh:mm or no offset = UTC), epoch s/ms",
    )
    request_id: str | None = Field("request_id", description="id joining predictions to delayed labels")
    model_version: str | None = Field("model_version", description="model version string")
    prediction: str | None = Field("prediction.value", description="predicted label or number")
    probabilities: str | None = Field(
        None,
        description="class probabilities: {class: p} object, list aligned with `classes`, or p(positive)",
    )
    target: str | None = Field(None, description="ground truth logged in the same document, if any")
    latency_ms: str | None = Field("latency_ms", description="serving latency in milliseconds")
    status: str | None = Field(
        "status", description="request outcome; values in `ok_statuses` count as success"
    )


class LabelSource(Strict):
    """Delayed ground truth in a separate collection, joined by request id."""

    collection: str = Field("labels", description="collection holding label documents")
    request_id: str = Field("request_id", description="path of the request id in a label document")
    label: str = Field("label", description="path of the label value")
    timestamp: str | None = Field("timestamp", description="path of the time the label arrived")


class Source(Strict):
    database: str = Field("mlmon", description="MongoDB database")
    collection: str = Field("predictions", description="collection of prediction documents")
    filter: dict[str, Any] = Field(
        default_factory=dict, description="extra MongoDB filter, e.g. {model: churn}"
    )
    labels: LabelSource | None = Field(None, description="where delayed labels live; null = none")
    batch_size: int = Field(10_000, gt=0, description="documents per read batch")
    decode_workers: int = Field(
        0,
        ge=0,
        description="processes decoding read batches in parallel on a big window; 0 = one per CPU "
        "(at most 4), 1 = decode in the reading process only",
    )
    parallel_decode_rows: int = Field(
        200_000,
        ge=0,
        description="documents read before the batches still to come are decoded by worker processes "
        "(small windows never pay the workers' start-up)",
    )


class ReferenceColumns(Strict):
    """Which columns of the reference file hold the model's outputs and the ground truth.

    ``null`` = the name ``mlmon reference build`` writes (``__prediction``, ``__score``, ``__target``), so
    a reference built by mlmon needs no mapping; a reference made elsewhere names its own columns.
    """

    prediction: str | None = Field(None, description="predicted label (classification) or value (regression)")
    score: str | None = Field(
        None, description="binary: p(positive class); multiclass: the top probability (confidence)"
    )
    target: str | None = Field(
        None, description="ground truth; without it the reference's own quality is unknown"
    )


class RollingReference(Strict):
    """A reference built from the model's own recent logs: the last ``windows`` windows before the
    monitored one, or (``period``) the same window one period earlier."""

    windows: int | None = Field(
        None, ge=1, le=366, description="the last N windows before the monitored one (default 7)"
    )
    period: Duration | None = Field(
        None, description="instead: the same window this long earlier (7d: the same weekday last week)"
    )
    min_rows: int = Field(
        1000,
        ge=1,
        description="fewer valid rows in the rolling reference => insufficient data: the fixed reference "
        "is used and the result says so",
    )

    _p = field_validator("period")(lambda v: v if v is None else _duration(v))

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("windows") is not None and data.get("period") is not None:
                raise ValueError("set either reference.rolling.windows or reference.rolling.period, not both")
            if data.get("windows") is None and data.get("period") is None:
                data = {**data, "windows": 7}
        return data


Strategy = Literal["fixed", "rolling"]


class Reference(Strict):
    path: str = Field(description="Parquet file, relative to the config file's folder")
    columns: ReferenceColumns = Field(
        default_factory=ReferenceColumns, description="reference columns holding prediction, score, target"
    )
    strategy: Strategy = Field(
        "fixed",
        description="reference of every check family: fixed (the file: 'is production still like "
        "training?') or rolling (recent windows: 'is this window unlike the last few?')",
    )
    families: dict[str, Strategy] = Field(
        default_factory=dict,
        description="strategy per check family, overriding `strategy`: drift or a model-health section "
        "fitted on the reference (outliers, …); quality, performance and health always use the file",
    )
    rolling: RollingReference = Field(
        default_factory=RollingReference, description="how the rolling reference is built"
    )


class DriftConfig(Strict):
    """One decision rule: significant after correction AND at least a minimum effect size."""

    alpha: float = Field(0.01, gt=0, lt=1, description="family-wise significance level per window")
    correction: Literal["bonferroni", "holm", "bh", "none"] = Field(
        "holm",
        description="multiple-testing correction across the columns of a window (holm: the same "
        "family-wise guarantee as bonferroni, never less power)",
    )
    numerical_test: str = Field(
        "ks",
        description="significance test for numerical columns (ks: fast at any size; anderson: tie-aware and "
        "sharper on windows of 1k-10k rows, about 1 s per column at 1M rows)",
    )
    discrete_test: str | None = Field(
        None,
        description="significance test for numerical columns with few distinct values in the reference "
        "(count-like, many ties, where ks is conservative; anderson: midrank Anderson-Darling, "
        "chisquare_binned); None: numerical_test for every numerical column",
    )
    discrete_max_values: int = Field(
        50,
        ge=2,
        description="a numerical column with at most this many distinct reference values is discrete",
    )
    categorical_test: str = Field("chisquare", description="significance test for categorical columns")
    numerical_effect: str = Field("wasserstein", description="effect size for numerical columns")
    categorical_effect: str = Field("jensen_shannon", description="effect size for categorical columns")
    numerical_threshold: float = Field(
        0.025, ge=0, description="minimum effect (normed Wasserstein = shift in σ)"
    )
    categorical_threshold: float = Field(0.02, ge=0, description="minimum effect (Jensen–Shannon distance)")
    min_rows: int = Field(200, ge=1, description="fewer non-missing rows => warn: insufficient data")
    dataset_rule: Literal["any", "share"] = Field(
        "any", description="dataset drift when any column drifts (after correction) or when a share does"
    )
    dataset_share: float = Field(0.3, gt=0, le=1, description="share of drifted features for rule 'share'")
    extra_methods: list[str] = Field(
        default_factory=lambda: ["psi", "jensen_shannon", "kl_div", "wasserstein"],
        description="additional scores reported per column (not used for the verdict)",
    )

    @field_validator("numerical_test", "categorical_test", "numerical_effect", "categorical_effect")
    @classmethod
    def _known_method(cls, v: str, info: ValidationInfo) -> str:
        name = info.field_name or ""
        kind = Kind.NUMERICAL if name.startswith("numerical") else Kind.CATEGORICAL
        return _drift_method(v, kind, "test" if name.endswith("_test") else None)

    @field_validator("extra_methods")
    @classmethod
    def _known_methods(cls, v: list[str]) -> list[str]:
        for name in v:
            _drift_method(name, None, None)
        return v


class ExpectedVolume(Strict):
    min: int | None = Field(None, ge=0, description="fewer rows per window => fail")
    max: int | None = Field(None, ge=0, description="more rows per window => fail")


class QualityConfig(Strict):
    max_missing_share: float = Field(0.05, ge=0, le=1, description="above reference share + this => fail")
    max_out_of_range_share: float = Field(0.01, ge=0, le=1, description="numerical values outside range")
    max_unseen_share: float = Field(0.01, ge=0, le=1, description="categories never seen in the reference")
    max_quarantined_share: float = Field(0.01, ge=0, le=1, description="documents rejected by the contract")
    expected_volume: ExpectedVolume = Field(default_factory=ExpectedVolume)
    max_string_length: int = Field(1000, gt=0, description="longer strings are quarantined")


class ServiceConfig(Strict):
    latency_p50_ms: float | None = Field(None, gt=0, description="SLO on the median latency")
    latency_p95_ms: float | None = Field(None, gt=0, description="SLO on the 95th percentile latency")
    latency_p99_ms: float | None = Field(None, gt=0, description="SLO on the 99th percentile latency")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="share of requests whose status is not ok")
    ok_statuses: list[str | int] = Field(default_factory=lambda: ["ok", "success", 200])


class PerformanceConfig(Strict):
    min_labelled: int = Field(50, ge=1, description="fewer labelled rows => warn: insufficient labels")
    max_degradation: float = Field(
        0.1, ge=0, description="relative worsening of a metric against the reference that fails the check"
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="absolute limits per metric: minimum for scores (accuracy, f1, roc_auc, r2), "
        "maximum for errors (mae, rmse, mape, log_loss)",
    )
    min_label_coverage: float = Field(0.0, ge=0, le=1, description="warn when coverage is lower")

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            return v
        from mlmon.tasks.checks.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS

        known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
        unknown = [k for k in v if k not in known]
        if unknown:
            raise ValueError(
                f"unknown metric {', '.join(map(repr, unknown))}; known metrics: {', '.join(known)}"
            )
        return v


class EvidentlyConfig(Strict):
    enabled: bool = Field(True, description="add Evidently's presets to the report")
    max_rows: int = Field(20_000, gt=0, description="larger windows are run on a seeded sample")
    seed: int = 0
    workers: int = Field(
        0,
        ge=0,
        description="processes computing Evidently's parts (drift, summary, quality) while mlmon's checks "
        "run, forked from one process that imports Evidently once; 0 = one per CPU (at most 4), "
        "1 = in the flow's process after the checks",
    )


class Schedule(Strict):
    cron: str | None = Field(None, description="cron for the scheduled deployment; default: every window")
    timezone: str = Field("UTC", description="timezone the cron is read in (windows are always UTC)")
    lateness: Duration = Field("15m", description="wait this long after a window closes before running it")
    label_horizon: Duration = Field(
        "7d", description="re-evaluate model quality when labels arrive this late"
    )

    _v = field_validator("lateness", "label_horizon")(_duration)
    _c = field_validator("cron")(lambda v: None if v is None else check_cron(v))
    _tz = field_validator("timezone")(check_timezone)


class AlertsConfig(Strict):
    """Where a failing window is announced (deduplicated per model and window; see ``mlmon.tasks.alerts``)."""

    enabled: bool = Field(True, description="emit the Prefect event mlmon.window.failed (and the webhook)")
    min_status: Literal["fail", "warn"] = Field(
        "fail", description="alert on checks at least this bad: fail (fail and error) or warn"
    )
    webhook_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding a Slack-compatible webhook URL (never the URL itself)",
    )
    webhook_secret: str | None = Field(
        None, description="name of a Prefect Secret block holding the webhook URL (instead of webhook_env)"
    )
    remind_every: str | None = Field(
        "7d",
        description="re-announce an incident still open after this long without news (e.g. 1d, 1w); "
        "null = only when an incident opens, worsens or resolves",
    )

    @field_validator("remind_every")
    @classmethod
    def _remind(cls, v: str | None) -> str | None:
        return None if v is None else _duration(v)

    @model_validator(mode="after")
    def _one_source(self) -> AlertsConfig:
        if self.webhook_env and self.webhook_secret:
            raise ValueError("webhook_env and webhook_secret: set one of them, not both")
        return self


class BusinessField(Strict):
    """A logged field that is not a model input (revenue, a conversion flag, …), for window checks.

    It reaches the window frame under its name, like a feature, but is never drift- or quality-tested."""

    path: str = Field(description="dotted path in the prediction document, e.g. outcome.revenue")
    type: Literal["numerical", "categorical", "boolean"] = Field(
        "numerical", description="numerical (float), categorical (text) or boolean (true/false or 0/1 → 1/0)"
    )


class CheckSpec(Strict):
    """One registered window check configured for a model (see ``mlmon.tasks.checks.registry``).

    Its value fails outside ``[min, max]`` and warns outside ``[warn_min, warn_max]``."""

    function: str | None = Field(
        None, description="registered check name or module:function; default: this check's key"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the function")
    min: float | None = Field(None, description="fail when the value is below this")
    max: float | None = Field(None, description="fail when the value is above this")
    warn_min: float | None = Field(None, description="warn when the value is below this")
    warn_max: float | None = Field(None, description="warn when the value is above this")


def _resolve_checks(checks: dict[str, CheckSpec]) -> dict[str, CheckSpec]:
    """Resolve every check's function (and its params) when the config loads, not in the run."""
    if not checks:
        return checks
    import re

    from mlmon.tasks.checks.registry import get_check

    for name, spec in checks.items():
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            raise ValueError(f"{name!r}: check names are snake_case (stored as-is in Postgres)")
        try:
            reg = get_check(spec.function or name)
        except ConfigError as e:
            raise ValueError(f"{name}.function: {e}") from None
        try:
            reg.bind(spec.params)
        except ValueError as e:
            raise ValueError(f"{name}.params: {e}") from None
    return checks


class OutliersConfig(Strict):
    """Outliers (category ``outliers``): an IsolationForest fitted once on the reference; per window the
    share of rows scored as outliers against the reference's own share (one-sided Fisher exact test
    against the held-out reference rows' count)."""

    enabled: bool = Field(
        False, description="score every window for outliers (fits a forest on the reference)"
    )
    contamination: float = Field(
        0.01, gt=0, lt=0.5, description="share of held-out reference rows scored as outliers (sets the cut)"
    )
    alpha: float = Field(
        0.01, gt=0, lt=1, description="significance level of the one-sided test of the excess"
    )
    min_excess: float = Field(
        0.005,
        ge=0,
        le=1,
        description="fail only when the window's share exceeds the reference's by this much",
    )
    min_rows: int = Field(200, ge=1, description="fewer rows => warn: insufficient data")
    max_fit_rows: int = Field(20_000, ge=100, description="seeded reference sample the forest is fitted on")
    max_score_rows: int = Field(
        20_000,
        ge=100,
        description="a larger window is scored (and its excess tested) on a seeded sample of this many rows: "
        "the test's power is then set by this size, and 20k rows are as many as the held-out reference "
        "count is made on (power at a 1-point excess ≥ 99% for reference shares up to 4%)",
    )
    n_estimators: int = Field(100, ge=10, description="trees in the forest")
    top_k: int = Field(5, ge=0, description="most outlying rows reported with their request id and features")
    seed: int = Field(0, description="seed of the samples and the forest")


class VersionsConfig(Strict):
    """Champion–challenger and shadow models (category ``versions``): per window, every other version
    against the champion on the same requests (shadow) or on its own share of the traffic (split).

    A *shadow* document is a prediction whose answer was not served: recognised by ``served_field``
    (false) and/or by its version being one of ``shadow_versions``. Shadow documents are kept out of
    every other check (drift, quality, health, model quality see the served predictions only) whenever
    either is set, even with ``enabled: false``."""

    enabled: bool = Field(False, description="compare every challenger version with the champion")
    champion: str | None = Field(
        None,
        description="the champion's version name; null = the version that served most of the "
        "window's requests (ties: the first name in sort order)",
    )
    served_field: str | None = Field(
        None,
        description="dotted path of a true/false field saying whether the prediction was served; "
        "false = shadow (a missing value counts as served)",
    )
    shadow_versions: list[str] = Field(
        default_factory=list, description="versions whose predictions are never served (shadow models)"
    )
    min_rows: int = Field(
        200, ge=1, description="fewer labelled rows (pairs for shadow) => warn: insufficient data"
    )
    alpha: float = Field(
        0.01, gt=0, lt=1, description="significance level of the test of the quality difference"
    )
    min_effect: float = Field(
        0.01,
        ge=0,
        description="smallest difference that counts: accuracy (classification) or relative MAE "
        "(regression, share of the champion's MAE)",
    )
    max_challengers: int = Field(5, ge=1, description="most-seen challengers compared per window")

    @field_validator("served_field")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and (not v or v.startswith(".") or v.endswith(".") or ".." in v):
            raise ValueError(f"served_field {v!r}: a dotted path such as served or meta.served")
        return v


class MultivariateDriftConfig(Strict):
    """Multivariate drift (category ``multivariate_drift``): a domain classifier cross-validated on seeded
    samples of the reference and the window; fails when its out-of-fold ROC AUC is significantly above
    0.5 (one-sided Mann–Whitney p < alpha) and at least ``min_auc``."""

    enabled: bool = Field(
        False, description="test every window for a change in the features' joint distribution"
    )
    alpha: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="significance level of the AUC test (default: drift.alpha, the univariate rule's)",
    )
    min_auc: float = Field(
        0.55,
        gt=0.5,
        le=1,
        description="fail only from this out-of-fold AUC on (0.55 = what one normal feature shifted by "
        "0.18σ gives; a flip of a 0.3 correlation gives about 0.56)",
    )
    max_rows: int = Field(
        5_000, ge=100, description="seeded sample of each side (reference, window) the classifier sees"
    )
    min_rows: int = Field(200, ge=20, description="fewer rows on either side => warn: insufficient data")
    folds: int = Field(
        3, ge=2, le=10, description="stratified cross-validation folds (every row scored out of fold)"
    )
    max_iter: int = Field(30, ge=5, description="boosting iterations of each fold's classifier")
    top_k: int = Field(3, ge=0, description="features the classifier relies on most, named in the message")
    seed: int = Field(0, description="seed of the samples, folds and classifier")


class ExplanationsConfig(Strict):
    """Impact of drift (category ``explanations``): each feature's importance to the model's output, from
    a surrogate fitted once to the reference's logged predictions; per window the drifted features ranked
    by impact (importance × effect / threshold) and the prediction's drift attributed to them."""

    enabled: bool = Field(False, description="rank drifted features by impact and attribute prediction drift")
    min_importance: float = Field(
        0.05,
        ge=0,
        le=1,
        description="a drifted feature with at least this share of the importance fails feature_impact",
    )
    max_fit_rows: int = Field(
        20_000, ge=200, description="seeded reference sample the surrogate is fitted on"
    )
    max_rows: int = Field(
        2_000, ge=100, description="seeded sample of reference rows the importances and attributions use"
    )
    n_repeats: int = Field(5, ge=1, description="shuffles per feature in the permutation importance")
    top_k: int = Field(3, ge=1, description="features named in the messages")
    seed: int = Field(0, description="seed of the samples, the surrogate and the shuffles")


class ShardsConfig(Strict):
    """Windows too big for one process: extracted and summarised per time shard on a Dask cluster, the
    mergeable summaries merged, the same decision rules run on the merge (``mlmon.tasks.summary``)."""

    max_in_memory_rows: int = Field(
        5_000_000, gt=0, description="windows estimated above this many rows take the sharded path"
    )
    shard: Duration = Field("1h", description="length of one time shard of a big window")
    fine_bins: int = Field(
        2048, ge=16, le=65_536, description="reference-quantile bins per numerical column in a shard summary"
    )
    sample_rows: int = Field(
        50_000, ge=0, description="seeded sample drawn across shards for analyses that need rows (Evidently)"
    )
    seed: int = Field(0, description="seed of the cross-shard sample")
    dask_address_env: str = Field(
        "MLMON_DASK_ADDRESS", description="env var holding an existing Dask scheduler's address; unset: local"
    )
    workers: int = Field(2, ge=1, description="workers of the local Dask cluster")
    worker_memory: str = Field("2GB", description="memory limit of each local Dask worker")

    _s = field_validator("shard")(_duration)


class FairnessConfig(Strict):
    """Fairness (category ``fairness``): per window and group of each sensitive attribute, selection rate
    (and on labelled rows TPR, FPR, accuracy; regression: mean prediction and MAE) and the gaps between
    groups, each failing only when it exceeds its limit significantly (see ``mlmon.tasks.checks.fairness``)."""

    enabled: bool = Field(False, description="compute the fairness gaps of every window")
    attributes: list[str] = Field(
        default_factory=list,
        description="sensitive attributes by their configured name: a business field (any logged field, "
        "mapped by dotted path) or a categorical feature",
    )
    metrics: dict[str, float | None] | None = Field(
        None,
        description="gap metrics to check with their limits (null limit = the metric's default); default: "
        "demographic_parity_difference 0.1, demographic_parity_ratio 0.8, equal_opportunity_difference 0.1, "
        "equalized_odds_difference 0.1 (regression: name mean_prediction_difference and/or "
        "mean_absolute_error_difference with limits in the target's unit)",
    )
    min_group_rows: int = Field(
        100, ge=1, description="a group with fewer rows is not compared (warn: insufficient data)"
    )
    min_group_labelled: int = Field(
        30, ge=1, description="fewer labelled rows behind a group's TPR / FPR / error => not compared"
    )
    alpha: float = Field(
        0.01, gt=0, lt=1, description="one-sided significance level of 'gap beyond its limit' per check"
    )
    max_groups: int = Field(20, ge=2, description="largest groups of an attribute compared; the rest ignored")


class ClassBalanceConfig(Strict):
    """Class balance (category ``drift``, on the prediction): warns when the predicted-class shares move
    beyond their noise band against the reference or a class falls under its minimum share."""

    enabled: bool = Field(False, description="check the predicted-class balance of every window")
    alpha: float = Field(0.01, gt=0, lt=1, description="significance level across the classes (Bonferroni)")
    min_shift: float = Field(
        0.05,
        ge=0,
        le=1,
        description="warn only when a class's share moves at least this much (absolute) from the reference",
    )
    min_share: dict[str, float] = Field(
        default_factory=dict,
        description="minimum predicted share per class, e.g. {churn: 0.05}: warn when significantly below",
    )
    min_rows: int = Field(200, ge=1, description="fewer predictions => warn: insufficient data")


class EstimatedPerformanceConfig(Strict):
    """Estimated performance (category ``estimated_performance``): CBPE, a classifier's accuracy,
    precision, recall, F1 and ROC AUC estimated per window from its calibrated probabilities, before the
    labels arrive (tasks/checks/estimated.py)."""

    enabled: bool = Field(
        False,
        description="estimate every window's quality from its probabilities (calibrates on the reference)",
    )
    metrics: list[Literal["accuracy", "precision", "recall", "f1", "roc_auc"]] = Field(
        default_factory=lambda: ["accuracy", "precision", "recall", "f1", "roc_auc"],
        min_length=1,
        description="metrics estimated (binary: of the positive class; multiclass: one-vs-rest macro)",
    )
    calibration: Literal["auto", "isotonic", "none"] = Field(
        "auto",
        description="auto: isotonic regression when the reference shows miscalibration (held-out ECE)",
    )
    band_sigmas: float = Field(
        3.0, gt=0, description="confidence band: estimate ± this many sampling errors of the metric"
    )
    alert_sigmas: float = Field(
        3.0, gt=0, description="fail when the estimate is this many σ of its noise below the reference"
    )
    min_drop: float = Field(
        0.02, ge=0, le=1, description="... and at least this much below it (absolute, e.g. 0.02 = 2 points)"
    )
    min_rows: int = Field(200, ge=1, description="fewer usable rows => warn: insufficient data")
    resamples: int = Field(
        200, ge=20, description="bootstrap chunks of the reference the sampling errors use"
    )
    resample_rows: int = Field(1_000, ge=50, description="rows per bootstrap chunk (errors scale as 1/√n)")
    seed: int = Field(0, description="seed of the bootstrap and the calibration cross-fit")


class ModelConfig(Strict):
    """Everything mlmon needs to know about one model."""

    name: str = Field(description="model name (set from the key under `models`)")
    source: Source = Field(default_factory=Source)
    fields: FieldMap = Field(default_factory=FieldMap)
    features: dict[str, FeatureSpec] = Field(description="model inputs by name")
    task: TaskType = Field(TaskType.NONE, description="regression, binary, multiclass or none")
    classes: list[str] | None = Field(None, description="class labels (order of probability lists)")
    positive_class: str | None = Field(None, description="positive class for binary metrics")
    reference: Reference
    window: Duration = Field("1d", description="window length")
    window_origin: str = Field(
        "epoch",
        description="what windows are aligned to: 'epoch' (1970-01-01T00:00Z, a Thursday), a weekday "
        "(00:00 of that day in schedule.timezone, e.g. monday) or an ISO instant",
    )
    schedule: Schedule = Field(default_factory=Schedule)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    segments: list[str] = Field(
        default_factory=list, description="fields to split results by, e.g. model_version"
    )
    max_segment_values: int = Field(20, gt=0, description="largest segments kept; the rest are not reported")
    evidently: EvidentlyConfig = Field(default_factory=EvidentlyConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    base_dir: str = Field(".", description="folder relative paths resolve against (set on load)")
    business_fields: dict[str, BusinessField] = Field(
        default_factory=dict, description="logged non-feature fields the window checks read, by name"
    )
    checks: dict[str, CheckSpec] = Field(
        default_factory=dict, description="registered window checks (KPIs, custom metrics) by stored name"
    )
    outliers: OutliersConfig = Field(
        default_factory=lambda: OutliersConfig(), description="outlier detection against the reference"
    )
    versions: VersionsConfig = Field(
        default_factory=lambda: VersionsConfig(), description="champion–challenger and shadow models"
    )
    multivariate_drift: MultivariateDriftConfig = Field(
        default_factory=lambda: MultivariateDriftConfig(),
        description="domain-classifier test of the features' joint distribution",
    )
    explanations: ExplanationsConfig = Field(
        default_factory=lambda: ExplanationsConfig(),
        description="feature importance from the logged predictions; drift ranked by impact",
    )
    shards: ShardsConfig = Field(
        default_factory=lambda: ShardsConfig(), description="the sharded path for windows past one process"
    )
    fairness: FairnessConfig = Field(
        default_factory=lambda: FairnessConfig(), description="gaps between groups of sensitive attributes"
    )
    class_balance: ClassBalanceConfig = Field(
        default_factory=lambda: ClassBalanceConfig(),
        description="predicted-class balance against the reference",
    )
    estimated_performance: EstimatedPerformanceConfig = Field(
        default_factory=lambda: EstimatedPerformanceConfig(),
        description="performance estimated from probabilities before the labels arrive (CBPE)",
    )

    _w = field_validator("window")(_duration)
    _c = field_validator("checks")(_resolve_checks)

    @model_validator(mode="after")
    def _reference_families(self) -> ModelConfig:
        from mlmon.tasks.rolling import rolling_capable

        allowed = rolling_capable()
        unknown = sorted(set(self.reference.families) - allowed)
        if unknown:
            raise ValueError(
                f"reference.families: {unknown} cannot choose a reference; use any of {sorted(allowed)}"
            )
        return self

    @model_validator(mode="after")
    def _business_names(self) -> ModelConfig:
        for name in self.business_fields:
            if name in self.features or name.startswith("__"):
                raise ValueError(
                    f"business_fields: {name!r} clashes with a feature or a reserved name; rename it"
                )
        return self

    @model_validator(mode="after")
    def _versions_fields(self) -> ModelConfig:
        v = self.versions
        if (v.enabled or v.shadow_versions) and not self.fields.model_version:
            raise ValueError("versions: needs fields.model_version (the logged version of each prediction)")
        if v.enabled and self.task is TaskType.NONE:
            raise ValueError("versions: needs a task (regression, binary or multiclass) to compare versions")
        if v.champion is not None and v.champion in v.shadow_versions:
            raise ValueError(f"versions: the champion {v.champion!r} is also listed in shadow_versions")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if not self.features:
            raise ValueError("features: at least one feature is needed")
        for name, spec in self.features.items():
            if "." in name and spec.path is None:
                raise ValueError(
                    f"features: {name!r} contains '.', which would be read as the nested path "
                    f"features.{name}; set its `path` to where the value is (e.g. path: features.{name} "
                    "if it really is nested), or name the feature without '.'"
                )
        if self.task is TaskType.BINARY and self.classes and len(self.classes) != 2:
            raise ValueError(f"classes: a binary model has 2 classes, got {self.classes}")
        if self.positive_class is not None and self.classes and self.positive_class not in self.classes:
            raise ValueError(f"positive_class {self.positive_class!r} is not one of classes {self.classes}")
        window_origin_instant(self.window_origin, self.schedule.timezone)  # a ValueError names the key
        if self.task is not TaskType.NONE and self.performance.thresholds:
            from mlmon.tasks.checks.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS

            fit = REGRESSION_METRICS if self.task is TaskType.REGRESSION else CLASSIFICATION_METRICS
            wrong = [k for k in self.performance.thresholds if k not in fit]
            if wrong:
                raise ValueError(
                    f"performance.thresholds: {', '.join(map(repr, wrong))} is not a {self.task.value} "
                    f"metric; use one of {', '.join(fit)}"
                )
        known = {"model_version", *self.features}
        for seg in self.segments:
            if seg not in known:
                raise ValueError(
                    f"segments: {seg!r} is neither model_version nor a feature ({sorted(known)})"
                )
        return self

    @model_validator(mode="after")
    def _fairness_settings(self) -> ModelConfig:
        if self.fairness.enabled:
            from mlmon.tasks.checks.fairness import validate_fairness

            validate_fairness(self)
        return self

    @model_validator(mode="after")
    def _class_balance_settings(self) -> ModelConfig:
        bc = self.class_balance
        if bc.enabled and self.task not in (TaskType.BINARY, TaskType.MULTICLASS):
            raise ValueError("class_balance: needs a classifier (task binary or multiclass)")
        wrong = [k for k in bc.min_share if self.classes and k not in self.classes]
        if wrong:
            raise ValueError(f"class_balance.min_share: {wrong} not in classes {self.classes}")
        bad = [k for k, v in bc.min_share.items() if not 0 <= v <= 1]
        if bad:
            raise ValueError(f"class_balance.min_share: shares of {bad} must lie in [0, 1]")
        return self

    @model_validator(mode="after")
    def _estimated_needs_classifier(self) -> ModelConfig:
        if self.estimated_performance.enabled and self.task not in (TaskType.BINARY, TaskType.MULTICLASS):
            raise ValueError(
                f"estimated_performance: needs task binary or multiclass (with probabilities logged), "
                f"got {self.task.value}; set enabled: false"
            )
        return self

    @property
    def window_length(self) -> timedelta:
        return parse_duration(self.window)

    @property
    def window_anchor(self) -> datetime:
        """The UTC instant windows are aligned to (see :func:`window_origin_instant`)."""
        return window_origin_instant(self.window_origin, self.schedule.timezone)

    def feature_path(self, name: str) -> str:
        spec = self.features[name]
        return spec.path or f"features.{name}"

    @property
    def reference_path(self) -> Path:
        p = Path(self.reference.path)
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    @property
    def numerical(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type is Kind.NUMERICAL]

    @property
    def categorical(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type is Kind.CATEGORICAL]


class RetentionConfig(Strict):
    """A scheduled ``mlmon retention`` (the ``retention/mlmon`` deployment)."""

    keep: Duration = Field(description="delete results and reports of windows that ended longer ago")
    cron: str = Field("30 3 * * *", description="when the retention deployment runs")
    timezone: str = Field("UTC", description="timezone the cron is read in")

    _v = field_validator("keep")(_duration)
    _c = field_validator("cron")(check_cron)
    _tz = field_validator("timezone")(check_timezone)


class Config(Strict):
    version: Literal[1] = Field(1, description="config format version")
    models: dict[str, ModelConfig]
    retention: RetentionConfig | None = Field(
        None, description="schedule retention (default: none; `mlmon retention` by hand)"
    )

    def model(self, name: str) -> ModelConfig:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(
                f"no model {name!r} in the config; configured models: {sorted(self.models)}"
            ) from None


def _describe(err: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        loc = list(e["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "models":
            where = f"model {loc[1]!r}, "
            loc = loc[2:]
        key = ".".join(str(x) for x in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(err.title, e["loc"])
            msg = f"unknown key{'; allowed: ' + ', '.join(allowed) if allowed else ''}"
        lines.append(f"  {where}key {key}: {msg}")
    return "\n".join(lines)


def _allowed_keys(_title: str, loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where an unknown key was found, by walking the models along ``loc``."""
    model: Any = Config
    in_mapping = False  # the previous step was a dict field: this part is a user-chosen key
    for part in loc[:-1]:
        if in_mapping or isinstance(part, int):
            in_mapping = False
            continue
        fields = getattr(model, "model_fields", None) or {}
        if part not in fields:
            return []
        ann = fields[part].annotation
        in_mapping = getattr(ann, "__origin__", None) is dict
        model = _model_in(ann)
    fields = getattr(model, "model_fields", None)
    return sorted(k for k in (fields or {}) if k not in ("name", "base_dir"))


def _model_in(ann: Any) -> Any:
    """The pydantic model inside an annotation such as ``X``, ``X | None`` or ``dict[str, X]``."""
    for a in (ann, *(getattr(ann, "__args__", ()) or ())):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def model_from_dict(body: dict[str, Any], name: str = "model", source: str = "<config dict>") -> ModelConfig:
    """One model's settings given as a dict (``mlmon.compare(..., config={...})``), validated exactly as
    a file's; :class:`ConfigError` names ``source``, the model and the key."""
    if "name" in body or "base_dir" in body:
        raise ConfigError(
            f"{source}: model {name!r}: keys 'name' and 'base_dir' are set by mlmon, remove them"
        )
    body = {"reference": {"path": "<in memory>"}, **body, "name": name, "base_dir": "."}
    try:
        return Config.model_validate({"models": {name: body}}).models[name]
    except ValidationError as e:
        raise ConfigError(_describe(e, Path(source))) from None


def read_yaml(path: Path, missing: str) -> Any:
    """The YAML document in ``path``; :class:`ConfigError` saying ``missing`` when there is no such file,
    or where the YAML is broken."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(missing) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def load_config(path: str | Path) -> Config:
    """Load and validate a models config; raise :class:`ConfigError` naming the file, model and key."""
    path = Path(path)
    raw = read_yaml(path, f"config file {path} not found; pass --config or set MLMON_CONFIG")
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict) or not raw["models"]:
        raise ConfigError(
            f"{path}: expected a mapping with a non-empty `models:` mapping of model name -> settings"
        )
    base = str(path.resolve().parent)
    models = {}
    for name, body in raw["models"].items():
        if not isinstance(body, dict):
            raise ConfigError(
                f"{path}: model {name!r}: expected a mapping of settings, got {type(body).__name__}"
            )
        if "name" in body or "base_dir" in body:
            raise ConfigError(
                f"{path}: model {name!r}: keys 'name' and 'base_dir' are set by mlmon, remove them"
            )
        models[name] = {**body, "name": str(name), "base_dir": base}
    try:
        return Config.model_validate({**raw, "models": models})
    except ValidationError as e:
        raise ConfigError(_describe(e, path)) from None
