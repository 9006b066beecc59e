"""mlmon's CBPE against NannyML's on the same data (not a test; NannyML is never a project dependency).

NannyML 0.13.1 pulls FLAML, lightgbm, s3fs, gcsfs, kaleido…: install it in its own venv and pass its
interpreter::

    python3 -m venv /tmp/nannyml-venv && /tmp/nannyml-venv/bin/pip install nannyml==0.13.1 statsmodels
    python tests/benchmarks/compare_nannyml.py --nannyml-python /tmp/nannyml-venv/bin/python

Data: calibrate_cbpe.py's binary classifier (overconfident scores, so both calibrate). Reference 20k
labelled rows; analysis: 10 chunks of 2,000 rows, the first 5 null, the last 5 shifted towards the
decision boundary. Prints, per chunk, both estimates of accuracy and ROC AUC, the realized values,
and the largest absolute difference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from calibrate_cbpe import config, draw

from mlmon.tasks import contract as c
from mlmon.tasks.checks.estimated import estimate_window, fit_cbpe
from mlmon.tasks.checks.performance import model_scores

CHUNK = 2_000

NANNYML = """
import json, sys
import nannyml as nml
import pandas as pd
ref = pd.read_parquet(sys.argv[1]); ana = pd.read_parquet(sys.argv[2])
est = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="target", timestamp_column_name=None,
               problem_type="classification_binary", metrics=["accuracy", "roc_auc"], chunk_size=int(sys.argv[3]))
est.fit(ref)
df = est.estimate(ana.drop(columns=["target"])).filter(period="analysis").to_df()
out = {m: {"value": df[(m, "value")].tolist(), "lower": df[(m, "lower_confidence_boundary")].tolist(),
           "upper": df[(m, "upper_confidence_boundary")].tolist()} for m in ("accuracy", "roc_auc")}
print(json.dumps(out))
"""


def _nannyml_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x1": frame["x1"],
            "x2": frame["x2"],
            "score": frame[c.SCORE],
            "pred": (frame[c.PREDICTION] == "pos").astype(int),
            "target": (frame[c.TARGET] == "pos").astype(int),
        }
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nannyml-python", required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    cfg = config("binary")
    ec = cfg.estimated_performance
    rng = np.random.default_rng(args.seed)
    ref = draw("binary", 20_000, rng)
    chunks = [draw("binary", CHUNK, rng, shifted=i >= 5) for i in range(10)]
    model = fit_cbpe(ref, cfg)
    ours = [{e.metric: e for e in estimate_window(w, model, ec).estimates} for w in chunks]
    real = [model_scores(w, cfg).values for w in chunks]
    with tempfile.TemporaryDirectory() as tmp:
        rp, ap_ = Path(tmp, "ref.parquet"), Path(tmp, "ana.parquet")
        _nannyml_frame(ref).to_parquet(rp)
        pd.concat([_nannyml_frame(w) for w in chunks], ignore_index=True).to_parquet(ap_)
        run = subprocess.run(
            [args.nannyml_python, "-c", NANNYML, str(rp), str(ap_), str(CHUNK)],
            capture_output=True,
            text=True,
            check=True,
        )
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    print(
        f"{'chunk':>5} {'kind':>7} | {'acc mlmon':>9} {'nannyml':>8} {'real':>6} | {'auc mlmon':>9} {'nannyml':>8} {'real':>6}"
    )
    worst = {"accuracy": 0.0, "roc_auc": 0.0}
    for i in range(10):
        row = []
        for m in ("accuracy", "roc_auc"):
            a, b = ours[i][m].value, theirs[m]["value"][i]
            worst[m] = max(worst[m], abs(a - b))
            row.append(f"{a:>9.4f} {b:>8.4f} {real[i][m]:>6.3f}")
        print(f"{i:>5} {'shifted' if i >= 5 else 'null':>7} | " + " | ".join(row))
    for m in ("accuracy", "roc_auc"):
        widths = [ours[i][m].upper - ours[i][m].lower for i in range(10)]
        theirs_w = [u - lo for u, lo in zip(theirs[m]["upper"], theirs[m]["lower"], strict=True)]
        print(
            f"{m}: largest |mlmon − nannyml| {worst[m]:.2g}; mean band width mlmon {np.mean(widths):.4f}, "
            f"nannyml {np.mean(theirs_w):.4f}"
        )


if __name__ == "__main__":
    main()
