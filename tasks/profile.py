"""The fitted reference profile: everything computed once from the reference and reused by every window.

Fit once, score many: sorted values (exact KS / Wasserstein against any window), quantile bin edges and
their counts (PSI, Jensen–Shannon, KL), category counts (chi-square), ranges, missing shares, and the
reference's own model-quality metrics. ``mlmon.tasks.reference`` fits and caches it, keyed by the content hash
of the reference file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlmon.tasks.config import Kind

PROFILE_VERSION = 3  # bump when the fitted content changes, so cached profiles are refitted


@dataclass(frozen=True)
class NumericalProfile:
    kind = Kind.NUMERICAL
    sorted_values: np.ndarray  # float64, finite values only, ascending
    n_missing: int  # NaN / None in the reference
    mean: float
    std: float  # population std (ddof=0); used to norm the Wasserstein distance
    min: float
    max: float
    quantiles: dict[float, float]  # e.g. {0.01: …, 0.5: …, 0.99: …}
    bin_edges: np.ndarray  # interior edges for binned methods (len = n_bins - 1), from reference quantiles
    bin_counts: np.ndarray  # reference counts per bin (len = n_bins)
    n_distinct: int = 0  # distinct finite values: decides once whether the column is discrete (count-like)

    @property
    def n(self) -> int:
        return int(self.sorted_values.size)

    @property
    def missing_share(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0


@dataclass(frozen=True)
class CategoricalProfile:
    kind = Kind.CATEGORICAL
    categories: tuple[str, ...]  # sorted
    counts: np.ndarray  # int64, aligned with categories
    n_missing: int

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def missing_share(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0


ColumnProfile = NumericalProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    reference_hash: str
    n_rows: int
    columns: dict[str, ColumnProfile]  # features and the reserved prediction/score columns present
    performance: dict[str, float] = field(default_factory=dict)  # reference model-quality metrics
    version: int = PROFILE_VERSION
    # what each enabled model-health method fitted on the reference, by method name:
    # (its settings key, the fitted state); see tasks/checks/families.py
    fitted: dict[str, tuple[str, object]] = field(default_factory=dict)
