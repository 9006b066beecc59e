"""The log contract: the canonical prediction document, its typed frame, and why a document is rejected.

Canonical prediction document (what ``mlmon.logger`` writes; other shapes are mapped in the config)::

    {
      "request_id": "9f1c…",              # joins the delayed label
      "model_name": "demo_classifier",
      "model_version": "v1",
      "timestamp": ISODate("2026-01-01T12:00:00Z"),   # UTC
      "features": {"age": 42, "plan": "pro", …},
      "prediction": {"value": "churn", "probabilities": {"churn": 0.81, "stay": 0.19}},
      "latency_ms": 12.5,
      "status": "ok"                        # or "error"; optional "error": "message"
    }

Delayed ground-truth document, in a separate collection::

    {"request_id": "9f1c…", "label": "stay", "timestamp": ISODate("2026-01-03T08:00:00Z")}

A window becomes a typed :mod:`pandas` frame with one row per accepted document. Reserved columns start
with ``__`` so they can never clash with a feature name; features keep their configured names
(numerical → float64, categorical → object holding ``str`` or ``None``).
"""

from __future__ import annotations

from enum import StrEnum

ID = "__id"  # str(_id) of the document
REQUEST_ID = "__request_id"  # str or None
TIMESTAMP = "__timestamp"  # datetime64[ns, UTC]
VERSION = "__model_version"  # str or None
PREDICTION = "__prediction"  # float64 (regression) or str label (classification)
SCORE = "__score"  # float64: p(positive) for binary, max probability (confidence) for multiclass
TARGET = "__target"  # joined label; float64 (regression) or str; missing when not (yet) labelled
LATENCY = "__latency_ms"  # float64
STATUS = "__status"  # str or None
IS_ERROR = "__is_error"  # bool: status not in ok_statuses
PROBA_PREFIX = "__proba::"  # multiclass: one float64 column per class, "__proba::<class>"
SERVED = "__served"  # float64 1/0/NaN from versions.served_field; 0 = a shadow prediction (not served)

RESERVED = (ID, REQUEST_ID, TIMESTAMP, VERSION, PREDICTION, SCORE, TARGET, LATENCY, STATUS, IS_ERROR)


class Reason(StrEnum):
    """Why a document was quarantined (stored as-is in ``mlmon.quarantine.reason``)."""

    MISSING_FIELD = "missing_field"  # a required field is absent or null
    WRONG_TYPE = "wrong_type"  # e.g. a string where a number belongs, a bool as a number
    NESTED_VALUE = "nested_value"  # an object or array where a scalar belongs
    UNPARSEABLE = "unparseable"  # e.g. a timestamp string that is not a date
    NON_FINITE = "non_finite"  # NaN or ±inf where a finite number is required
    STRING_TOO_LONG = "string_too_long"  # longer than quality.max_string_length
    OUT_OF_WINDOW = "out_of_window"  # no longer produced: a document of another window is left to it
    NOT_A_DOCUMENT = (
        "not_a_document"  # undecodable BSON (bad UTF-8, too deep) or a document the decoder rejects
    )
    INVALID_VALUE = "invalid_value"  # a value the contract forbids: negative latency, p outside [0, 1], …


# What the contract allows beyond types (see the README's log contract). Values outside are quarantined
# with ``invalid_value``: a handful of them must never distort a window's statistics.
MAX_LATENCY_MS = 86_400_000.0  # a prediction served in more than a day is a logging bug, not a latency
PROBABILITY_SUM_TOLERANCE = 0.02  # |Σp − 1| allowed for two or more probabilities (rounded values pass)
MAX_UTC_OFFSET_HOURS = 14  # string timestamps carry offsets within ±14 h (UTC−12 … UTC+14)


def column_label(name: str) -> str:
    """How a frame column is shown (reports, alerts): reserved columns get a readable name, features
    keep theirs.

    >>> column_label("__prediction"), column_label("__proba::churn"), column_label("age")
    ('prediction', 'p(churn)', 'age')
    """
    if name.startswith(PROBA_PREFIX):
        return f"p({name[len(PROBA_PREFIX) :]})"
    if name.startswith("__"):
        return name[2:].replace("_", " ")
    return name
