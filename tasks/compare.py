"""Compare a reference with a current dataset in one call: the pipeline's engine, with no servers.

``mlmon.compare(reference, current)`` and ``mlmon.fit(reference).compare(current)`` run exactly what a
monitored window runs — the rows go through the log contract of :mod:`mlmon.tasks.extract`
(:func:`~mlmon.tasks.extract.decode_documents`: typing, quarantine with reasons), the reference is fitted
with :func:`~mlmon.tasks.reference.fit_profile`, and :func:`~mlmon.tasks.evaluate.evaluate` gives the
:class:`~mlmon.tasks.checks.outcome.WindowResult` that the store and the report take — only MongoDB,
PostgreSQL and Prefect are left out. It lives in ``tasks/`` because it is engine code (plain functions
over the engine's own); ``import mlmon`` exposes it lazily.

Frames are flat: one column per feature, plus optional role columns found by name (``prediction``,
``target``/``label``, ``score``/``probability``, ``timestamp``, ``latency_ms``, ``status``,
``model_version``; the reference Parquet's own ``__prediction`` … names work too) or given with
``columns={"prediction": "y_hat"}``. Without a config, feature kinds, the task, the classes and the role
columns are inferred from the reference, and what was inferred is on the result (``.inferred``).

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"age": rng.normal(40, 10, 2000), "plan": rng.choice(["a", "b"], 2000)})
>>> cur = ref.assign(age=ref["age"] + 5.0)
>>> r = compare(ref, cur)
>>> r.status, r.inferred["features"]
('fail', {'age': 'numerical', 'plan': 'categorical'})
>>> r.drift.query("drifted")["feature"].tolist()
['age']
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmon.tasks import contract as c
from mlmon.tasks.checks.outcome import ALL, Status, WindowResult
from mlmon.tasks.config import FieldMap, Kind, ModelConfig, TaskType, load_config, model_from_dict
from mlmon.tasks.errors import ConfigError, InputDataError
from mlmon.tasks.window import Window

FrameLike = pd.DataFrame | str | Path
ConfigLike = ModelConfig | Mapping[str, Any] | str | Path | None

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "prediction": (c.PREDICTION, "prediction", "pred", "y_pred", "predicted"),
    "target": (c.TARGET, "target", "label", "y_true", "actual", "ground_truth"),
    "score": (c.SCORE, "score", "probability", "proba", "prob"),
    "timestamp": (c.TIMESTAMP, "timestamp", "ts", "time", "event_time"),
    "latency_ms": (c.LATENCY, "latency_ms", "latency"),
    "status": (c.STATUS, "status"),
    "model_version": (c.VERSION, "model_version"),
    "request_id": (c.REQUEST_ID, "request_id"),
}
"""Column names recognised for each role, first match wins (``columns=`` overrides)."""

IGNORED = (c.ID, c.IS_ERROR)  # derived by extraction; recomputed, never read
PROBABILITIES = "__probabilities"  # document key of a multiclass frame's per-class columns
MAX_CLASSES = 20  # a prediction column with more distinct values (or non-integer numbers) is regression
PROFILE_FILE_VERSION = 1


# --------------------------------------------------------------------------- reading


def read_frame(source: FrameLike, what: str = "data") -> pd.DataFrame:
    """A DataFrame as is, or a Parquet / CSV / JSON-lines file; a clear error naming the file otherwise."""
    if isinstance(source, pd.DataFrame):
        return source
    if not isinstance(source, (str, Path)):
        raise InputDataError(f"{what}: expected a DataFrame or a file path, got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise InputDataError(f"{what} file {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pd.read_json(path, lines=suffix != ".json")
    except (OSError, ValueError) as e:
        raise InputDataError(f"{what} file {path}: cannot read it: {e}") from e
    raise InputDataError(f"{what} file {path}: unknown format {suffix!r}; use .parquet, .csv or .jsonl")


def frame_hash(frame: pd.DataFrame) -> str:
    """First 16 hex digits of a content hash of the frame (which reference a result used)."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- roles and inference


def find_roles(
    frame: pd.DataFrame, columns: Mapping[str, str] | None = None, exclude: Collection[str] = ()
) -> dict[str, str]:
    """Which column holds each role (``{"prediction": "pred", …}``), by name or as given; columns in
    ``exclude`` (the config's features, say one named ``score``) are never taken by name."""
    given = dict(columns or {})
    unknown = sorted(set(given) - set(ROLE_NAMES))
    if unknown:
        raise ConfigError(f"columns: unknown role(s) {unknown}; roles: {', '.join(ROLE_NAMES)}")
    roles: dict[str, str] = {}
    for role, names in ROLE_NAMES.items():
        if role in given:
            if given[role] not in frame.columns:
                raise InputDataError(f"columns: {role} column {given[role]!r} is not in the data")
            roles[role] = given[role]
            continue
        hit = next(
            (n for n in names if n in frame.columns and n not in roles.values() and n not in exclude), None
        )
        if hit is not None:
            roles[role] = hit
    return roles


def _proba_columns(frame: pd.DataFrame) -> list[str]:
    return [col for col in frame.columns if str(col).startswith(c.PROBA_PREFIX)]


def infer_config(
    reference: pd.DataFrame, roles: Mapping[str, str], name: str = "model"
) -> tuple[ModelConfig, dict[str, Any]]:
    """A model config for a flat reference frame: feature kinds by dtype, task and classes from the
    prediction column, positive class from the score; returns it with a record of what was inferred."""
    used = set(roles.values()) | set(IGNORED) | set(_proba_columns(reference))
    features: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for col in reference.columns:
        if col in used:
            continue
        s = reference[col]
        if not isinstance(col, str) or col.startswith("__"):
            skipped[str(col)] = "reserved name"
        elif pd.api.types.is_bool_dtype(s):
            features[col] = {"type": Kind.CATEGORICAL.value}
        elif pd.api.types.is_numeric_dtype(s):
            features[col] = {"type": Kind.NUMERICAL.value}
        elif pd.api.types.is_datetime64_any_dtype(s):
            skipped[col] = "date/time column (not a feature; name it `timestamp` to use it as the row time)"
        else:
            features[col] = {"type": Kind.CATEGORICAL.value}
    if not features:
        raise InputDataError(f"reference: no feature columns found among {list(map(str, reference.columns))}")
    body: dict[str, Any] = {"name": name, "features": features, "reference": {"path": "<in memory>"}}
    task, classes, positive = TaskType.NONE, None, None
    if "prediction" in roles:
        pred = reference[roles["prediction"]].dropna()
        labels = pred
        if "target" in roles:
            labels = pd.concat([pred, reference[roles["target"]].dropna()])
        numeric = pd.api.types.is_numeric_dtype(pred) and not pd.api.types.is_bool_dtype(pred)
        distinct = pd.unique(labels)
        integral = numeric and bool(np.all(np.mod(pred.to_numpy(dtype=float), 1) == 0))
        if numeric and (not integral or len(distinct) > MAX_CLASSES):
            task = TaskType.REGRESSION
        else:
            classes = sorted({_label(v) for v in distinct})
            task = TaskType.BINARY if len(classes) <= 2 else TaskType.MULTICLASS
            if task is TaskType.BINARY and len(classes) == 2 and "score" in roles:
                positive = _positive_by_score(reference[roles["prediction"]], reference[roles["score"]])
    body["task"] = task.value
    if classes and task is TaskType.BINARY and len(classes) == 2:
        body["classes"] = classes
        body["positive_class"] = positive or classes[1]
    elif classes and task is TaskType.MULTICLASS:
        body["classes"] = classes
    cfg = ModelConfig.model_validate(body)
    inferred = {
        "features": {k: v["type"] for k, v in features.items()},
        "columns": dict(roles),
        "task": task.value,
        "classes": body.get("classes"),
        "positive_class": body.get("positive_class"),
        "skipped": skipped,
    }
    return cfg, inferred


def _label(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _positive_by_score(pred: pd.Series, score: pd.Series) -> str | None:
    """The class whose predicted rows have the higher mean score: the score is p(that class)."""
    keep = pred.notna() & pd.to_numeric(score, errors="coerce").notna()
    if not keep.any():
        return None
    means = pd.to_numeric(score[keep]).groupby(pred[keep].map(_label)).mean()
    return str(means.idxmax()) if len(means) == 2 else None


def resolve_config(config: ConfigLike, model: str | None = None) -> ModelConfig | None:
    """A :class:`ModelConfig` from an object, a dict (one model's settings) or a models YAML file."""
    if config is None or isinstance(config, ModelConfig):
        return config
    if isinstance(config, Mapping):
        return model_from_dict(dict(config), name=model or "model")
    loaded = load_config(config)
    if model is None:
        if len(loaded.models) != 1:
            raise ConfigError(
                f"{config}: {len(loaded.models)} models configured; pick one with model= / --model "
                f"({', '.join(sorted(loaded.models))})"
            )
        model = next(iter(loaded.models))
    return loaded.model(model)


# --------------------------------------------------------------------------- frame -> the engine's batch


def _frame_config(cfg: ModelConfig, roles: Mapping[str, str], has_probabilities: bool) -> ModelConfig:
    """The model's config with every path pointing at a frame column (the frame is one flat document
    per row); labels are already in the frame, nothing is joined."""
    score = roles.get("score")
    f = FieldMap(
        timestamp=_key(roles.get("timestamp", c.TIMESTAMP)),
        timestamp_type="date",
        request_id=_key(roles["request_id"]) if "request_id" in roles else None,
        model_version=_key(roles["model_version"]) if "model_version" in roles else None,
        prediction=_key(roles["prediction"]) if "prediction" in roles else None,
        probabilities=PROBABILITIES if has_probabilities else (_key(score) if score else None),
        target=_key(roles["target"]) if "target" in roles else None,
        latency_ms=_key(roles["latency_ms"]) if "latency_ms" in roles else None,
        status=_key(roles["status"]) if "status" in roles else None,
    )
    features = {n: s.model_copy(update={"path": _key(n)}) for n, s in cfg.features.items()}
    business = {n: b.model_copy(update={"path": _key(n)}) for n, b in cfg.business_fields.items()}
    source = cfg.source.model_copy(update={"labels": None})
    update: dict[str, Any] = {
        "fields": f,
        "features": features,
        "business_fields": business,
        "source": source,
    }
    if cfg.task is TaskType.BINARY and score and not cfg.classes:
        raise ConfigError(
            f"model {cfg.name!r}: a score column ({score!r}) needs `classes` (and `positive_class`) in the config"
        )
    return cfg.model_copy(update=update)


def _key(column: str) -> str:
    """The document key of a frame column: a dot would read as a nested path."""
    return str(column).replace(".", "\u2024")


def to_batch(
    frame: pd.DataFrame,
    cfg: ModelConfig,
    roles: Mapping[str, str],
    *,
    timestamp: datetime | None = None,
    current: bool = False,
) -> tuple[Any, ModelConfig]:
    """Run a flat frame through the log contract (:func:`~mlmon.tasks.extract.decode_documents`): the
    same typing and quarantine as a window read from MongoDB. ``timestamp`` replaces the row times
    (a reference's are not used). A ``current`` frame may lack configured columns (all missing, like an
    unlogged field); a reference may not."""
    from mlmon.tasks.extract import decode_documents

    missing = [n for n in [*cfg.features, *cfg.business_fields] if n not in frame.columns]
    if missing and current:
        # as a field absent from every logged document: all missing, and the missing-share check says so
        frame = frame.assign(
            **{n: pd.Series([None] * len(frame), index=frame.index, dtype=object) for n in missing}
        )
    elif missing:
        raise InputDataError(
            f"model {cfg.name!r}: the data lacks configured columns {missing}; it has {list(map(str, frame.columns))}"
        )
    probas = _proba_columns(frame)
    status: np.ndarray | None = None
    if "status" not in roles and c.IS_ERROR in frame.columns:
        # the pipeline's reference keeps only the error flag: a failed request has no prediction, and
        # without its status it would be quarantined instead of counted as an error
        ok = cfg.service.ok_statuses[0] if cfg.service.ok_statuses else "ok"
        flags = frame[c.IS_ERROR].to_numpy(dtype=bool, na_value=False)
        status = np.array(["__error__" if f else ok for f in flags], dtype=object)
        roles = {**roles, "status": c.STATUS}
    synthetic_time = timestamp is not None or "timestamp" not in roles
    given = {k: v for k, v in roles.items() if not (synthetic_time and k == "timestamp")}
    fcfg = _frame_config(cfg, given, bool(probas) and cfg.task is TaskType.MULTICLASS)
    keep = [col for col in frame.columns if col not in IGNORED and col not in probas]
    if synthetic_time:
        keep = [col for col in keep if col != roles.get("timestamp")]
    keys = [_key(col) for col in keep]
    arrays = [_objects(frame[col]) for col in keep]
    if synthetic_time:
        keys.append(_key(c.TIMESTAMP))
        arrays.append(np.full(len(frame), timestamp or datetime(1970, 1, 1, tzinfo=UTC), dtype=object))
    if status is not None:
        keys.append(_key(c.STATUS))
        arrays.append(status)
    keys.append("_id")
    arrays.append(np.asarray([str(i) for i in frame.index], dtype=object))
    docs = [dict(zip(keys, row, strict=True)) for row in zip(*arrays, strict=True)]
    if probas and cfg.task is TaskType.MULTICLASS:
        mat = frame[probas].to_numpy(dtype=np.float64, na_value=np.nan)
        names = [p[len(c.PROBA_PREFIX) :] for p in probas]
        for doc, row in zip(docs, mat, strict=True):
            doc[PROBABILITIES] = {k: float(v) for k, v in zip(names, row, strict=True) if not math.isnan(v)}
    batch = decode_documents(docs, fcfg)
    mapped = {*cfg.features, *cfg.business_fields, *roles.values(), *IGNORED, *probas}
    batch.unexpected_fields = {
        str(col): int(frame[col].notna().sum())
        for col in frame.columns
        if col not in mapped and not str(col).startswith("__")
    }
    return batch, fcfg


def _objects(s: pd.Series) -> np.ndarray:
    """Python scalars with None for every kind of missing value (NaN, NaT, pd.NA), as a document has."""
    return (
        s.to_numpy(dtype=object, na_value=None)
        if s.hasnans or s.dtype == object
        else s.to_numpy(dtype=object)
    )


# --------------------------------------------------------------------------- fit and compare


@dataclass(frozen=True)
class Fitted:
    """A reference fitted once (profile, typed frame, config): compare any number of datasets with it."""

    config: ModelConfig  # paths point at frame columns
    profile: Any  # mlmon.tasks.profile.Profile
    frame: pd.DataFrame  # the reference through the log contract (segments and custom checks read it)
    roles: dict[str, str]
    inferred: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def compare(self, current: FrameLike, *, columns: Mapping[str, str] | None = None) -> Comparison:
        """Every check of the pipeline on ``current`` against this reference."""
        from mlmon.tasks.evaluate import evaluate

        cur = read_frame(current, "current")
        known = {k: v for k, v in self.roles.items() if v in cur.columns}
        roles = find_roles(cur, {**known, **(columns or {})}, self._columns)
        batch, _ = to_batch(cur, self.config, roles, current=True)
        missing = [n for n in self.config.features if n not in cur.columns]
        window = _window_of(batch.frame)
        notes = list(self.notes)
        if batch.n_quarantined:
            notes.append(
                f"{batch.n_quarantined:,} rows of the current data broke the log contract (quarantined)."
            )
        if "timestamp" not in roles:
            notes.append("The current data has no timestamp column: throughput is computed over one day.")
        if missing:
            notes.append(
                f"The current data has no column {', '.join(missing)}: all its values count as missing."
            )
        result = evaluate(self.config, self.profile, batch, window, notes=tuple(notes), reference=self.frame)
        return Comparison(result, self.config, {**self.inferred, "current_columns": roles})

    @property
    def _columns(self) -> set[str]:
        return {*self.config.features, *self.config.business_fields}

    def save(self, path: str | Path) -> Path:
        """Write the fitted reference to one file (a pickle: load only files you wrote)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": PROFILE_FILE_VERSION, "config": self.config.model_dump(mode="json"),
                "profile": self.profile, "frame": self.frame, "roles": self.roles,
                "inferred": self.inferred, "notes": self.notes}  # fmt: skip
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Fitted:
        """Read a file written by :meth:`save` (pickle executes code: only load files you wrote)."""
        try:
            body = pickle.loads(Path(path).read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            raise InputDataError(f"{path}: not a fitted mlmon reference ({e})") from e
        if not isinstance(body, dict) or body.get("version") != PROFILE_FILE_VERSION:
            raise InputDataError(f"{path}: written by another mlmon version; fit the reference again")
        return cls(ModelConfig.model_validate(body["config"]), body["profile"], body["frame"],
                   body["roles"], body["inferred"], tuple(body["notes"]))  # fmt: skip


def fit(
    reference: FrameLike,
    config: ConfigLike = None,
    *,
    model: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> Fitted:
    """Fit the reference once: its profile (bins, categories, ranges, its own model quality)."""
    from mlmon.tasks.checks.families import fit_families
    from mlmon.tasks.checks.performance import reference_performance
    from mlmon.tasks.evaluate import profile_kinds
    from mlmon.tasks.reference import content_hash, fit_profile

    ref = read_frame(reference, "reference")
    cfg = resolve_config(config, model)
    if cfg is not None:  # the config's reference.columns name the reference's role columns
        named = {k: v for k, v in cfg.reference.columns.model_dump().items() if v and v in ref.columns}
        columns = {**named, **(columns or {})}
    roles = find_roles(ref, columns, {*cfg.features, *cfg.business_fields} if cfg else ())
    inferred: dict[str, Any]
    if cfg is None:
        cfg, inferred = infer_config(ref, roles)
    else:
        inferred = {"columns": dict(roles)}
    batch, fcfg = to_batch(ref, cfg, roles, timestamp=datetime(1970, 1, 1, tzinfo=UTC))
    frame = batch.frame
    if frame.empty:
        raise InputDataError(
            f"reference: no valid rows ({batch.n_quarantined:,} broke the log contract, e.g. "
            f"{batch.quarantine[0].detail if batch.quarantine else 'none'})"
        )
    ref_hash = content_hash(reference) if isinstance(reference, (str, Path)) else frame_hash(ref)
    profile = fit_profile(frame, profile_kinds(fcfg), ref_hash)
    profile = replace(profile, performance=reference_performance(frame, fcfg))
    profile = fit_families(profile, frame, fcfg)
    notes = ["Compared in process (mlmon.compare): Evidently's presets are not run."]
    if batch.n_quarantined:
        notes.append(f"{batch.n_quarantined:,} reference rows broke the log contract and were left out.")
    return Fitted(fcfg, profile, frame, dict(roles), inferred, tuple(notes))


def compare(
    reference: FrameLike,
    current: FrameLike,
    config: ConfigLike = None,
    *,
    model: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> Comparison:
    """Every check of the pipeline on ``current`` against ``reference`` (DataFrames or file paths).

    ``config`` is one model's settings (a dict, a :class:`ModelConfig`, or a models YAML file with
    ``model`` naming the model), or None to infer kinds, task and role columns from the reference."""
    return fit(reference, config, model=model, columns=columns).compare(current, columns=columns)


def _window_of(frame: pd.DataFrame) -> Window:
    """The window the current rows span (to the second), or one day when they carry no time."""
    ts = frame[c.TIMESTAMP] if c.TIMESTAMP in frame and len(frame) else None
    if ts is None or ts.min() <= pd.Timestamp(0, tz="UTC"):
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(start, start + timedelta(days=1))
    start = ts.min().to_pydatetime().replace(microsecond=0)
    return Window(start, ts.max().to_pydatetime().replace(microsecond=0) + timedelta(seconds=1))


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Comparison:
    """The result of a comparison: the pipeline's :class:`WindowResult` with DataFrame and JSON views."""

    result: WindowResult
    config: ModelConfig
    inferred: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``pass``, ``warn``, ``fail`` or ``error``: the worst check."""
        return self.result.status.value

    @property
    def checks(self) -> pd.DataFrame:
        """One row per check: check, category, feature, segment, status, value, threshold, message."""
        rows = [
            {
                "check": ch.check,
                "category": ch.category.value,
                "feature": c.column_label(ch.feature),
                "segment": ch.segment,
                "status": ch.status.value,
                "value": ch.value,
                "threshold": ch.threshold,
                "message": ch.message,
            }
            for ch in self.result.checks
        ]
        return pd.DataFrame(rows, columns=["check", "category", "feature", "segment", "status", "value",
                                           "threshold", "message"])  # fmt: skip

    @property
    def drift(self) -> pd.DataFrame:
        """One row per tested column and segment: test, p-values, effect, verdict, every extra score."""
        rows = []
        for d in self.result.drift:
            rows.append(
                {
                    "feature": c.column_label(d.feature),
                    "segment": d.segment,
                    "kind": d.kind,
                    "test_method": d.test_method,
                    "statistic": d.statistic,
                    "p_value": d.p_value,
                    "p_adjusted": d.p_adjusted,
                    "effect_method": d.effect_method,
                    "effect": d.effect,
                    "effect_threshold": d.effect_threshold,
                    "drifted": d.drifted,
                    "status": d.status.value,
                    "n_reference": d.n_reference,
                    "n_current": d.n_current,
                    "message": d.message,
                    **{f"score_{k}": v for k, v in d.scores.items()},
                }
            )
        return pd.DataFrame(rows)

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per (metric, feature, segment): the numbers the pipeline stores for Grafana."""
        rows = [
            {"metric": m.metric, "feature": c.column_label(m.feature), "segment": m.segment, "value": m.value}
            for m in self.result.metrics
        ]
        return pd.DataFrame(rows, columns=["metric", "feature", "segment", "value"])

    @property
    def failed(self) -> pd.DataFrame:
        """The checks that failed or could not be computed."""
        df = self.checks
        return df[df["status"].isin([Status.FAIL.value, Status.ERROR.value])].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (NaN and ±inf become null)."""
        r = self.result
        body = {
            "model": r.model,
            "status": self.status,
            "window": {"start": r.window.start.isoformat(), "end": r.window.end.isoformat()},
            "rows": r.n_rows,
            "quarantined": r.n_quarantined,
            "labelled": r.n_labelled,
            "reference_hash": r.reference_hash,
            "inferred": self.inferred,
            "notes": list(r.notes),
            "checks": self.checks.to_dict("records"),
            "drift": self.drift.to_dict("records"),
            "metrics": self.metrics.to_dict("records"),
            "quarantine": [
                {"row": q.doc_id, "reason": q.reason, "field": q.field, "detail": q.detail}
                for q in r.quarantine
            ],
        }
        return _json_safe(body)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def save_html(self, path: str | Path) -> Path:
        """Write the report the pipeline renders for a window (reports/render.py) to ``path``."""
        import tempfile

        from mlmon.reports import render

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            page = render.write_report(self.result, self.config, Path(tmp), None)
            path.write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        r = self.result
        failed = [ch for ch in r.checks if ch.status in (Status.FAIL, Status.ERROR)]
        colour = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "error": "#8250df"}[self.status]
        drifted = sorted({c.column_label(d.feature) for d in r.drift if d.drifted and d.segment == ALL})
        head = (
            f"<div><b>mlmon</b> {escape(r.model)}: <b style='color:{colour}'>{self.status.upper()}</b> · "
            f"{r.n_rows:,} rows · {r.n_quarantined:,} quarantined · {len(r.checks)} checks, "
            f"{len(failed)} failed · drifted: {escape(', '.join(drifted)) or 'none'}</div>"
        )
        if not failed:
            return head
        rows = "".join(
            f"<tr><td>{escape(ch.status.value)}</td><td>{escape(ch.check)}</td>"
            f"<td>{escape(c.column_label(ch.feature))}</td><td>{escape(ch.segment)}</td>"
            f"<td>{escape(ch.message)}</td></tr>"
            for ch in failed[:20]
        )
        more = f"<div>… and {len(failed) - 20} more</div>" if len(failed) > 20 else ""
        return (
            f"{head}<table><thead><tr><th>status</th><th>check</th><th>column</th><th>segment</th>"
            f"<th>message</th></tr></thead><tbody>{rows}</tbody></table>{more}"
        )

    def __repr__(self) -> str:
        return f"<mlmon.Comparison {self.result.model} {self.status}: {len(self.result.checks)} checks, {len(self.result.failed)} failed>"


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    if x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, datetime):
        return x.isoformat()
    return str(x)


def load(path: str | Path) -> Fitted:
    """A fitted reference saved with :meth:`Fitted.save`."""
    return Fitted.load(path)
