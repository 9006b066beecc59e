"""One registry of window checks: built-in KPIs, your own business metrics, and later families.

A window check is a decorated pure function of the window (its frame, labels, and the reference) that
returns a value — or several, by name — and never decides anything: thresholds from the model's
``checks:`` config turn values into statuses here, in one place (statistic apart from decision).
Checks are found three ways, all landing in the same :data:`CHECKS` dict:

* built in (``mlmon.tasks.checks.kpi``: ``mean``, ``rate``, ``ratio``, ``per_prediction``);
* a package's entry point in the group ``mlmon.checks`` (``my_kpis = my_pkg.kpis`` imports a module whose
  decorators register; ``revenue = my_pkg.kpis:revenue`` may also name a plain function);
* ``function: my_pkg.kpis:revenue`` in the config (imported when the config loads).

>>> @register("doctest_share_big", example={"column": "num_a"})
... def share_big(window: WindowInput, column: str, limit: float = 10.0) -> float:
...     '''Share of rows whose ``column`` exceeds ``limit``.'''
...     x = window.frame[column].dropna()
...     return float((x > limit).mean()) if len(x) else float("nan")
>>> import pandas as pd
>>> w = WindowInput(frame=pd.DataFrame({"num_a": [1.0, 20.0, 30.0, None]}))
>>> get_check("doctest_share_big")(w, column="num_a")
0.6666666666666666
>>> decide(0.67, ThresholdSpec(max=0.5)).value
'fail'
>>> del CHECKS["doctest_share_big"]
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlmon.tasks.checks.outcome import ALL, Category, CheckResult, Metric, Status
from mlmon.tasks.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from mlmon.tasks.config import CheckSpec, ModelConfig
    from mlmon.tasks.profile import Profile

ENTRY_POINT_GROUP = "mlmon.checks"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Value = float | int | None
Returned = Value | Mapping[str, Value]
"""A check returns one number, or several by name (each becomes its own check row, ``feature`` = name)."""


@dataclass(frozen=True)
class WindowInput:
    """What a window check sees: the window's (or segment's) frame and the reference.

    ``frame`` holds the features by their configured names, the business fields mapped in
    ``business_fields`` by theirs, and the reserved columns (see :mod:`mlmon.tasks.contract`) — use the
    properties below rather than their names.
    """

    frame: pd.DataFrame
    reference: pd.DataFrame | None = None
    profile: Profile | None = None
    segment: str = ALL
    task: str = "none"

    @property
    def predictions(self) -> pd.Series:
        """The model's predictions (label or number) of every row."""
        from mlmon.tasks import contract as c

        return self.frame[c.PREDICTION] if c.PREDICTION in self.frame else _empty(self.frame)

    @property
    def labels(self) -> pd.Series:
        """The ground truth of every row (missing where no label has arrived)."""
        from mlmon.tasks import contract as c

        return self.frame[c.TARGET] if c.TARGET in self.frame else _empty(self.frame)

    @property
    def scores(self) -> pd.Series:
        """p(positive class) for binary models, the top probability for multiclass ones."""
        from mlmon.tasks import contract as c

        return self.frame[c.SCORE] if c.SCORE in self.frame else _empty(self.frame)

    @property
    def labelled(self) -> pd.DataFrame:
        """The rows whose label has arrived."""
        return self.frame[self.labels.notna().to_numpy()]


def _empty(frame: pd.DataFrame) -> pd.Series:
    import pandas as pd

    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


CheckFunc = Callable[..., Returned]


@dataclass(frozen=True)
class RegisteredCheck:
    """A registered window check: its stable name, category, function and an example of its params.

    ``example`` holds parameters for the contract test's frame (columns ``num_a``, ``num_b``, ``flag``,
    ``cat``; see tests/checks/test_registry_contract.py): needed when the function has required
    parameters.
    """

    name: str
    func: CheckFunc
    category: Category
    example: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __call__(self, window: WindowInput, **params: Any) -> Returned:
        return self.func(window, **params)

    def bind(self, params: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the parameter when ``params`` do not fit the function."""
        sig = inspect.signature(self.func)
        try:
            sig.bind(None, **params)
        except TypeError as e:
            allowed = [p for p in list(sig.parameters)[1:]]
            raise ValueError(f"params of check {self.name!r}: {e}; parameters: {allowed}") from None


CHECKS: dict[str, RegisteredCheck] = {}


def register(
    name: str,
    *,
    category: Category | str = Category.CUSTOM,
    example: Mapping[str, Any] | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    """Register ``func(window: WindowInput, **params)`` as the window check ``name`` (stable snake_case,
    stored as-is in YAML and Postgres)."""
    if not _NAME.match(name):
        raise ValueError(f"check names are snake_case, got {name!r}")
    cat = Category(category)

    def deco(func: CheckFunc) -> CheckFunc:
        _add(RegisteredCheck(name, func, cat, dict(example or {}), _first_line(func)))
        return func

    return deco


def _add(reg: RegisteredCheck) -> None:
    old = CHECKS.get(reg.name)
    if old is not None and _same(old.func, reg.func):
        return  # the same function seen again (a module imported under a second name, an entry point)
    if old is not None:
        raise ValueError(f"check {reg.name!r} is registered twice: {_where(old.func)} and {_where(reg.func)}")
    CHECKS[reg.name] = reg
    reg.func.__mlmon_check__ = reg.name  # type: ignore[attr-defined]


def _same(a: CheckFunc, b: CheckFunc) -> bool:
    return a is b or (_where(a) == _where(b))


def _where(func: CheckFunc) -> str:
    return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"


def _first_line(func: CheckFunc) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


# --------------------------------------------------------------------------- resolving names

_discovered = False


def discover(refresh: bool = False) -> dict[str, RegisteredCheck]:
    """Load the built-in checks and every ``mlmon.checks`` entry point (once per process, or again
    with ``refresh`` after a package was installed)."""
    global _discovered
    if refresh or not _discovered:
        from importlib.metadata import entry_points

        importlib.import_module("mlmon.tasks.checks.kpi")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as e:  # a broken plugin names itself instead of breaking every config
                raise ConfigError(
                    f"entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP}) failed to import: "
                    f"{type(e).__name__}: {e}"
                ) from e
            if callable(obj) and not inspect.isclass(obj) and not hasattr(obj, "__mlmon_check__"):
                _add(RegisteredCheck(ep.name, obj, Category.CUSTOM, {}, _first_line(obj)))
        _discovered = True
    return CHECKS


def get_check(name: str) -> RegisteredCheck:
    """Resolve a registered name or a ``module:function`` reference; unknown names list the known ones."""
    discover()
    if ":" in name:
        return _import_check(name)
    reg = CHECKS.get(name)
    if reg is None:
        raise ConfigError(
            f"unknown check {name!r}; known checks: {', '.join(sorted(CHECKS)) or '(none)'} "
            f"(or name a function as module:function)"
        )
    return reg


def _import_check(ref: str) -> RegisteredCheck:
    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"check {ref!r}: cannot import module {module!r}: {e}") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"check {ref!r}: module {module!r} has no {attr!r}")
    if not callable(obj):
        raise ConfigError(f"check {ref!r} is not a function")
    registered = getattr(obj, "__mlmon_check__", None)
    if registered is not None:
        return CHECKS[registered]
    if ref not in CHECKS:  # a plain function: registered under its reference
        CHECKS[ref] = RegisteredCheck(ref, obj, Category.CUSTOM, {}, _first_line(obj))
    return CHECKS[ref]


# --------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class ThresholdSpec:
    """Limits a value must stay within: outside ``min``/``max`` fails, outside ``warn_*`` warns."""

    min: float | None = None
    max: float | None = None
    warn_min: float | None = None
    warn_max: float | None = None


def decide(value: float | None, limits: ThresholdSpec | CheckSpec) -> Status:
    """The status of one value. No value (None/NaN: nothing to compute it on) warns."""
    if value is None or not math.isfinite(value):
        return Status.WARN
    if (limits.min is not None and value < limits.min) or (limits.max is not None and value > limits.max):
        return Status.FAIL
    if (limits.warn_min is not None and value < limits.warn_min) or (
        limits.warn_max is not None and value > limits.warn_max
    ):
        return Status.WARN
    return Status.PASS


def _threshold(value: float | None, spec: CheckSpec, status: Status) -> float | None:
    """The limit the message and the stored row cite: the one crossed, else the nearest configured."""
    lows = [x for x in (spec.min, spec.warn_min) if x is not None]
    highs = [x for x in (spec.max, spec.warn_max) if x is not None]
    if value is not None and math.isfinite(value):
        if status is Status.FAIL:
            return spec.min if spec.min is not None and value < spec.min else spec.max
        if status is Status.WARN:
            return spec.warn_min if spec.warn_min is not None and value < spec.warn_min else spec.warn_max
    return (lows or highs or [None])[0]


def _message(name: str, value: float | None, spec: CheckSpec, status: Status) -> str:
    if value is None or not math.isfinite(value):
        return f"{name}: no value for this window (nothing to compute it on)"
    bounds = []
    if spec.min is not None:
        bounds.append(f"≥ {spec.min:g}")
    if spec.max is not None:
        bounds.append(f"≤ {spec.max:g}")
    limits = " and ".join(bounds) if bounds else "no fail limit"
    verdict = {
        Status.PASS: "within",
        Status.WARN: "warning: outside the warn limits of",
        Status.FAIL: "outside",
    }
    return f"{name} = {value:.6g}, {verdict[status]} {limits}"


# --------------------------------------------------------------------------- running a model's checks


def window_checks(
    cfg: ModelConfig,
    frame: pd.DataFrame,
    *,
    reference: pd.DataFrame | None = None,
    profile: Profile | None = None,
    segment: str = ALL,
) -> tuple[list[CheckResult], list[Metric]]:
    """Every check configured under the model's ``checks:``, on one window (or segment).

    A check that raises gets status ``error`` with its exception as the message; the other checks (and
    the rest of the window) are unaffected. Each value is also published as a metric named after the
    check.
    """
    checks: list[CheckResult] = []
    metrics: list[Metric] = []
    if not cfg.checks:
        return checks, metrics
    window = WindowInput(frame, reference, profile, segment, cfg.task.value)
    for name, spec in cfg.checks.items():
        reg = get_check(spec.function or name)
        try:
            values = _values(reg(window, **spec.params))
        except Exception as e:  # user code: its failure is this check's result, never the window's
            checks.append(CheckResult(name, reg.category, Status.ERROR, None, None, _error(e), "", segment))
            continue
        for feature, value in values.items():
            status = decide(value, spec)
            checks.append(
                CheckResult(
                    name, reg.category, status, value, _threshold(value, spec, status),
                    _message(name if not feature else f"{name}[{feature}]", value, spec, status),
                    feature, segment,
                )
            )  # fmt: skip
            if value is not None:
                metrics.append(Metric(name, value, feature, segment))
    return checks, metrics


def _values(returned: Returned) -> dict[str, float | None]:
    """``{"": value}`` for one number, ``{name: value}`` for several; non-finite values become None."""
    raw = dict(returned) if isinstance(returned, Mapping) else {"": returned}
    out: dict[str, float | None] = {}
    for k, v in raw.items():
        if v is not None and not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            raise TypeError(f"a check returns numbers, got {type(v).__name__} for {k or 'its value'!r}")
        f = None if v is None else float(v)
        out[str(k)] = f if f is not None and math.isfinite(f) else None
    return out


def _error(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 500 else text[:497] + "..."
