"""A small serving app for the demo model, instrumented with the logging helper and its live metrics.

It is what a user's own app looks like (the README's FastAPI example does the same with FastAPI), kept to
the standard library so ``mlmon up`` and the tests run it anywhere:

* ``POST /predict`` with ``{"features": {...}}`` or ``{"instances": [{...}, ...]}``: predicts with the demo
  model, logs every prediction with :class:`mlmon.logger.PredictionLogger` (MongoDB + live metrics);
* ``GET /metrics``: the Prometheus metrics (every worker's, in prometheus_client's multiprocess mode);
* ``GET /health``: the logger's counters as JSON.

With ``--simulate RATE`` it also serves itself simulated customers (about RATE per second, with a
drift episode every ``--drift-every`` seconds), so the live dashboard has data without a client.

    python -m mlmon.serving --config deployments/models.yaml --model demo_classifier --port 8001
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import prometheus_client as pc

from mlmon import demo_model as dm
from mlmon.live import LiveMetrics, LiveSpec, generate
from mlmon.logger import PredictionLogger

log = logging.getLogger(__name__)


class DemoService:
    """The demo model behind the helper: ``predict(rows)`` logs each row and returns the predictions."""

    def __init__(self, logger: PredictionLogger, model: Any) -> None:
        self.logger, self.model = logger, model

    def predict(
        self,
        rows: list[dict[str, Any]],
        latency_ms: list[float] | None = None,
        status: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        frame = pd.DataFrame(rows).reindex(columns=list(dm.FEATURES))
        for name in dm.NUMERICAL:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        labels, p_churn = dm.predict(self.model, frame)
        took = (time.perf_counter() - t0) * 1000 / max(len(rows), 1)
        out = []
        for i, row in enumerate(rows):
            p = float(p_churn[i])
            rid = self.logger.log_prediction(
                row, str(labels[i]), probabilities={dm.POSITIVE: p, dm.CLASSES[0]: 1 - p},
                latency_ms=latency_ms[i] if latency_ms else took, status=status[i] if status else "ok",
            )  # fmt: skip
            out.append({"request_id": rid, "prediction": str(labels[i]), "probability": p})
        return out


def _handler(service: DemoService, registry: pc.CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client posting many requests reuses one connection

        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                body = generate(registry)
                self._send(200, body, pc.CONTENT_TYPE_LATEST)
            elif self.path == "/health":
                self._send(200, json.dumps(asdict(service.logger.stats)).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            if self.path != "/predict":
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                rows = body["instances"] if "instances" in body else [body["features"]]
                if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                    raise TypeError("instances must be a list of objects")
            except (ValueError, KeyError, TypeError) as e:
                self._send(400, json.dumps({"error": f"bad request: {e}"}).encode(), "application/json")
                return
            result = service.predict(rows)
            self._send(200, json.dumps({"predictions": result}).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown everything else

    return Handler


def simulate_traffic(
    service: DemoService,
    stop: threading.Event,
    rate: float,
    drift_every: float,
    drift_for: float,
    seed: int = 0,
) -> None:
    """About ``rate`` simulated requests per second until ``stop``; for ``drift_for`` seconds of every
    ``drift_every``, customers' income and sessions shift by 1σ (the batch demo's drift episode)."""
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    while not stop.wait(1.0):
        n = int(rng.poisson(rate))
        if not n:
            continue
        elapsed = time.monotonic() - start
        shift = 1.0 if drift_every > 0 and (elapsed % drift_every) >= drift_every - drift_for else 0.0
        frame = dm.customers(rng, n, shift=shift)
        rows = [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
                for r in frame.to_dict("records")]  # fmt: skip
        latency = np.exp(rng.normal(math.log(40.0), 0.5, n)).tolist()
        status = np.where(rng.random(n) < 0.01, "error", "ok").tolist()
        service.predict(rows, latency_ms=latency, status=status)


def _wait_for_spec(config: str, model: str, retry_s: float = 30.0) -> LiveSpec:
    """The model's live spec; while its reference dataset does not exist yet, say so and retry."""
    from mlmon.tasks.errors import ReferenceDataError

    while True:
        try:
            return LiveSpec.from_config(config, model)
        except ReferenceDataError as e:
            log.error("%s; the live metrics need it, retrying in %.0f s", e, retry_s)
            time.sleep(retry_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmon.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.environ.get("MLMON_CONFIG", "deployments/models.yaml"))
    parser.add_argument("--model", default="demo_classifier")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--mongo-uri", default=os.environ.get("MLMON_MONGO_URI"), help="default: MLMON_MONGO_URI"
    )
    parser.add_argument("--database", default="mlmon", help="MongoDB database of the prediction logs")
    parser.add_argument("--model-version", default="v1")
    parser.add_argument("--simulate", type=float, default=0.0, metavar="RATE", help="simulated requests/s")
    parser.add_argument("--drift-every", type=float, default=1800.0, help="seconds between drift episodes")
    parser.add_argument("--drift-for", type=float, default=300.0, help="seconds each drift episode lasts")
    parser.add_argument("--ready-file", type=Path, help="written once the server listens")
    args = parser.parse_args(argv)
    if not args.mongo_uri:
        parser.error("--mongo-uri or MLMON_MONGO_URI is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    registry = pc.CollectorRegistry()
    metrics = LiveMetrics(_wait_for_spec(args.config, args.model), registry=registry)
    logger = PredictionLogger(
        args.mongo_uri,
        args.database,
        model_name=args.model,
        model_version=args.model_version,
        metrics=metrics,
    )
    service = DemoService(logger, dm.train("v1", seed=0))
    httpd = ThreadingHTTPServer((args.host, args.port), _handler(service, registry))
    httpd.daemon_threads = True
    stop = threading.Event()
    if args.simulate > 0:
        threading.Thread(
            target=simulate_traffic, args=(service, stop, args.simulate, args.drift_every, args.drift_for),
            name="mlmon-simulated-traffic", daemon=True,
        ).start()  # fmt: skip

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.ready_file:
        args.ready_file.write_text(f"{args.host}:{httpd.server_address[1]}\n")
    log.info("serving %s on http://%s:%d (POST /predict, GET /metrics)", args.model, args.host, args.port)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        logger.close(timeout=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
