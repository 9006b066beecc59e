"""Evidently presets on small window frames: with and without labels, sampling, empty and hostile windows."""

from __future__ import annotations

import doctest
import json
import re

import pytest

from mlmon.tasks import contract as c
from mlmon.tasks.checks import presets
from mlmon.tasks.checks.presets import EvidentlyOutput, run_evidently
from tests import factories as fx

DASHBOARD = "window.drawDashboard("


def _data_json(html: str) -> dict:
    """The dashboard JSON Evidently's page embeds (parsed, so the test sees what the browser will)."""
    m = re.search(r"var (metric_\w+) = (\{.*?\});\n", html, re.S)
    assert m, "no embedded dashboard data"
    return json.loads(m.group(2))


def _titles(html: str) -> list[str]:
    return [w["title"] for w in _data_json(html)["widgets"]]


def test_doctests() -> None:
    assert doctest.testmod(presets).failed == 0


def test_binary_window_with_labels_gets_data_and_classification_parts() -> None:
    ref, cur = fx.frame(400, seed=1), fx.frame(300, seed=2, shift=1.0, labelled=0.5)
    out = run_evidently(ref, cur, fx.config())
    assert isinstance(out, EvidentlyOutput)
    assert out.errors == ()
    assert (out.rows_used, out.sampled, out.reference_rows, out.notes) == (300, False, 400, ())
    assert out.seconds > 0
    n_labelled = int(cur[c.TARGET].notna().sum())
    assert _titles(out.html) == [
        "Data drift and summary: 300 rows",
        f"Classification quality: {n_labelled:,} labelled rows",
    ]
    assert DASHBOARD in out.html
    # our reserved columns reach Evidently under friendly names; no "__" column leaks into its view
    data = json.dumps(_data_json(out.html))
    assert '"income"' in data and '"prediction"' in data and '"score"' in data
    assert "__prediction" not in data and "__score" not in data


def test_window_without_labels_has_no_quality_part() -> None:
    ref, cur = fx.frame(400, seed=1), fx.frame(300, seed=2, labelled=0.0)
    out = run_evidently(ref, cur, fx.config())
    assert out.errors == ()
    assert _titles(out.html) == ["Data drift and summary: 300 rows"]
    assert out.notes == (
        "Classification preset skipped: no labelled row with a prediction in the window "
        "(labels may not have arrived yet).",
    )
    assert out.notes[0] in out.html


def test_edge_windows_become_notes_not_errors() -> None:
    ref, cur = fx.frame(300, seed=1), fx.frame(200, seed=2, labelled=0.5)
    cur["age"] = float("nan")  # a feature nobody logged today
    cur["plan"] = None
    cur[c.TARGET] = cur[c.TARGET].where(cur[c.TARGET].isna(), "stay")
    cur[c.PREDICTION] = "stay"  # a single class: Evidently's binary metrics need two
    out = run_evidently(ref, cur, fx.config())
    assert out.errors == ()
    assert out.notes[0].endswith(": age, plan.")
    assert "single class (stay)" in out.notes[1]
    assert _titles(out.html) == ["Data drift and summary: 200 rows"]


def test_reference_without_labels_is_left_out_of_the_quality_part() -> None:
    ref, cur = fx.frame(300, seed=1, labelled=0.0), fx.frame(200, seed=2, labelled=0.5)
    out = run_evidently(ref, cur, fx.config())
    assert out.errors == ()
    assert out.notes == (
        "Classification preset shown without the reference: it has no usable labelled rows.",
    )
    assert len(_titles(out.html)) == 2


def test_task_none_runs_only_the_data_presets() -> None:
    ref, cur = fx.frame(300, seed=1), fx.frame(200, seed=2)
    out = run_evidently(ref, cur, fx.config(task="none", classes=None, positive_class=None))
    assert out.errors == ()
    assert _titles(out.html) == ["Data drift and summary: 200 rows"]


@pytest.mark.parametrize(("task", "part"), [("regression", "Regression"), ("multiclass", "Classification")])
def test_regression_and_multiclass(task: str, part: str) -> None:
    ref, cur = fx.frame(300, seed=1, task=task), fx.frame(200, seed=2, task=task, labelled=0.7)
    out = run_evidently(ref, cur, fx.config(task=task))
    assert out.errors == ()
    titles = _titles(out.html)
    assert len(titles) == 2 and titles[1].startswith(f"{part} quality: ")


def test_sampling_above_max_rows_is_seeded() -> None:
    cfg = fx.config(evidently={"max_rows": 150, "seed": 7})
    ref, cur = fx.frame(400, seed=1), fx.frame(300, seed=2, labelled=0.0)
    out = run_evidently(ref, cur, cfg)
    assert out.errors == ()
    assert (out.rows_used, out.sampled, out.reference_rows) == (150, True, 150)
    assert _titles(out.html) == ["Data drift and summary: 150 rows (seeded sample of 300)"]
    # the same seed picks the same rows; another seed picks others
    a, _ = presets.sample(cur, 150, 7)
    b, _ = presets.sample(cur, 150, 7)
    other, _ = presets.sample(cur, 150, 8)
    assert a.index.equals(b.index) and not a.index.equals(other.index)
    assert a.index.is_monotonic_increasing  # time order kept


def test_within_max_rows_nothing_is_sampled() -> None:
    ref, cur = fx.frame(200, seed=1), fx.frame(100, seed=2, labelled=0.0)
    out = run_evidently(ref, cur, fx.config(evidently={"max_rows": 100}))
    assert (out.rows_used, out.sampled) == (100, False)


def test_empty_window_gives_a_note_not_a_crash() -> None:
    out = run_evidently(fx.frame(200, seed=1), fx.frame(0), fx.config())
    assert (out.rows_used, out.sampled, out.errors) == (0, False, ())
    assert "no rows" in out.html and DASHBOARD not in out.html
    assert out.html.lstrip().startswith("<!DOCTYPE html>")


def test_hostile_category_value_cannot_close_the_data_script() -> None:
    """Evidently's own page embeds values with json.dumps in <script>: ours escapes < > & there."""
    ref, cur = fx.frame(300, seed=1), fx.frame(200, seed=2, labelled=0.0)
    cur.loc[cur.index[:20], "plan"] = fx.HOSTILE
    out = run_evidently(ref, cur, fx.config())
    assert out.errors == ()
    assert fx.HOSTILE not in out.html
    assert "</script><script>" not in out.html.replace(" ", "")
    assert "\\u003cscript\\u003edocument.title" in out.html
    # ... and the value is intact once the browser parses the JSON
    assert fx.HOSTILE in json.dumps(_data_json(out.html), ensure_ascii=False)


def test_a_failing_part_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> list[object]:
        raise ValueError("boom <b>")

    monkeypatch.setattr(presets, "_quality_widgets", broken)
    out = run_evidently(fx.frame(300, seed=1), fx.frame(200, seed=2, labelled=0.5), fx.config())
    assert len(out.errors) == 1 and "ValueError: boom <b>" in out.errors[0]
    assert _titles(out.html) == ["Data drift and summary: 200 rows"]  # the other part still renders
    assert "boom &lt;b&gt;" in out.html and "boom <b>" not in out.html


def test_everything_failing_still_gives_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> list[object]:
        raise RuntimeError("evidently broke")

    monkeypatch.setattr(presets, "_data_widgets", broken)
    out = run_evidently(fx.frame(300, seed=1), fx.frame(200, seed=2, labelled=0.0), fx.config())
    assert out.errors and DASHBOARD not in out.html
    assert "could not compute" in out.html


def test_script_json_round_trips() -> None:
    value = {"a": "</script><!-- & -->", "b": [1.5, None, "x>y"]}
    text = presets.script_json(json.dumps(value))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def _hostile(cur: object) -> object:
    """NUL bytes in a category, labels outside `classes`, two 1e308 values (issue 8, point 11)."""
    cur = cur.copy()  # type: ignore[attr-defined]
    cur.loc[cur.index[:3], "plan"] = "pro\x00x"
    labelled = cur.index[cur[c.TARGET].notna()]
    cur.loc[labelled[:2], c.TARGET] = "maybe"
    cur.loc[cur.index[:2], "income"] = 1e308
    return cur


def test_hostile_values_leave_evidently_whole_and_say_what_was_left_out() -> None:
    ref, cur = fx.frame(400, seed=1), _hostile(fx.frame(300, seed=2, labelled=0.5))
    out = run_evidently(ref, cur, fx.config())
    assert out.errors == ()
    assert any("income (2)" in n for n in out.notes)
    assert any("2 labelled rows left out" in n and "'maybe'" not in n for n in out.notes)
    assert [t.split(":")[0] for t in _titles(out.html)] == [
        "Data drift and summary",
        "Classification quality",
    ]


def test_mlmon_checks_are_unaffected_by_what_breaks_evidently() -> None:
    from mlmon.tasks.evaluate import evaluate, profile_kinds
    from mlmon.tasks.extract import Batch
    from mlmon.tasks.reference import fit_profile

    cfg = fx.config()
    ref, clean = fx.frame(2000, seed=1), fx.frame(1000, seed=2, labelled=0.5)
    profile = fit_profile(ref, profile_kinds(cfg), "h")
    a = evaluate(cfg, profile, Batch(frame=clean), fx.window())
    b = evaluate(cfg, profile, Batch(frame=_hostile(clean)), fx.window())
    untouched = [f for f in cfg.features if f not in ("plan", "income")]
    status = {(d.feature, d.segment): d.status for d in a.drift if d.feature in untouched}
    assert status == {(d.feature, d.segment): d.status for d in b.drift if d.feature in untouched}
    income = next(d for d in b.drift if d.feature == "income" and d.segment == "all")
    assert income.effect is not None and income.effect < 1


def test_a_failure_anywhere_in_evidently_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> str:  # fault injection: rendering itself fails
        raise RuntimeError("template changed")

    monkeypatch.setattr(presets, "render_page", broken)
    out = run_evidently(fx.frame(300, seed=1), fx.frame(300, seed=2), fx.config())
    assert out.errors == ("Evidently: RuntimeError: template changed",)
    assert "Evidently could not compute this window" in out.html and "template changed" in out.html
