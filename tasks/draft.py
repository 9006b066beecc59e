"""Draft a model config from a sample of existing documents, for the user to edit.

Walks every sampled document, records each scalar field's dotted path, its types and a sample of its
values, then decides which fields are the timestamp, ids, prediction, probabilities, latency, status
and which are features: by name and by value (an ISO string or a date two levels deep is still a
timestamp; a number in [0, 1] named ``proba`` is the model's output, not an input). Every field of the
sample appears in the output: mapped, drafted as a feature, or listed in a comment saying why not.
Guesses the draft is unsure of are commented, and the header lists what the user must still decide.
The output is YAML that :func:`mlmon.tasks.config.load_config` accepts as it stands.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from mlmon.tasks.errors import ConfigError

FEW_CATEGORIES = 30  # more distinct strings than this: still categorical, but said to be unsure
MAX_TRACKED = 5000  # distinct values remembered per field (enough to tell an id from a category)
ID_SHARE = 0.9  # distinct / present above this (with enough rows): an identifier, not a feature

# leaf-name patterns per role, most specific first; a field takes the first role whose pattern and
# value type fit (see _ROLE_TYPES)
_ROLES: dict[str, tuple[str, ...]] = {
    "timestamp": (r"@?timestamp", r"ts", r"time", r"datetime", r"date", r"event_time", r".*_at", r".*_time"),
    "request_id": (r"request_?id", r"req_?id", r"prediction_?id", r"trace_?id", r"uuid", r"uid", r"id"),
    "model_version": (r"model_?version", r"version"),
    "probabilities": (
        r"probabilities",
        r"probas?",
        r"probs?",
        r"scores?",
        r".*proba.*",
        r".*probabilit.*",
        r"p_\w+",
    ),
    "prediction": (r"prediction", r"predicted(_label)?", r"pred", r"y_pred", r"label", r"output", r"value"),
    "latency_ms": (
        r"latency(_ms)?",
        r".*latency.*",
        r"duration(_ms)?",
        r"elapsed(_ms)?",
        r"response_time(_ms)?",
    ),
    "status": (r"status", r"status_?code", r"http_status", r"outcome", r"result", r"code"),
    "target": (r"target", r"ground_truth", r"actual", r"y_true"),
}
_ROLE_TYPES = {
    "timestamp": ("date", "string", "number"),
    "request_id": ("string", "number"),
    "model_version": ("string", "number"),
    "probabilities": ("object", "array", "number"),
    "prediction": ("string", "number", "bool"),
    "latency_ms": ("number",),
    "status": ("string", "number"),
    "target": ("string", "number", "bool"),
}
# never model inputs: the document's own bookkeeping
_NOT_FEATURES = {"_id", "model_name", "model", "error", "error_message", "host", "hostname", "service"}


@dataclass
class FieldStats:
    types: Counter[str] = field(default_factory=Counter)
    values: Counter[str] = field(default_factory=Counter)  # up to MAX_TRACKED distinct values
    numbers: list[float] = field(default_factory=list)  # a sample of the numeric values
    present: int = 0

    @property
    def main(self) -> str:
        known = Counter({k: v for k, v in self.types.items() if k != "null"})
        return known.most_common(1)[0][0] if known else "null"

    @property
    def distinct(self) -> int:
        return len(self.values)


def _walk(doc: dict[str, Any], prefix: str, out: dict[str, FieldStats]) -> None:
    for k, v in doc.items():
        path = f"{prefix}{k}"
        stats = out[path]
        stats.present += 1
        if isinstance(v, dict):
            stats.types["object"] += 1
            _walk(v, path + ".", out)
        elif isinstance(v, bool):
            stats.types["bool"] += 1
            stats.values[str(v).lower()] += 1
        elif isinstance(v, (int, float)):
            stats.types["number"] += 1
            if len(stats.numbers) < MAX_TRACKED:
                stats.numbers.append(float(v))
            if len(stats.values) < MAX_TRACKED or str(v) in stats.values:
                stats.values[str(v)] += 1
        elif isinstance(v, str):
            stats.types["string"] += 1
            if len(stats.values) < MAX_TRACKED or v[:100] in stats.values:
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


def _is_iso(text: str) -> bool:
    t = text.strip()
    if len(t) < 10 or not t[:4].isdigit():
        return False
    try:
        datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith("Z") else t)
    except ValueError:
        return False
    return True


def _epoch_unit(st: FieldStats) -> str | None:
    """``epoch_s`` / ``epoch_ms`` when every sampled number is a plausible Unix time (2001-2100)."""
    xs = [x for x in st.numbers if math.isfinite(x)]
    if not xs:
        return None
    if all(1e9 <= x <= 4.1e9 for x in xs):
        return "epoch_s"
    if all(1e12 <= x <= 4.1e12 for x in xs):
        return "epoch_ms"
    return None


def _fits(role: str, st: FieldStats) -> bool:
    main = st.main
    if main not in _ROLE_TYPES[role]:
        return False
    if role == "timestamp":
        if main == "string":
            sample = list(st.values)[:50]
            return bool(sample) and all(_is_iso(v) for v in sample)
        return main == "date" or _epoch_unit(st) is not None
    if role == "probabilities" and main == "number":  # p(positive): numbers inside [0, 1]
        return bool(st.numbers) and all(0.0 <= x <= 1.0 for x in st.numbers)
    return True


def _find(role: str, stats: dict[str, FieldStats], taken: set[str]) -> str | None:
    for pattern in _ROLES[role]:
        rx = re.compile(pattern + r"$")
        for path, st in sorted(stats.items(), key=lambda kv: kv[0].count(".")):  # shallow first
            if path not in taken and rx.match(_leaf(path)) and _fits(role, st):
                return path
    return None


def _find_timestamp_by_value(stats: dict[str, FieldStats], taken: set[str]) -> str | None:
    """Any field holding dates, ISO strings or epoch times, whatever its name (fewest levels deep first)."""
    for want in ("date", "string", "number"):
        for path, st in sorted(stats.items(), key=lambda kv: kv[0].count(".")):
            if path not in taken and st.main == want and _fits("timestamp", st):
                return path
    return None


def _under(path: str, parents: set[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in parents)


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def draft_config(
    docs: list[dict[str, Any]], *, model: str, database: str, collection: str, flt: dict[str, Any]
) -> str:
    """Commented YAML for one model, inferred from ``docs``; raises :class:`ConfigError` when the
    sample holds no field that can be the timestamp (a config without one cannot run)."""
    stats = profile_fields(docs)
    n = len(docs)
    taken: set[str] = set()
    fields: dict[str, str | None] = {}
    notes: dict[str, str] = {}  # path -> comment on how it was mapped
    for role in _ROLE_TYPES:
        path = _find(role, stats, taken)
        if path is None and role == "timestamp":
            path = _find_timestamp_by_value(stats, taken)
            if path:
                notes[path] = "unsure: chosen by its values (the first field holding times), not its name"
        fields[role] = path
        if path:
            taken.add(path)
            if stats[path].main == "object":
                taken.update(p for p in stats if p.startswith(path + "."))
    ts = fields["timestamp"]
    if ts is None:
        scalars = sorted(p for p, st in stats.items() if st.main not in ("object", "null"))
        raise ConfigError(
            f"no field of the {n} sampled documents looks like a timestamp (a date, an ISO-8601 string or "
            f"epoch seconds/milliseconds); fields seen: {', '.join(scalars[:40])}. Write fields.timestamp "
            "and fields.timestamp_type by hand"
        )
    ts_stats = stats[ts]
    ts_type = {"date": "date", "string": "string"}.get(ts_stats.main) or _epoch_unit(ts_stats) or "epoch_s"

    decide: list[str] = []
    task, classes, positive = "none", None, None
    pred, proba = fields["prediction"], fields["probabilities"]
    if pred and stats[pred].main in ("string", "bool"):
        classes = sorted(stats[pred].values)
        task = "binary" if len(classes) == 2 else "multiclass"
    elif proba and stats[proba].main == "object":
        classes = sorted(
            _leaf(p) for p in stats if p.startswith(proba + ".") and p.count(".") == proba.count(".") + 1
        )
        task = "binary" if len(classes) == 2 else "multiclass"
    elif proba and stats[proba].main == "number":
        task, classes, positive = "binary", ["negative", "positive"], "positive"
        notes[proba] = "a bare number in [0, 1]: read as p(positive class)"
        decide.append(
            f"classes / positive_class: {proba} holds one probability; name the two classes as your labels "
            "spell them (the drafted 'negative'/'positive' are placeholders; the predicted label is the "
            "class with p >= 0.5)"
        )
    elif pred and stats[pred].main == "number":
        task = "regression"
        decide.append(
            f"task: {pred} is a number, drafted as regression; if it is a score, map it as fields.probabilities"
        )
    else:
        decide.append(
            "task / fields.prediction: no prediction field recognised; task is none (no model-quality checks)"
        )
    if task == "binary" and positive is None and classes:
        positive = classes[-1]
        decide.append(f"positive_class: drafted as {positive!r} (the last class in sorted order)")

    # features: every remaining scalar field; unsure ones are commented
    features: list[tuple[str, dict[str, Any], str]] = []
    unused: list[tuple[str, str]] = []
    used_names: Counter[str] = Counter(_leaf(p) for p, st in stats.items() if st.main not in ("object",))
    for path, st in sorted(stats.items()):
        if path in taken or _under(path, {p for p in taken if stats[p].main == "object"}):
            continue
        main = st.main
        if main == "object":
            continue
        leaf = path.rsplit(".", 1)[-1]
        if _leaf(path) in _NOT_FEATURES or path.split(".")[0] in _NOT_FEATURES:
            unused.append((path, "bookkeeping (model name, id, error text, host), not a model input"))
            continue
        if main in ("null", "array", "date") or main not in ("number", "string", "bool"):
            unused.append((path, f"holds {main} values; features are numbers or categories"))
            continue
        name = leaf if used_names[leaf.lower()] == 1 else path.replace(".", "_")
        comment = ""
        if main == "string" and st.present >= 20 and st.distinct >= ID_SHARE * st.present:
            unused.append(
                (path, f"{st.distinct} distinct values in {st.present} documents: looks like an id")
            )
            continue
        if main == "number":
            spec: dict[str, Any] = {"type": "numerical", "path": path}
            if st.distinct <= 2:
                comment = f"unsure: only {st.distinct} distinct values; categorical?"
        else:
            spec = {"type": "categorical", "path": path}
            if st.distinct > FEW_CATEGORIES:
                more = "+" if st.distinct >= MAX_TRACKED else ""
                comment = f"unsure: {st.distinct}{more} distinct values in {st.present} documents (high cardinality)"
        if st.present < n:
            comment = "; ".join(x for x in (comment, f"present in {st.present} of {n} documents") if x)
        features.append((name, spec, comment))
    if not features:
        raise ConfigError(f"no field of the {n} sampled documents can be a feature; write features by hand")

    status = fields["status"]
    if status:
        seen = sorted(stats[status].values)[:10]
        if not set(seen) & {"ok", "success", "200"}:
            decide.append(f"service.ok_statuses: {status} takes values {seen}; list the ones meaning success")
    decide += [
        "window: drafted as 1d; choose the window length (and window_origin, e.g. monday, for weekly windows)",
        f"reference: build it from a period you trust: mlmon reference build {model} --start <ISO> --end <ISO>",
    ]
    if task != "none" and not fields["target"]:
        decide.append(
            "source.labels: where ground truth arrives, if it does (a separate collection joined by request id)"
        )
    unsure = [name for name, _, comment in features if comment.startswith("unsure")]
    if unsure:
        decide.append(f"the features marked 'unsure' below: {', '.join(unsure)}")

    return _emit(
        model=model, database=database, collection=collection, flt=flt, n=n, fields=fields, ts_type=ts_type,
        notes=notes, features=features, unused=unused, task=task, classes=classes, positive=positive,
        decide=decide,
    )  # fmt: skip


def _emit(
    *,
    model: str,
    database: str,
    collection: str,
    flt: dict[str, Any],
    n: int,
    fields: dict[str, str | None],
    ts_type: str,
    notes: dict[str, str],
    features: list[tuple[str, dict[str, Any], str]],
    unused: list[tuple[str, str]],
    task: str,
    classes: list[str] | None,
    positive: str | None,
    decide: list[str],
) -> str:
    """The YAML text, written line by line so that guesses carry their comment."""

    def scalar(v: Any) -> str:
        return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()

    out = [
        f"# Drafted by `mlmon config draft` from {n} documents of {database}.{collection}.",
        "# Review every line: field roles and feature types are guesses. You must still decide:",
        *(f"#   - {d}" for d in decide),
        "version: 1",
        "models:",
        f"  {scalar(model)}:",
        f"    source: {_flow({'database': database, 'collection': collection, 'filter': flt})}",
        "    fields:",
    ]
    for role in ("timestamp", "request_id", "model_version", "prediction", "probabilities", "target",
                 "latency_ms", "status"):  # fmt: skip
        path = fields.get(role)
        note = f"  # {notes[path]}" if path and path in notes else ""
        out.append(f"      {role}: {scalar(path)}{note}")
    out.append(f"      timestamp_type: {ts_type}")
    out.append("    features:")
    for name, spec, comment in features:
        out.append(f"      {scalar(name)}: {_flow(spec)}" + (f"  # {comment}" if comment else ""))
    if unused:
        out.append("      # not drafted as features (add them back if they are model inputs):")
        out += [f"      #   {path}: {why}" for path, why in unused]
    out.append(f"    task: {task}")
    if classes:
        out.append(f"    classes: {_flow(classes)}")
    if positive is not None:
        out.append(f"    positive_class: {scalar(positive)}")
    out.append(f"    reference: {{path: ../reference_data/{model}.parquet}}")
    out.append("    window: 1d")
    return "\n".join(out) + "\n"
