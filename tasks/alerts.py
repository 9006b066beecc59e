"""Alerts: announce a failing window once, on every configured channel.

Two channels, both deduplicated per (model, window) in ``mlmon.alerts``:

* ``prefect-event``: the Prefect event ``mlmon.window.failed`` (resource ``mlmon.model.<model>``) with
  the model, window, failed checks and report link in its payload. ``deployments/automations.yaml``
  (installed by ``mlmon alerts install``) turns it into a notification; any other Prefect automation
  can react to it too.
* ``webhook``: a direct, Slack-compatible JSON POST (``{"text": ..., "blocks": [...]}``) to the URL in
  the environment variable ``alerts.webhook_env`` or the Prefect Secret block ``alerts.webhook_secret``.

Alerts follow incidents (:mod:`mlmon.tasks.incidents`) when the flow gives them: an alert says which
incidents opened, worsened or resolved since the previous window, or are still open after
``alerts.remind_every`` without news; a window whose incidents are only ongoing sends nothing. The
sentences are the report's. Without incidents (a late-label re-evaluation), an alert lists checks.

An alert's identity is its *fingerprint*: the sorted (check, feature, segment, status) of the checks it
lists, or the (incident, change, status, reminder) of the incidents it announces. A re-run whose failed checks are the same sends nothing; a different set (a new failure, late
labels failing model quality) sends an update; a window that passes again after an alert sends
"resolved" once. A send that fails is not recorded, so the next run of the window tries again.

Everything here is plain Python; ``flows/monitor.py`` calls :func:`notify` with Prefect's ``emit_event``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlmon.tasks.checks.outcome import ALL, CheckResult, Status
from mlmon.tasks.config import AlertsConfig, ModelConfig
from mlmon.tasks.contract import column_label
from mlmon.tasks.errors import MlmonError
from mlmon.tasks.incidents import Change, IncidentState
from mlmon.tasks.store import store
from mlmon.tasks.window import Window

EVENT_FAILED = "mlmon.window.failed"
EVENT_RESOLVED = "mlmon.window.resolved"
CHANNEL_EVENT = "prefect-event"
CHANNEL_WEBHOOK = "webhook"
MAX_LISTED = 15
"""Checks named in a webhook message (the event payload carries them all, up to MAX_PAYLOAD)."""
MAX_PAYLOAD = 200
WEBHOOK_TIMEOUT_S = 10.0


class AlertError(MlmonError):
    """An alert could not be sent (it is not recorded, so the next run of the window tries again)."""


@dataclass(frozen=True)
class Alert:
    """What is announced about one window: the checks at or above ``alerts.min_status``."""

    model: str
    window: Window
    status: Status  # the worst status among ``checks`` (PASS when there are none)
    checks: tuple[CheckResult, ...]
    report_url: str | None
    incidents: tuple[IncidentState, ...] | None = None  # what it announces; None = per-window checks

    @property
    def firing(self) -> bool:
        """Something is broken and announced (``mlmon.window.failed``); else it is quiet or resolved."""
        if self.incidents is None:
            return bool(self.checks)
        return any(s.change is not Change.RESOLVED for s in self.incidents)

    @property
    def announces(self) -> bool:
        """Whether there is anything to send (a new, worse, reminded or resolved incident, or checks)."""
        return self.firing if self.incidents is None else bool(self.incidents)

    @property
    def fingerprint(self) -> str:
        if self.incidents is not None:
            keys = sorted(
                {(s.incident.key, s.change.value, s.incident.status.value, s.remind) for s in self.incidents}
            )
        else:
            keys = sorted({(c.check, c.feature, c.segment, c.status.value) for c in self.checks})
        return hashlib.sha256(json.dumps(keys, ensure_ascii=False).encode()).hexdigest()


def alert_for(
    model: str, window: Window, checks: list[CheckResult] | tuple[CheckResult, ...], cfg: AlertsConfig,
    report_url: str | None,
) -> Alert:  # fmt: skip
    """The alert for a window whose checks are ``checks`` (a WindowResult's, or the stored ones)."""
    floor = Status(cfg.min_status).severity
    hit = tuple(
        sorted(
            (c for c in checks if c.status.severity >= floor),
            # worst first; the whole window before its segments, which usually repeat it
            key=lambda c: (
                -c.status.severity,
                c.segment != ALL,
                c.category.value,
                c.check,
                c.feature,
                c.segment,
            ),
        )
    )
    return Alert(model, window, Status.worst([c.status for c in hit]), hit, report_url)


def incident_alert(
    model: str,
    window: Window,
    checks: list[CheckResult] | tuple[CheckResult, ...],
    states: list[IncidentState] | tuple[IncidentState, ...],
    cfg: AlertsConfig,
    report_url: str | None,
) -> Alert:
    """The alert for a window whose incidents changed as ``states`` say: only the incidents at or above
    ``alerts.min_status`` that opened, worsened, resolved or are due a reminder."""
    floor = Status(cfg.min_status).severity
    said = tuple(s for s in states if s.announce and s.incident.status.severity >= floor)
    base = alert_for(model, window, checks, cfg, report_url)
    return Alert(model, window, base.status, base.checks, report_url, incidents=said)


def stored_alert(target: store.Target, cfg: ModelConfig, window: Window, report_url: str | None) -> Alert:
    """The alert for a stored window, from its checks in Postgres (after a late-label re-evaluation)."""
    return alert_for(cfg.name, window, store.window_checks(target, cfg.name, window), cfg.alerts, report_url)


# ---------------------------------------------------------------------------------------- messages


def _check_json(c: CheckResult) -> dict[str, Any]:
    return {
        "check": c.check, "category": c.category.value, "feature": c.feature,
        "column": column_label(c.feature), "segment": c.segment,
        "status": c.status.value, "value": _finite(c.value), "threshold": _finite(c.threshold),
        "message": c.message,
    }  # fmt: skip


def _incident_json(s: IncidentState) -> dict[str, Any]:
    return {
        "key": s.incident.key, "subject": s.incident.subject, "status": s.incident.status.value,
        "change": s.change.value, "reminder": s.remind, "sentence": s.incident.sentence,
        "open_since": s.opened_start.isoformat(), "windows": s.n_windows,
    }  # fmt: skip


def _change_word(s: IncidentState) -> str:
    if s.remind:
        return f"still open ({s.n_windows} windows)"
    return {Change.OPENED: "new", Change.WORSENED: "worse", Change.RESOLVED: "resolved"}.get(
        s.change, s.change.value
    )


def _finite(x: float | None) -> float | None:
    return x if isinstance(x, int | float) and x == x and abs(x) != float("inf") else None


def event_payload(alert: Alert) -> dict[str, Any]:
    """The payload of ``mlmon.window.failed`` / ``mlmon.window.resolved`` (JSON-safe)."""
    return {
        "model": alert.model,
        "window_start": alert.window.start.isoformat(),
        "window_end": alert.window.end.isoformat(),
        "window": alert.window.label,
        "status": alert.status.value,
        "n_failed": len(alert.checks),
        "failed_checks": [_check_json(c) for c in alert.checks[:MAX_PAYLOAD]],
        "summary": summary_line(alert),
        "incidents": [_incident_json(s) for s in alert.incidents or ()],
        "report_url": alert.report_url,
        "fingerprint": alert.fingerprint,
    }


def event_resource(alert: Alert) -> dict[str, str]:
    return {
        "prefect.resource.id": f"mlmon.model.{alert.model}",
        "prefect.resource.name": alert.model,
        "mlmon.window.start": alert.window.start.isoformat(),
        "mlmon.window.end": alert.window.end.isoformat(),
    }


def _label(c: CheckResult) -> str:
    return (
        c.check
        + (f"[{column_label(c.feature)}]" if c.feature else "")
        + (f"@{c.segment}" if c.segment != ALL else "")
    )


def summary_line(alert: Alert) -> str:
    """``2 failed: error_rate, feature_drift[income]`` (at most five named) or ``all checks pass again``."""
    if alert.incidents is not None:
        if not alert.incidents:
            return "nothing new"
        counts: dict[str, int] = {}
        for s in alert.incidents:
            word = "reminder" if s.remind else _change_word(s)
            counts[word] = counts.get(word, 0) + 1
        return (
            ", ".join(f"{n} {w}" for w, n in counts.items())
            + ": "
            + "; ".join(s.incident.subject for s in alert.incidents[:5])
        )
    if not alert.checks:
        return "all checks pass again"
    names = [_label(c) for c in alert.checks[:5]]
    more = f" and {len(alert.checks) - 5} more" if len(alert.checks) > 5 else ""
    verb = "warned" if alert.status is Status.WARN else "failed"
    return f"{len(alert.checks)} {verb}: {', '.join(names)}{more}"


def _slack_escape(text: str) -> str:
    """Slack's three control characters; log values can never become mentions or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack-compatible webhook JSON: ``text`` (the fallback every receiver shows) plus ``blocks``."""
    esc = _slack_escape
    head = (
        f"mlmon: {alert.model} {alert.window.label} {alert.status.value.upper()}"
        if alert.firing
        else f"mlmon: {alert.model} {alert.window.label} resolved"
    )
    if alert.incidents is not None:
        lines = [f"• [{_change_word(s)}] {esc(s.incident.sentence)}" for s in alert.incidents[:MAX_LISTED]]
        if len(alert.incidents) > MAX_LISTED:
            lines.append(f"… and {len(alert.incidents) - MAX_LISTED} more in the report")
    else:
        lines = [
            f"• {esc(_label(c))} ({c.status.value}): {esc(c.message)}" for c in alert.checks[:MAX_LISTED]
        ]
        if len(alert.checks) > MAX_LISTED:
            lines.append(f"… and {len(alert.checks) - MAX_LISTED} more in the report")
    link = ""
    if alert.report_url:
        link = f"<{alert.report_url.replace('|', '%7C').replace('>', '%3E')}|Open the report>"
    body = "\n".join([*lines, link] if link else lines) or "All checks pass again."
    text = f"{esc(head)}\n{esc(summary_line(alert))}" + (f"\n{link}" if link else "")
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Window `{alert.window}`\n{body}"[:2900]},
            },
        ],
    }


# ------------------------------------------------------------------------------------------ sending


def webhook_url(cfg: AlertsConfig, env: Mapping[str, str] = os.environ) -> str | None:
    """The model's webhook URL (from the environment or a Prefect Secret block), or None if none is
    configured. A configured source that yields nothing is an :class:`AlertError` saying what to set."""
    if cfg.webhook_env:
        url = env.get(cfg.webhook_env, "").strip()
        if not url:
            raise AlertError(
                f"alerts.webhook_env names {cfg.webhook_env}, which is not set: export it "
                "(the webhook URL), or remove webhook_env from the model's alerts config"
            )
        return url
    if cfg.webhook_secret:
        from prefect.blocks.system import Secret

        try:
            url = str(Secret.load(cfg.webhook_secret).get()).strip()
        except Exception as e:
            raise AlertError(
                f"cannot read the Prefect Secret block {cfg.webhook_secret!r} (alerts.webhook_secret): "
                f"{type(e).__name__}: {e}. Create it with `prefect block create secret` or the UI."
            ) from e
        return url or None
    return None


_ORIGIN = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/?#]*@)?([^/?#]*)")


def _where(url: str) -> str:
    """A webhook URL without its credentials, path and query (Slack's path is the secret).

    Never raises, whatever the URL (a bad port or bracket must not turn into a traceback quoting it).

    >>> _where("https://hooks.slack.com/services/T0/B0/xyz"), _where("http://u:pw@h:99x/a b")
    ('https://hooks.slack.com/…', 'http://h:99x/…')
    """
    m = _ORIGIN.match(url)
    scheme, host = (m.group(1) or "", m.group(2)) if m else ("", "")
    return f"{scheme}{host or '?'}/…"


def redact_secret(text: str, url: str) -> str:
    """``text`` with every trace of the webhook ``url``'s secret (credentials, path, query, in raw,
    percent-encoded, percent-decoded or escaped form) replaced by ``…``.

    The one place every error from sending passes through (:func:`_deliver`), so no exception type can
    carry the secret into a run summary, a task log or Prefect's stored logs.

    >>> redact_secret("bad URL '/services/T0/B0/s ecret' (found ' ')", "https://h/services/T0/B0/s ecret")
    "bad URL '…' (found ' ')"
    """
    m = _ORIGIN.match(url)
    origin_end = m.end() if m else 0
    rest = url[origin_end:]
    userinfo = (
        url[:origin_end].partition("://")[2].rpartition("@")[0] if m and "@" in url[:origin_end] else ""
    )
    pieces = {url, url.strip(), rest, userinfo}
    pieces |= {p for p in re.split(r"[/?#&=@]", rest) if len(p) >= 6}  # long path and query parts
    variants = set()
    for p in pieces:
        if p:
            variants |= {p, urllib.parse.quote(p, safe="/"), urllib.parse.unquote(p), repr(p)[1:-1]}
    for p in sorted((v for v in variants if len(v) >= 3), key=len, reverse=True):
        text = text.replace(p, "…")
    return text


def post_json(url: str, payload: dict[str, Any], timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
    """POST ``payload`` as JSON; :class:`AlertError` (without the URL's secret path) unless 2xx."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise AlertError(f"webhook URL {_where(url)} is not http(s)")
    req = urllib.request.Request(
        url,
        data=json.dumps(payload, ensure_ascii=False, allow_nan=False).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "mlmon"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # the scheme is checked above
            resp.read(1024)
    except urllib.error.HTTPError as e:
        raise AlertError(f"webhook {_where(url)} answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise AlertError(f"webhook {_where(url)} unreachable: {reason}") from None


Emit = Callable[[str, dict[str, str], dict[str, Any]], None]
"""``emit(event, resource, payload)``: Prefect's ``emit_event`` in a flow."""


def notify(
    target: store.Target,
    cfg: AlertsConfig,
    alert: Alert,
    *,
    emit: Emit | None,
    env: Mapping[str, str] = os.environ,
    post: Callable[[str, dict[str, Any]], None] = post_json,
) -> dict[str, str]:
    """Send ``alert`` on every configured channel unless that channel already announced the same thing
    for this window. Returns ``{channel: outcome}`` with outcome ``sent``, ``resolved``, ``duplicate``,
    ``quiet`` (nothing to say) or ``error: ...``. Never raises for a channel that fails: the window's
    results are stored already, and the failed channel is retried by the next run of the window."""
    out: dict[str, str] = {}
    if not cfg.enabled:
        return {"alerts": "disabled"}
    if emit is not None:
        out[CHANNEL_EVENT] = _deliver(
            target, alert, CHANNEL_EVENT,
            lambda: emit(EVENT_FAILED if alert.firing else EVENT_RESOLVED, event_resource(alert), event_payload(alert)),
        )  # fmt: skip
    try:
        url = webhook_url(cfg, env)
    except AlertError as e:
        out[CHANNEL_WEBHOOK] = f"error: {e}"
        return out
    if url is not None:
        payload = slack_payload(alert)
        out[CHANNEL_WEBHOOK] = _deliver(
            target, alert, CHANNEL_WEBHOOK, lambda: post(url, payload), secret=url
        )
    return out


def _deliver(
    target: store.Target, alert: Alert, channel: str, send: Callable[[], None], *, secret: str | None = None
) -> str:
    """Send on one channel (claimed in ``mlmon.alerts``); the outcome, with ``secret`` redacted from any
    error whatever its type."""
    try:
        if alert.incidents is not None and not alert.incidents:
            return "quiet"  # incidents only ongoing (or none): nothing new to say
        if alert.announces:
            worst = Status.worst([s.incident.status for s in alert.incidents or ()] + [alert.status])
            n = len(alert.incidents) if alert.incidents is not None else len(alert.checks)
            with store.alert_claim(
                target, alert.model, alert.window, channel,
                fingerprint=alert.fingerprint, status=worst.value, n_failed=n,
            ) as new:  # fmt: skip
                if not new:
                    return "duplicate"
                send()
                return "sent"
        with store.alert_release(target, alert.model, alert.window, channel) as had:
            if not had:
                return "quiet"
            send()
            return "resolved"
    except Exception as e:  # a channel that fails must not lose the stored window (or the other channel)
        said = f"error: {type(e).__name__}: {e}" if not isinstance(e, MlmonError) else f"error: {e}"
        return redact_secret(said, secret) if secret else said
