"""The demo model ``demo_classifier``: a churn classifier trained at run time on synthetic customers.

Nothing is downloaded. Customers are drawn from fixed distributions with a seeded generator, and churn
follows a known logistic function of the features (:func:`churn_probability`) plus Bernoulli noise, so
the best possible accuracy is known (about 0.8) and a drifted population really changes the churn rate.

Two model versions are real scikit-learn pipelines (impute + scale numbers, one-hot categories with
unknown categories ignored, as a serving model would):

* ``v1``: logistic regression — misses the U-shaped effect of age;
* ``v2``: histogram gradient boosting trained on more data — picks it up, so it is slightly better;
* ``v3``: v1's recipe retrained on other customers — the simulator's shadow challenger ``v3-shadow``,
  as good as v1 (about 97 % agreement) unless its inputs are degraded.

>>> import numpy as np
>>> frame = customers(np.random.default_rng(0), 3)
>>> list(frame.columns) == list(FEATURES)
True
>>> model = train("v1", seed=0)
>>> labels, p_churn = predict(model, frame)
>>> sorted(set(labels) | set(CLASSES)) == sorted(CLASSES)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

MODEL_NAME = "demo_classifier"
CLASSES = ("stay", "churn")  # order of the probability columns
POSITIVE = "churn"

NUMERICAL = ("age", "income", "tenure_months", "sessions_last_7d", "avg_session_minutes", "support_tickets")
CATEGORICAL = ("plan", "country", "device")
FEATURES = NUMERICAL + CATEGORICAL

PLANS = {"basic": 0.55, "pro": 0.35, "enterprise": 0.10}
COUNTRIES = {"US": 0.40, "DE": 0.15, "GB": 0.15, "FR": 0.10, "IN": 0.10, "BR": 0.10}
DEVICES = {"mobile": 0.55, "desktop": 0.35, "tablet": 0.10}

# Distribution parameters; drift shifts are expressed in these σ so "+1σ" means the same everywhere.
INCOME_LOG_MEAN, INCOME_LOG_SIGMA = float(np.log(50_000)), 0.5  # lognormal: median 50k, mean ≈ 57k
SESSIONS_MEAN = 5.0  # Poisson: σ = √5 ≈ 2.2

# True churn model: logit = intercept + Σ effects. Tuned so churn ≈ 30% and Bayes accuracy ≈ 0.8.
_INTERCEPT = -1.5
_PLAN_EFFECT = {"basic": 0.6, "pro": 0.0, "enterprise": -1.0}
_DEVICE_EFFECT = {"mobile": 0.25, "desktop": 0.0, "tablet": 0.1}
_COUNTRY_EFFECT = {"US": 0.0, "DE": -0.15, "GB": 0.0, "FR": 0.1, "IN": 0.3, "BR": 0.2}

V1_TRAIN_ROWS, V2_TRAIN_ROWS = 4_000, 8_000


def customers(rng: np.random.Generator, n: int, shift: float | np.ndarray = 0.0) -> pd.DataFrame:
    """``n`` synthetic customers, one column per feature (numbers as float64, categories as str).

    ``shift`` (a scalar or one value per row, in σ of the clean population) moves ``income`` (in log
    space) and ``sessions_last_7d`` up: the drift episode of the simulator.
    """
    shift = np.broadcast_to(np.asarray(shift, dtype=float), (n,))
    age = np.clip(np.round(rng.normal(40, 12, n)), 18, 85)
    income = np.round(np.exp(rng.normal(INCOME_LOG_MEAN + shift * INCOME_LOG_SIGMA, INCOME_LOG_SIGMA)), 2)
    tenure = np.clip(np.floor(rng.gamma(2.0, 12.0, n)), 0, 120)
    sessions = rng.poisson(SESSIONS_MEAN + shift * np.sqrt(SESSIONS_MEAN)).astype(float)
    minutes = np.round(rng.gamma(3.0, 4.0, n), 2)
    tickets = rng.poisson(1.2, n).astype(float)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "tenure_months": tenure,
            "sessions_last_7d": sessions,
            "avg_session_minutes": minutes,
            "support_tickets": tickets,
            "plan": _choice(rng, PLANS, n),
            "country": _choice(rng, COUNTRIES, n),
            "device": _choice(rng, DEVICES, n),
        }
    )


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    return rng.choice(np.array(list(weights), dtype=object), size=n, p=list(weights.values()))


def churn_probability(frame: pd.DataFrame) -> np.ndarray:
    """The true P(churn) of each customer (the function the models try to learn)."""
    z = (
        _INTERCEPT
        + 1.0 * (np.minimum(frame["support_tickets"], 4) - 1.2) / 1.1  # saturates: a 5th ticket adds nothing
        - 1.0 * (frame["tenure_months"] - 24) / 17
        - 0.8 * (frame["sessions_last_7d"] - SESSIONS_MEAN) / np.sqrt(SESSIONS_MEAN)
        - 0.5 * (frame["avg_session_minutes"] - 12) / 7
        - 0.6 * (np.log(frame["income"]) - INCOME_LOG_MEAN) / INCOME_LOG_SIGMA
        + 0.6 * (((frame["age"] - 40) / 12) ** 2 - 1)  # U-shaped: the young and the old churn more
        + frame["plan"].map(_PLAN_EFFECT).fillna(0.0)
        + frame["device"].map(_DEVICE_EFFECT).fillna(0.0)
        + frame["country"].map(_COUNTRY_EFFECT).fillna(0.0)
    )
    return 1.0 / (1.0 + np.exp(-z.to_numpy(dtype=float)))


def sample_churn(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    """Observed outcomes: the class label of each customer drawn from :func:`churn_probability`."""
    churned = rng.random(len(frame)) < churn_probability(frame)
    return np.where(churned, POSITIVE, CLASSES[0]).astype(object)


def train(version: str, seed: int) -> Pipeline:
    """Fit model ``version`` (``"v1"``, ``"v2"`` or ``"v3"``) on freshly generated clean customers."""
    if version not in ("v1", "v2", "v3"):
        raise ValueError(f"unknown demo model version {version!r}; known: v1, v2, v3")
    rng = np.random.default_rng([seed, {"v1": 1, "v2": 2, "v3": 3}[version]])
    frame = customers(rng, V2_TRAIN_ROWS if version == "v2" else V1_TRAIN_ROWS)
    y = sample_churn(rng, frame)
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(NUMERICAL)),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)),
        ]
    )
    estimator = (
        LogisticRegression(max_iter=1_000)
        if version != "v2"
        else HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, random_state=seed)
    )
    # One thread: the models are small, and OpenMP threads spinning on a busy machine turned a 0.5 s fit
    # into 13 s (measured on 2 shared cores).
    with threadpool_limits(1):
        return Pipeline([("prep", prep), ("model", estimator)]).fit(frame[list(FEATURES)], y)


def predict(model: Pipeline, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels and P(churn) for ``frame`` (missing numbers as NaN, unseen categories allowed)."""
    with threadpool_limits(1):
        proba = model.predict_proba(frame[list(FEATURES)])
    p_churn = proba[:, list(model.classes_).index(POSITIVE)]
    return np.where(p_churn >= 0.5, POSITIVE, CLASSES[0]).astype(object), p_churn
