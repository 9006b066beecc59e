"""``mlmon alerts install``: the Prefect automations of ``deployments/automations.yaml`` on a Prefect server.

The file is in Prefect's own format (what ``prefect automation create --from-file`` reads) except for
one placeholder, ``${MLMON_NOTIFICATION_BLOCK}``, where the id of a notification block goes. The block is
either one the user already has (``--block slack-webhook/team-alerts``) or a custom-webhook block named
``mlmon-alerts`` that posts Slack-compatible JSON (``{"text": subject + body}``) to ``--webhook-url`` /
``MLMON_ALERT_WEBHOOK_URL``. Automations are created, or updated in place by name, so installing twice
changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from mlmon.tasks.config import read_yaml
from mlmon.tasks.errors import ConfigError

AUTOMATIONS_FILE = Path(__file__).resolve().parents[1] / "deployments" / "automations.yaml"
"""In a checkout; an installed package (the Docker image) finds it next to the models config instead."""
PLACEHOLDER = "${MLMON_NOTIFICATION_BLOCK}"
WEBHOOK_BLOCK = "mlmon-alerts"
WEBHOOK_ENV = "MLMON_ALERT_WEBHOOK_URL"
SLACK_JSON = {"text": "{{subject}}\n{{body}}"}
"""What the custom-webhook block posts: Slack's incoming-webhook format (most chat tools accept it)."""


@dataclass(frozen=True)
class Installed:
    name: str
    id: UUID
    action: str  # "created" | "updated"


def load(path: Path, block_id: UUID | str) -> list[Any]:
    """The file's automations, validated by Prefect's own model, with the block id filled in."""
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    raw = read_yaml(path, f"automations file {path} not found")
    items = raw.get("automations") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{path}: expected `automations:` with a list of automations")
    out = []
    for i, item in enumerate(items):
        filled = _fill(item, str(block_id))
        try:
            out.append(AutomationCore.model_validate(filled))
        except ValidationError as e:
            name = item.get("name", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise ConfigError(f"{path}: automation {name!r} is not valid: {e}") from None
    return out


def _fill(value: Any, block_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, block_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, block_id) for v in value]
    return block_id if value == PLACEHOLDER else value


def webhook_block(url: str) -> UUID:
    """Create or overwrite the ``mlmon-alerts`` custom-webhook block posting Slack-compatible JSON."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--webhook-url / {WEBHOOK_ENV} must be an http(s) URL")
    block = CustomWebhookNotificationBlock(name="mlmon", url=url, json_data=dict(SLACK_JSON))
    return block.save(WEBHOOK_BLOCK, overwrite=True)


def existing_block(slug: str) -> UUID:
    """The id of a notification block given as ``<block-type-slug>/<block-name>``."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    kind, _, name = slug.partition("/")
    if not kind or not name:
        raise ConfigError(f"--block {slug!r}: write <block-type>/<name>, e.g. slack-webhook/team-alerts")
    with get_client(sync_client=True) as client:
        try:
            doc = client.read_block_document_by_name(name=name, block_type_slug=kind)
        except ObjectNotFound:
            raise ConfigError(
                f"no {kind!r} block named {name!r} on the Prefect server: create it in the UI "
                "(Blocks) or use --webhook-url"
            ) from None
    return doc.id


def default_file() -> Path:
    """``automations.yaml`` next to the models config (``MLMON_CONFIG``), else the checkout's."""
    from mlmon.settings import Settings

    beside = Settings.from_env().config_path.resolve().parent / "automations.yaml"
    return beside if beside.is_file() else AUTOMATIONS_FILE


def install(
    path: Path | None = None, *, webhook_url: str | None = None, block: str | None = None
) -> list[Installed]:
    """Install (create or update by name) every automation of ``path`` (default :func:`default_file`) on
    the current Prefect API."""
    from prefect.client.orchestration import get_client

    path = path or default_file()
    if block and webhook_url:
        raise ConfigError("give --block or --webhook-url, not both")
    webhook_url = webhook_url or (None if block else os.environ.get("MLMON_ALERT_WEBHOOK_URL") or None)
    if not block and not webhook_url:
        raise ConfigError(
            f"where should notifications go? pass --webhook-url URL (or set {WEBHOOK_ENV}) for a "
            "Slack-compatible webhook, or --block <type>/<name> for a notification block you created"
        )
    block_id = existing_block(block) if block else webhook_block(str(webhook_url))
    done: list[Installed] = []
    with get_client(sync_client=True) as client:
        for automation in load(path, block_id):
            found = client.read_automations_by_name(automation.name)
            if found:
                client.update_automation(found[0].id, automation)
                done.append(Installed(automation.name, found[0].id, "updated"))
            else:
                done.append(Installed(automation.name, client.create_automation(automation), "created"))
    return done
