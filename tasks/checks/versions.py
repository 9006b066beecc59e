"""Champion–challenger and shadow models: is another version better or worse than the one in production?

Per window (and segment) every *challenger* (any version other than the champion) is compared with the
*champion* (``versions.champion``, or the version that served most of the window's requests):

* **shadow** — the challenger scored the same requests without its answer being served (its rows are
  the batch's shadow rows, :func:`mlmon.tasks.extract.split_shadow`): rows are paired on the request
  id; the agreement rate is the share of pairs with the same answer, and quality is tested *paired*:
  McNemar's exact test on the discordant pairs for accuracy (classification), a paired t-test on the
  per-request absolute errors (regression);
* **split traffic** — the challenger served its own share of the requests: quality is tested
  *unpaired*: the two-proportion z-test on accuracy, Welch's t-test on absolute errors.

Prediction drift of the challenger against the champion uses the drift registry and its decision
(:func:`mlmon.tasks.checks.decide.drift_table`): the champion's predictions of the window play the
reference. Labels join by request id, so a request's served and shadow predictions carry the same one.

Statistic apart from decision: :func:`score_versions` computes a :class:`VersionScore` per challenger;
:func:`decide_version` turns it into a verdict: *worse* (fail) or *better* when the test is significant
at ``alpha`` AND the difference reaches ``min_effect`` (so a 1M-row window does not call 0.1 % a
difference), else *indistinguishable at this sample size* (pass); fewer than ``min_rows`` labelled rows
(pairs) on either side is *insufficient data* (warn).

McNemar (1947), Psychometrika 12; Edwards (1948) for the exact (binomial) form.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy import stats

from mlmon.tasks import contract as c
from mlmon.tasks.checks.families import FamilyInput, Findings, method
from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, FeatureDrift, Metric, Status
from mlmon.tasks.config import Kind, ModelConfig, TaskType, VersionsConfig


class Mode(StrEnum):
    SHADOW = "shadow"  # same requests, the challenger's answer not served: paired
    SPLIT = "split"  # the challenger served its own share of the traffic: unpaired


class Verdict(StrEnum):
    """The reason code of a ``version_quality`` check (stored as metric ``version_verdict``: +1/0/−1)."""

    BETTER = "better"
    WORSE = "worse"
    INDISTINGUISHABLE = "indistinguishable"
    INSUFFICIENT = "insufficient_data"


VERDICT_VALUE = {Verdict.BETTER: 1.0, Verdict.INDISTINGUISHABLE: 0.0, Verdict.WORSE: -1.0}


@dataclass(frozen=True)
class VersionScore:
    """One challenger against the champion in one window (or segment)."""

    version: str
    champion: str
    mode: Mode
    n_rows: int  # the challenger's predictions in the window
    n_pairs: int  # shadow: requests both versions scored (0 for split traffic)
    agreement: float | None  # shadow classification: share of pairs with the same answer
    mean_abs_difference: float | None  # shadow regression: mean |challenger − champion|
    n_champion: int  # labelled rows the test used: the champion's side (pairs for shadow)
    n_challenger: int  # the challenger's side (= n_champion for shadow)
    metric: str  # "accuracy" | "mae"
    champion_quality: float | None
    challenger_quality: float | None
    gain: float | None  # accuracy: challenger − champion; mae: (champion − challenger) / champion
    test: str  # "mcnemar_exact" | "two_proportion_z" | "paired_t" | "welch_t"
    p_value: float | None
    drift: tuple[FeatureDrift, ...] = ()


# --------------------------------------------------------------------------- statistics


def mcnemar_exact(champion_right: np.ndarray, challenger_right: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs split 50/50 under the null.

    >>> right = np.array([True] * 80 + [False] * 20)
    >>> round(mcnemar_exact(right, right), 3)  # no discordant pair: no evidence of a difference
    1.0
    >>> round(mcnemar_exact(right, np.r_[right[:60], ~right[60:80], right[80:]]), 6)  # 20 vs 0
    2e-06
    """
    b = int(np.sum(champion_right & ~challenger_right))
    k = int(np.sum(~champion_right & challenger_right))
    return float(stats.binomtest(k, b + k, 0.5).pvalue) if b + k else 1.0


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (k successes of n on each side)."""
    if not n1 or not n2:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 1.0  # both sides all right (or all wrong): no evidence of a difference
    z = (k2 / n2 - k1 / n1) / np.sqrt(var)
    return float(2 * stats.norm.sf(abs(z)))


def _t_p(result: object) -> float:
    p = float(getattr(result, "pvalue", np.nan))
    return p if np.isfinite(p) else 1.0  # constant differences (all zero): no evidence


def champion_of(cfg: VersionsConfig, served: pd.DataFrame) -> str | None:
    """The configured champion, else the version that served most of the window's rows (ties: sort order)."""
    if cfg.champion is not None:
        return cfg.champion
    if c.VERSION not in served or served.empty:
        return None
    counts = served[c.VERSION].dropna().value_counts()
    counts.index = counts.index.astype(str)
    if counts.empty:
        return None
    top = counts[counts == counts.max()]
    return str(sorted(top.index)[0])


_COLUMNS = (c.REQUEST_ID, c.VERSION, c.PREDICTION, c.SCORE, c.TARGET)


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    """The family's columns of the rows with a version and a prediction (a failed request has none);
    versions as text."""
    if c.VERSION not in frame or c.PREDICTION not in frame:
        return pd.DataFrame({c.VERSION: pd.Series([], dtype=object), c.PREDICTION: []})
    keep = frame[c.VERSION].notna().to_numpy() & frame[c.PREDICTION].notna().to_numpy()
    out = frame.loc[keep, [k for k in _COLUMNS if k in frame]]
    if len(out) and not _all_str(out[c.VERSION]):
        out = out.assign(**{c.VERSION: out[c.VERSION].astype(str)})
    return out


def _all_str(s: pd.Series) -> bool:
    return bool(pd.api.types.infer_dtype(s, skipna=False) == "string")


def _right(pred: pd.Series, target: pd.Series) -> np.ndarray:
    """Predicted label equals the label (labels are text in the frame; a missing one never matches)."""
    return np.asarray(pred.to_numpy(dtype=object) == target.to_numpy(dtype=object), dtype=bool)


def _abs_error(pred: pd.Series, target: pd.Series) -> np.ndarray:
    p = pd.to_numeric(pred, errors="coerce").to_numpy(np.float64)
    t = pd.to_numeric(target, errors="coerce").to_numpy(np.float64)
    return np.abs(p - t)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[c.TARGET].notna().to_numpy()] if c.TARGET in frame else frame.iloc[:0]


def score_versions(
    served: pd.DataFrame, shadow: pd.DataFrame | None, cfg: ModelConfig
) -> tuple[str | None, dict[str, int], list[VersionScore]]:
    """(champion, predictions per version, one score per challenger) for one window or segment."""
    vc = cfg.versions
    served, shadow = _scored(served), _scored(shadow if shadow is not None else served.iloc[:0])
    rows = pd.concat([served, shadow], ignore_index=True) if len(shadow) else served
    counts = rows[c.VERSION].value_counts() if len(rows) else pd.Series(dtype=np.int64)
    per_version = {str(k): int(v) for k, v in counts.items()}
    champion = champion_of(vc, served)
    if champion is None:
        return None, per_version, []
    versions = rows[c.VERSION].to_numpy(dtype=object)
    champ = rows[versions == champion]
    shadow_versions = set(shadow[c.VERSION].unique()) if len(shadow) else set()
    challengers = [v for v in counts.index if v != champion][: vc.max_challengers]
    out = []
    for version in challengers:
        other = rows[versions == version]
        mode = Mode.SHADOW if version in shadow_versions else Mode.SPLIT
        out.append(_score_one(champion, champ, version, other, mode, cfg))
    return champion, per_version, out


def _score_one(
    champion: str, champ: pd.DataFrame, version: str, other: pd.DataFrame, mode: Mode, cfg: ModelConfig
) -> VersionScore:
    regression = cfg.task is TaskType.REGRESSION
    metric = "mae" if regression else "accuracy"
    base = {"version": version, "champion": champion, "mode": mode, "n_rows": len(other), "metric": metric}
    drift = _prediction_drift(champ, other, cfg)
    if mode is Mode.SHADOW:
        pairs = _pairs(champ, other)
        agreement = mad = None
        if len(pairs):
            if regression:
                a = pd.to_numeric(pairs["champion"], errors="coerce").to_numpy(np.float64)
                b = pd.to_numeric(pairs["challenger"], errors="coerce").to_numpy(np.float64)
                mad = float(np.nanmean(np.abs(a - b)))
            else:
                agreement = float(np.mean(_right(pairs["champion"], pairs["challenger"])))
        lab = pairs[pairs["target"].notna().to_numpy()]
        n = len(lab)
        if regression:
            e1, e2 = _abs_error(lab["champion"], lab["target"]), _abs_error(lab["challenger"], lab["target"])
            ok = np.isfinite(e1) & np.isfinite(e2)
            e1, e2, n = e1[ok], e2[ok], int(ok.sum())
            q1, q2 = (float(e1.mean()), float(e2.mean())) if n else (None, None)
            p = _t_p(stats.ttest_rel(e1, e2)) if n > 1 else None
            test = "paired_t"
        else:
            r1, r2 = _right(lab["champion"], lab["target"]), _right(lab["challenger"], lab["target"])
            q1, q2 = (float(r1.mean()), float(r2.mean())) if n else (None, None)
            p = mcnemar_exact(r1, r2) if n else None
            test = "mcnemar_exact"
        return VersionScore(**base, n_pairs=len(pairs), agreement=agreement, mean_abs_difference=mad,
                            n_champion=n, n_challenger=n, champion_quality=q1, challenger_quality=q2,
                            gain=_gain(q1, q2, regression), test=test, p_value=p, drift=drift)  # fmt: skip
    l1, l2 = _labelled(champ), _labelled(other)
    if regression:
        e1, e2 = _abs_error(l1[c.PREDICTION], l1[c.TARGET]), _abs_error(l2[c.PREDICTION], l2[c.TARGET])
        e1, e2 = e1[np.isfinite(e1)], e2[np.isfinite(e2)]
        n1, n2 = e1.size, e2.size
        q1 = float(e1.mean()) if n1 else None
        q2 = float(e2.mean()) if n2 else None
        p = _t_p(stats.ttest_ind(e1, e2, equal_var=False)) if n1 > 1 and n2 > 1 else None
        test = "welch_t"
    else:
        r1, r2 = _right(l1[c.PREDICTION], l1[c.TARGET]), _right(l2[c.PREDICTION], l2[c.TARGET])
        n1, n2 = r1.size, r2.size
        q1 = float(r1.mean()) if n1 else None
        q2 = float(r2.mean()) if n2 else None
        p = two_proportion_z(int(r1.sum()), n1, int(r2.sum()), n2) if n1 and n2 else None
        test = "two_proportion_z"
    return VersionScore(**base, n_pairs=0, agreement=None, mean_abs_difference=None, n_champion=n1,
                        n_challenger=n2, champion_quality=q1, challenger_quality=q2,
                        gain=_gain(q1, q2, regression), test=test, p_value=p, drift=drift)  # fmt: skip


def _gain(q1: float | None, q2: float | None, regression: bool) -> float | None:
    """How much better the challenger is: accuracy difference, or the MAE's relative reduction."""
    if q1 is None or q2 is None:
        return None
    if regression:
        return (q1 - q2) / q1 if q1 > 0 else (0.0 if q2 == q1 else -1.0)
    return q2 - q1


def _pairs(champ: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Requests both versions scored (first row per request id on each side): the two answers and the
    label (a request's served and shadow rows carry the same one)."""
    if c.REQUEST_ID not in champ or c.REQUEST_ID not in other:
        return pd.DataFrame({"champion": [], "challenger": [], "target": []})
    a = champ[champ[c.REQUEST_ID].notna().to_numpy()]
    b = other[other[c.REQUEST_ID].notna().to_numpy()]
    ka, kb = pd.Index(a[c.REQUEST_ID]), pd.Index(b[c.REQUEST_ID])
    if not ka.is_unique:
        a, ka = a[~ka.duplicated()], ka[~ka.duplicated()]
    if not kb.is_unique:
        b, kb = b[~kb.duplicated()], kb[~kb.duplicated()]
    idx = ka.get_indexer(kb)
    hit = idx >= 0
    a_rows, b_rows = a.iloc[idx[hit]], b[hit]
    target = a_rows[c.TARGET].to_numpy(dtype=object) if c.TARGET in a_rows else np.full(int(hit.sum()), None)
    if c.TARGET in b_rows:  # a label joined on one side only still labels the pair
        tb = b_rows[c.TARGET].to_numpy(dtype=object)
        gap = pd.isna(target)
        target = np.where(gap, tb, target)
    return pd.DataFrame(
        {
            "champion": a_rows[c.PREDICTION].to_numpy(dtype=object),
            "challenger": b_rows[c.PREDICTION].to_numpy(dtype=object),
            "target": pd.array(target, dtype=object),
        }
    )


def _prediction_drift(champ: pd.DataFrame, other: pd.DataFrame, cfg: ModelConfig) -> tuple[FeatureDrift, ...]:
    """The challenger's prediction (and score) against the champion's, by the drift registry's methods
    and decision: the champion's rows of the window are the reference."""
    from mlmon.tasks.checks.decide import DriftSpec, drift_table, numerical_test
    from mlmon.tasks.reference import fit_profile

    d = cfg.drift
    num = cfg.task is TaskType.REGRESSION
    kinds = {c.PREDICTION: Kind.NUMERICAL if num else Kind.CATEGORICAL}
    if c.SCORE in champ and c.SCORE in other and champ[c.SCORE].notna().any():
        kinds[c.SCORE] = Kind.NUMERICAL
    ref = fit_profile(champ, kinds, "champion")
    specs = {}
    for name, kind in kinds.items():
        if kind is Kind.NUMERICAL:
            specs[name] = DriftSpec(kind, numerical_test(d, ref.columns.get(name)), d.numerical_effect,
                                    d.numerical_threshold)  # fmt: skip
        else:
            specs[name] = DriftSpec(kind, d.categorical_test, d.categorical_effect, d.categorical_threshold)
    return tuple(drift_table(ref, other, specs, d))


# --------------------------------------------------------------------------- decision


def decide_version(s: VersionScore, vc: VersionsConfig, segment: str = ALL) -> tuple[Verdict, CheckResult]:
    """The verdict on one challenger: worse (fail), better or indistinguishable (pass), insufficient (warn)."""
    label = f"{s.version} vs champion {s.champion} ("
    label += f"shadow, {s.n_pairs:,} paired requests" if s.mode is Mode.SHADOW else "split traffic"
    if s.agreement is not None:
        label += f", agreement {s.agreement:.1%}"
    label += ")"
    n = min(s.n_champion, s.n_challenger)
    if n < vc.min_rows or s.gain is None or s.p_value is None:
        what = "labelled pairs" if s.mode is Mode.SHADOW else "labelled rows on one side"
        msg = f"insufficient data: {label}: {n:,} {what} < min_rows {vc.min_rows}"
        return Verdict.INSUFFICIENT, _check(Status.WARN, s.gain, vc, msg, s.version, segment)
    q = f"{s.metric} {_fmt(s.challenger_quality, s.metric)} vs {_fmt(s.champion_quality, s.metric)}"
    diff = f"{s.gain:+.2%}" + (" of the champion's MAE" if s.metric == "mae" else "")
    evidence = f"{s.test} p={s.p_value:.2g}"
    significant = s.p_value < vc.alpha and abs(s.gain) >= vc.min_effect
    if significant and s.gain < 0:
        msg = f"challenger worse: {label}: {q} ({diff}), {evidence} < {vc.alpha:g}, |Δ| ≥ {vc.min_effect:g}"
        return Verdict.WORSE, _check(Status.FAIL, s.gain, vc, msg, s.version, segment)
    if significant:
        msg = f"challenger better: {label}: {q} ({diff}), {evidence} < {vc.alpha:g}, |Δ| ≥ {vc.min_effect:g}"
        return Verdict.BETTER, _check(Status.PASS, s.gain, vc, msg, s.version, segment)
    msg = (
        f"indistinguishable at this sample size: {label}: {q} ({diff}) on {n:,} labelled rows, {evidence}"
        + (f" (|Δ| < {vc.min_effect:g})" if s.p_value < vc.alpha else f" ≥ {vc.alpha:g}")
    )
    return Verdict.INDISTINGUISHABLE, _check(Status.PASS, s.gain, vc, msg, s.version, segment)


def _fmt(v: float | None, metric: str) -> str:
    return "n/a" if v is None else (f"{v:.3f}" if metric == "accuracy" else f"{v:.4g}")


def _check(
    status: Status, value: float | None, vc: VersionsConfig, msg: str, version: str, seg: str
) -> CheckResult:
    return CheckResult("version_quality", Category.VERSIONS, status, value, vc.min_effect, msg, version, seg)


def decide_drift(s: VersionScore, segment: str = ALL) -> CheckResult:
    """A challenger whose predictions are distributed unlike the champion's warns (a different
    distribution is not by itself worse: the quality verdict decides that)."""
    drifted = [d for d in s.drift if d.status is Status.FAIL]
    short = [d for d in s.drift if d.status is Status.WARN]
    value = max((d.effect for d in s.drift if d.effect is not None), default=None)
    label = c.column_label
    if drifted:
        status = Status.WARN
        msg = f"{s.version} predicts unlike champion {s.champion}: " + "; ".join(
            f"{label(d.feature)}: {d.message}" for d in drifted
        )
    elif short and len(short) == len(s.drift):
        status = Status.WARN
        msg = f"insufficient data: {s.version} vs {s.champion}: {short[0].message}"
    else:
        status = Status.PASS
        msg = f"{s.version} predicts like champion {s.champion}: " + "; ".join(
            f"{label(d.feature)}: {d.message}" for d in s.drift
        )
    return CheckResult(
        "version_prediction_drift", Category.VERSIONS, status, value, None, msg, s.version, segment
    )


def version_checks(
    served: pd.DataFrame, shadow: pd.DataFrame | None, cfg: ModelConfig, segment: str = ALL
) -> Findings:
    """The family on one window or segment: per challenger a quality verdict and a prediction-drift
    check; metrics per version (feature = the version name)."""
    vc = cfg.versions
    champion, per_version, scores = score_versions(served, shadow, cfg)
    checks: list[CheckResult] = []
    metrics = [Metric("version_rows", float(n), v, segment) for v, n in per_version.items()]
    if champion is None:
        return checks, metrics
    metrics.append(Metric("version_champion", 1.0, champion, segment))
    if scores and champion not in per_version:
        msg = f"insufficient data: champion {champion} has no predictions in this window"
        checks.append(CheckResult("version_quality", Category.VERSIONS, Status.WARN, None, vc.min_effect, msg,
                                  champion, segment))  # fmt: skip
        return checks, metrics
    metrics += _quality_by_version(served, shadow, cfg, segment)
    for s in scores:
        verdict, check = decide_version(s, vc, segment)
        checks += [check, decide_drift(s, segment)]
        v, shadow_mode = s.version, s.mode is Mode.SHADOW
        found = [
            Metric("version_agreement", _num(s.agreement), v, segment),
            Metric("version_mean_abs_difference", _num(s.mean_abs_difference), v, segment),
            Metric("version_paired_requests", float(s.n_pairs) if shadow_mode else np.nan, v, segment),
            Metric("version_gain", _num(s.gain), v, segment),
            Metric("version_p_value", _num(s.p_value), v, segment),
            Metric("version_verdict", _num(VERDICT_VALUE.get(verdict)), v, segment),
            Metric("version_drift_effect", _num(check_value(s.drift, c.PREDICTION)), v, segment),
        ]
        metrics += [m for m in found if np.isfinite(m.value)]  # a number that does not apply is no row
    return checks, metrics


def _num(x: float | None) -> float:
    return np.nan if x is None else float(x)


def check_value(drift: tuple[FeatureDrift, ...], column: str) -> float | None:
    return next((d.effect for d in drift if d.feature == column and d.effect is not None), None)


def _quality_by_version(
    served: pd.DataFrame, shadow: pd.DataFrame | None, cfg: ModelConfig, segment: str
) -> list[Metric]:
    """Accuracy (or MAE) and labelled rows of every version on all its labelled rows in the window."""
    parts = [_labelled(_scored(served))]
    if shadow is not None and len(shadow):
        parts.append(_labelled(_scored(shadow)))
    lab = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    out = []
    regression = cfg.task is TaskType.REGRESSION
    for version, part in lab.groupby(c.VERSION, sort=True):
        out.append(Metric("version_labelled", float(len(part)), str(version), segment))
        if regression:
            err = _abs_error(part[c.PREDICTION], part[c.TARGET])
            err = err[np.isfinite(err)]
            if err.size:
                out.append(Metric("version_mae", float(err.mean()), str(version), segment))
        else:
            out.append(Metric("version_accuracy", float(_right(part[c.PREDICTION], part[c.TARGET]).mean()),
                              str(version), segment))  # fmt: skip
    return out


@method(
    "champion_challenger",
    category=Category.VERSIONS,
    config="versions",
    example={"champion": "v1"},
    labels=True,
)
def champion_challenger(inp: FamilyInput) -> Findings:
    """Every challenger version against the champion: agreement, prediction drift, a quality verdict."""
    return version_checks(inp.frame, inp.shadow, inp.cfg, segment=inp.segment)
