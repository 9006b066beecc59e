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
