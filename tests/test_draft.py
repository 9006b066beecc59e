"""`mlmon config draft`: a config inferred from sample documents loads, and maps the fields it saw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from mlmon.tasks.config import load_config
from mlmon.tasks.draft import draft_config
from mlmon.tasks.extract import decode_documents


def docs() -> list[dict[str, object]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "_id": i,
            "ts": t0 + timedelta(minutes=i),
            "req_id": f"r{i}",
            "version": "v3",
            "model_name": "fraud",
            "input": {"amount": 10.5 * i, "country": ["fr", "de", "us"][i % 3], "n_items": i % 4},
            "output": {"label": ["ok", "fraud"][i % 2]},
            "latency": 12.0 + i,
            "status": "ok",
        }
        for i in range(60)
    ]


def test_drafted_config_loads_and_extracts(tmp_path: Path) -> None:
    text = draft_config(
        docs(), model="fraud", database="prod", collection="preds", flt={"model_name": "fraud"}
    )
    assert text.startswith("# Drafted by `mlmon config draft`")
    body = yaml.safe_load(text)["models"]["fraud"]
    assert body["fields"]["timestamp"] == "ts" and body["fields"]["timestamp_type"] == "date"
    assert body["fields"]["request_id"] == "req_id" and body["fields"]["latency_ms"] == "latency"
    assert body["fields"]["prediction"] == "output.label"
    assert body["task"] == "binary" and body["classes"] == ["fraud", "ok"]
    assert body["features"]["amount"] == {"type": "numerical", "path": "input.amount"}
    assert body["features"]["country"] == {"type": "categorical", "path": "input.country"}
    path = tmp_path / "models.yaml"
    path.write_text(text)
    cfg = load_config(path).model("fraud")  # the draft is a valid config as it stands
    batch = decode_documents(docs(), cfg)
    assert len(batch.frame) == 60 and not batch.quarantine


def nested_docs(n: int = 400) -> list[dict[str, object]]:
    """A log shape nobody configured: ISO string timestamp two levels deep, a ~100-level categorical,
    latency, an HTTP status code and the predicted probability next to the inputs."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "_id": i,
            "meta": {
                "request": {
                    "received": (t0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "uid": f"req-{i:05d}",
                }
            },
            "service": "scoring",
            "payload": {
                "amount": 3.5 * (i % 50),
                "merchant": f"m{i % 97:03d}",
                "channel": ["web", "app"][i % 2],
            },
            "result": {"proba": (i % 100) / 100},
            "timing": {"latency_ms": 5.0 + i % 7},
            "http": {"status_code": 200 if i % 50 else 503},
        }
        for i in range(n)
    ]


def test_nested_log_draft_recognises_roles_keeps_every_field_and_runs(tmp_path: Path) -> None:
    text = draft_config(nested_docs(), model="fraud", database="prod", collection="preds", flt={})
    body = yaml.safe_load(text)["models"]["fraud"]
    f = body["fields"]
    assert f["timestamp"] == "meta.request.received" and f["timestamp_type"] == "string"
    assert f["request_id"] == "meta.request.uid"
    assert f["latency_ms"] == "timing.latency_ms" and f["status"] == "http.status_code"
    assert f["probabilities"] == "result.proba" and f["prediction"] is None
    assert body["task"] == "binary" and body["positive_class"] in body["classes"]
    assert set(body["features"]) == {"amount", "merchant", "channel"}  # no latency, status or probability
    assert body["features"]["merchant"] == {"type": "categorical", "path": "payload.merchant"}
    merchant_line = next(line for line in text.splitlines() if line.strip().startswith("merchant:"))
    assert "# unsure: 97 distinct values" in merchant_line
    assert "#   service: bookkeeping" in text  # every field appears: mapped, a feature, or said why not
    assert "You must still decide:" in text and "classes / positive_class" in text and "window:" in text

    path = tmp_path / "models.yaml"
    path.write_text(text)
    cfg = load_config(path).model("fraud")  # loads as drafted ...
    batch = decode_documents(nested_docs(), cfg)  # ... and every document extracts
    assert len(batch.frame) == 400 and not batch.quarantine
    assert batch.frame["merchant"].nunique() == 97

    # ... and runs through the engine: the first half as the reference, the second as a window
    from mlmon.tasks import contract as c
    from mlmon.tasks.evaluate import evaluate, profile_kinds
    from mlmon.tasks.reference import fit_profile
    from mlmon.tasks.window import Window

    ref = decode_documents(nested_docs()[:200], cfg).frame
    profile = fit_profile(ref, profile_kinds(cfg), "h")
    assert c.PREDICTION in profile.columns and c.SCORE in profile.columns
    window = Window(datetime(2026, 1, 1, 3, 20, tzinfo=UTC), datetime(2026, 1, 1, 6, 40, tzinfo=UTC))
    result = evaluate(cfg, profile, decode_documents(nested_docs()[200:], cfg), window)
    drifted = {d.feature for d in result.drift}
    assert {"amount", "merchant", "channel", c.PREDICTION} <= drifted
    assert any(ch.check == "error_rate" for ch in result.checks)  # the status code is mapped as status


def test_draft_without_any_timestamp_says_so() -> None:
    import pytest

    from mlmon.tasks.errors import ConfigError

    docs = [{"x": i, "y": "a"} for i in range(10)]
    with pytest.raises(ConfigError, match=r"looks like a timestamp.*fields seen: x, y"):
        draft_config(docs, model="m", database="d", collection="c", flt={})


def test_epoch_milliseconds_timestamp_by_value() -> None:
    t0 = 1_767_225_600_000
    docs = [{"created": t0 + 1000 * i, "x": float(i), "prediction": float(i) * 2} for i in range(30)]
    body = yaml.safe_load(draft_config(docs, model="m", database="d", collection="c", flt={}))["models"]["m"]
    assert body["fields"]["timestamp"] == "created" and body["fields"]["timestamp_type"] == "epoch_ms"
    assert body["task"] == "regression" and list(body["features"]) == ["x"]
