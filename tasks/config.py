"""The models config: one YAML file describing every monitored model.

Validated on load with pydantic models that reject unknown keys; an error names the file, the model and
the key, and says what is allowed. Connection URIs never live here: they come from the environment
(``MLMON_MONGO_URI``, ``MLMON_POSTGRES_URI``; see ``mlmon.settings``).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlmon.tasks.errors import ConfigError
from mlmon.tasks.window import parse_duration


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


class Reference(Strict):
    path: str = Field(description="Parquet file, relative to the config file's folder")


class DriftConfig(Strict):
    """One decision rule: significant after correction AND at least a minimum effect size."""

    alpha: float = Field(0.01, gt=0, lt=1, description="family-wise significance level per window")
    correction: Literal["bonferroni", "holm", "bh", "none"] = Field(
        "bonferroni", description="multiple-testing correction across the columns of a window"
    )
    numerical_test: str = Field("ks", description="significance test for numerical columns")
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


class EvidentlyConfig(Strict):
    enabled: bool = Field(True, description="add Evidently's presets to the report")
    max_rows: int = Field(20_000, gt=0, description="larger windows are run on a seeded sample")
    seed: int = 0


class Schedule(Strict):
    cron: str | None = Field(None, description="cron for the scheduled deployment; default: every window")
    timezone: str = Field("UTC", description="timezone the cron is read in (windows are always UTC)")
    lateness: Duration = Field("15m", description="wait this long after a window closes before running it")
    label_horizon: Duration = Field(
        "7d", description="re-evaluate model quality when labels arrive this late"
    )

    _v = field_validator("lateness", "label_horizon")(_duration)


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

    _w = field_validator("window")(_duration)
    _c = field_validator("checks")(_resolve_checks)

    @model_validator(mode="after")
    def _business_names(self) -> ModelConfig:
        for name in self.business_fields:
            if name in self.features or name.startswith("__"):
                raise ValueError(
                    f"business_fields: {name!r} clashes with a feature or a reserved name; rename it"
                )
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
        known = {"model_version", *self.features}
        for seg in self.segments:
            if seg not in known:
                raise ValueError(
                    f"segments: {seg!r} is neither model_version nor a feature ({sorted(known)})"
                )
        return self

    @property
    def window_length(self) -> timedelta:
        return parse_duration(self.window)

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
        msg = e["msg"]
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


def load_config(path: str | Path) -> Config:
    """Load and validate a models config; raise :class:`ConfigError` naming the file, model and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; pass --config or set MLMON_CONFIG") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
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
