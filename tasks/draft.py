"""Draft a model config from a sample of existing documents, for the user to edit.

Walks every sampled document, records each scalar field's dotted path, its types and (for strings) its
distinct values, then guesses which fields are the timestamp, ids, prediction, latency, status and
features. The output is commented YAML: a starting point, never applied silently.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

MAX_CATEGORIES = 30  # more distinct strings than this: not a categorical feature (an id or free text)

_ROLES = {
    "timestamp": ("timestamp", "ts", "time", "created_at", "datetime", "date", "@timestamp"),
    "request_id": ("request_id", "requestid", "req_id", "prediction_id", "id", "uuid", "trace_id"),
    "model_version": ("model_version", "version", "modelversion"),
    "prediction": ("prediction", "pred", "predicted", "output", "label", "score", "y_pred", "value"),
    "probabilities": ("probabilities", "probas", "proba", "probs", "scores"),
    "latency_ms": ("latency_ms", "latency", "duration_ms", "elapsed_ms", "response_time_ms"),
    "status": ("status", "outcome", "result", "status_code"),
    "target": ("target", "ground_truth", "actual", "y_true"),
}
_NOT_FEATURES = ("_id", "model_name", "model", "error", "host", "service")


@dataclass
class FieldStats:
    types: Counter[str] = field(default_factory=Counter)
    values: Counter[str] = field(default_factory=Counter)
    present: int = 0


def _walk(doc: dict[str, Any], prefix: str, out: dict[str, FieldStats]) -> None:
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            stats = out[path]
            stats.present += 1
            stats.types["object"] += 1
            _walk(v, path + ".", out)
            continue
        stats = out[path]
        stats.present += 1
        if isinstance(v, bool):
            stats.types["bool"] += 1
        elif isinstance(v, (int, float)):
            stats.types["number"] += 1
        elif isinstance(v, str):
            stats.types["string"] += 1
            if len(stats.values) <= MAX_CATEGORIES:
                stats.values[v[:100]] += 1
        elif isinstance(v, datetime):
            stats.types["date"] += 1
        elif isinstance(v, list):
            stats.types["array"] += 1
        elif v is None:
            stats.types["null"] += 1
        else:
            stats.types[type(v).__name__] += 1


def profile_fields(docs: list[dict[str, Any]]) -> dict[str, FieldStats]:
    out: dict[str, FieldStats] = defaultdict(FieldStats)
    for d in docs:
        _walk(d, "", out)
    return dict(out)


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].lower()


def _find(role: str, stats: dict[str, FieldStats], taken: set[str], want: tuple[str, ...]) -> str | None:
    for name in _ROLES[role]:
        for path, st in stats.items():
            if path in taken or _leaf(path) != name:
                continue
            if st.types and st.types.most_common(1)[0][0] in want:
                return path
    return None


def draft_config(
    docs: list[dict[str, Any]], *, model: str, database: str, collection: str, flt: dict[str, Any]
) -> str:
    """Commented YAML for one model, inferred from ``docs``."""
    stats = profile_fields(docs)
    taken: set[str] = set()
    fields: dict[str, Any] = {}
    wants = {
        "timestamp": ("date", "string", "number"),
        "request_id": ("string", "number"),
        "model_version": ("string", "number"),
        "probabilities": ("object", "array", "number"),
        "prediction": ("string", "number", "bool"),
        "latency_ms": ("number",),
        "status": ("string", "number"),
        "target": ("string", "number", "bool"),
    }
    for role, want in wants.items():
        path = _find(role, stats, taken, want)
        fields[role] = path
        if path:
            taken.add(path)
            taken.update(p for p in stats if p.startswith(path + "."))
    ts = fields["timestamp"]
    ts_type = "date"
    if ts:
        kind = stats[ts].types.most_common(1)[0][0]
        ts_type = {"date": "date", "string": "string"}.get(kind, "epoch_s")
    features: dict[str, Any] = {}
    for path, st in sorted(stats.items()):
        if (
            path in taken
            or not st.types
            or _leaf(path) in _NOT_FEATURES
            or path.split(".")[0] in _NOT_FEATURES
        ):
            continue
        main = st.types.most_common(1)[0][0]
        name = path.split(".")[-1] if path.count(".") <= 1 else path.replace(".", "_")
        if main == "number":
            features[name] = {"type": "numerical", "path": path}
        elif main in ("string", "bool") and len(st.values) <= MAX_CATEGORIES:
            features[name] = {"type": "categorical", "path": path}
    pred = fields["prediction"]
    task = "none"
    classes = None
    if pred:
        kind = stats[pred].types.most_common(1)[0][0]
        if kind == "number":
            task = "regression"
        else:
            classes = sorted(stats[pred].values)
            task = "binary" if len(classes) == 2 else "multiclass"
    body: dict[str, Any] = {
        "source": {"database": database, "collection": collection, "filter": flt},
        "fields": {**{k: v for k, v in fields.items()}, "timestamp_type": ts_type},
        "features": features,
        "task": task,
        "reference": {"path": f"../reference_data/{model}.parquet"},
        "window": "1d",
    }
    if classes:
        body["classes"] = classes
    header = (
        f"# Drafted by `mlmon config draft` from {len(docs)} documents of {database}.{collection}.\n"
        "# Review every line: field roles and feature types are guesses. Then build the reference with\n"
        f"#   mlmon reference build {model} --start <ISO> --end <ISO>\n"
    )
    return header + yaml.safe_dump(
        {"version": 1, "models": {model: body}}, sort_keys=False, allow_unicode=True
    )
