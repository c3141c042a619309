"""Settings of the policy agent: its topics, its webhooks and how hard it tries to reach them.

A frozen pydantic-settings object, environment prefix ``STREAMS_POLICY_`` (the connection to
Kafka, the quality-event topic and the app id stay in :class:`streams.settings.Settings`)::

    STREAMS_POLICY_WEBHOOKS='[{"name": "oncall", "kind": "pagerduty",
                               "url": "https://events.pagerduty.com/v2/enqueue",
                               "token": "<routing key>", "actions": ["page"]},
                              {"name": "team-chat", "kind": "slack", "url": "https://hooks.slack.com/..."}]'
    STREAMS_POLICY_WEBHOOK_RETRIES=4 STREAMS_POLICY_WEBHOOK_TIMEOUT_S=5

Tokens are :class:`~pydantic.SecretStr` (never printed, never in an event). A webhook receives
the decisions of the policies whose action is in its ``actions`` (all when empty) and whose
contract is in its ``contracts`` (all when empty).
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import SettingsError

__all__ = ["PolicySettings", "Webhook", "WebhookKind", "load_policy_settings"]


class WebhookKind(enum.StrEnum):
    GENERIC = "generic"  # the decision as JSON (docs/policies.md)
    SLACK = "slack"  # a Slack-compatible incoming webhook ({"text", "blocks"})
    PAGERDUTY = "pagerduty"  # PagerDuty Events API v2 (trigger / resolve by dedup_key); token = routing key
    ALERTMANAGER = "alertmanager"  # POST /api/v2/alerts (a list of alerts; endsAt on resolution)


class Webhook(BaseModel):
    """One HTTP endpoint alerts are sent to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    kind: WebhookKind = WebhookKind.GENERIC
    url: str = Field(pattern=r"^https?://")
    token: SecretStr | None = Field(None, description="Bearer token (generic, alertmanager); routing key (pagerduty).")
    actions: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()

    def wants(self, action: str, contract: str) -> bool:
        return (not self.actions or action in self.actions) and (not self.contracts or contract in self.contracts)


class PolicySettings(BaseSettings):
    """Configuration of ``qstreams policies run`` (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="STREAMS_POLICY_", extra="ignore", frozen=True)

    agent_id: str = Field("policy-agent", description="Names the agent's state keys and transactional id.")
    state_topic: str = Field("dq.policy-state.v1", description="Compacted: incident book, offsets, outbox.")
    command_topic: str = Field("dq.policy-commands.v1", description="Retrain / rollback / resolve requests.")
    control_topic: str = Field("dq.policy-control.v1", description="Compacted: bindings quarantined by policies.")
    webhooks: tuple[Webhook, ...] = ()
    webhook_timeout_s: float = Field(5.0, gt=0, description="Timeout of one HTTP attempt.")
    webhook_retries: int = Field(3, ge=0, description="Retries of a failed delivery within one round.")
    webhook_backoff_s: float = Field(0.5, gt=0, description="First retry delay; doubles per retry.")
    redeliver_after_s: float = Field(30.0, gt=0, description="A failed delivery is tried again after this long.")
    max_delivery_rounds: int = Field(20, ge=1, description="Rounds of retries before a delivery is given up.")
    poll_timeout_ms: int = Field(500, ge=10, description="How long one poll of the quality-event topic waits.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the agent's /metrics (0: none).")
    lag_interval_s: float = Field(
        30.0,
        gt=0,
        description="How often the workers' consumer lag is measured "
        "(when some policy watches lag.*): each measurement judges one interval.",
    )
    lag_group: str | None = Field(None, description="The workers' consumer group (default: STREAMS_APP_ID).")


def load_policy_settings(**overrides: object) -> PolicySettings:
    """:class:`PolicySettings` from the environment and ``overrides``; :class:`SettingsError` when invalid."""
    try:
        return PolicySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"STREAMS_POLICY_{str(e['loc'][0]).upper() if e['loc'] else '?'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"Invalid policy agent settings: {problems}. Check the environment and options.") from None
