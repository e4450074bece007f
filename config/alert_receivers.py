"""Where alerts go: the receivers a stack's Alertmanager delivers to, from the stack config.

Three kinds, any combination (none at all is valid: alerts are then only visible in Prometheus and
Alertmanager's own UI): a generic webhook, a Slack-compatible incoming webhook, and e-mail over SMTP.
URLs that embed tokens and the SMTP password are secrets: they must be set with
`pulumi config set --secret`, are never echoed in an error, and reach the host as 0600 files.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SMARTHOST = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")

# Config keys whose values must be Pulumi secrets (`pulumi config set --secret KEY VALUE`).
SECRET_RECEIVER_KEYS = ("alertWebhookUrl", "alertSlackWebhookUrl", "alertSmtpPassword")


def _url(value: SecretStr | None, schemes: tuple[str, ...]) -> SecretStr | None:
    # The message never repeats the value: a webhook URL carries its token.
    if value is not None and not value.get_secret_value().startswith(schemes):
        raise ValueError(f"must be an {' or '.join(s.removesuffix('://') for s in schemes)} URL")
    return value


class AlertReceiverSettings(BaseModel):
    """The receiver keys of a stack config (mixed into config.stack_settings.StackSettings)."""

    alert_webhook_url: SecretStr | None = Field(
        default=None,
        alias="alertWebhookUrl",
        description="Secret. Alertmanager posts every alert (firing and resolved) as JSON to this "
        "http(s) URL (Alertmanager's webhook format).",
    )
    alert_slack_webhook_url: SecretStr | None = Field(
        default=None,
        alias="alertSlackWebhookUrl",
        description="Secret. A Slack-compatible incoming-webhook https URL (Slack, Mattermost, ...).",
    )
    alert_email_to: str | None = Field(
        default=None, alias="alertEmailTo", description="E-mail address that receives alerts."
    )
    alert_email_from: str | None = Field(
        default=None, alias="alertEmailFrom", description="Sender address of alert e-mails."
    )
    alert_smtp_smarthost: str | None = Field(
        default=None,
        alias="alertSmtpSmarthost",
        description="SMTP server as host:port (587 with STARTTLS) that sends alert e-mails.",
    )
    alert_smtp_username: str | None = Field(
        default=None, alias="alertSmtpUsername", description="SMTP login; unset: no authentication."
    )
    alert_smtp_password: SecretStr | None = Field(
        default=None, alias="alertSmtpPassword", description="Secret. Password of alertSmtpUsername."
    )

    @field_validator(
        "alert_webhook_url",
        "alert_slack_webhook_url",
        "alert_email_to",
        "alert_email_from",
        "alert_smtp_smarthost",
        "alert_smtp_username",
        "alert_smtp_password",
        mode="before",
    )
    @classmethod
    def _empty_receiver_is_unset(cls, value: Any) -> Any:
        # Pulumi.yaml declares optional keys with default "" (the name differs from StackSettings'
        # own validator, which would otherwise replace this one).
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("alert_webhook_url")
    @classmethod
    def _check_webhook(cls, value: SecretStr | None) -> SecretStr | None:
        return _url(value, ("https://", "http://"))

    @field_validator("alert_slack_webhook_url")
    @classmethod
    def _check_slack(cls, value: SecretStr | None) -> SecretStr | None:
        return _url(value, ("https://",))

    @field_validator("alert_email_to", "alert_email_from")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("alert_smtp_smarthost")
    @classmethod
    def _check_smarthost(cls, value: str | None) -> str | None:
        if value is not None and not _SMARTHOST.match(value):
            raise ValueError(f"{value!r} is not host:port, e.g. smtp.example.com:587")
        return value

    @model_validator(mode="after")
    def _email_is_complete(self) -> AlertReceiverSettings:
        if self.alert_email_to is None:
            return self
        missing = [
            key
            for key, value in (
                ("alertEmailFrom", self.alert_email_from),
                ("alertSmtpSmarthost", self.alert_smtp_smarthost),
            )
            if value is None
        ]
        if missing:
            raise ValueError(f"alertEmailTo needs {' and '.join(missing)} too (the SMTP server to send from)")
        if (self.alert_smtp_username is None) != (self.alert_smtp_password is None):
            raise ValueError("alertSmtpUsername and alertSmtpPassword are set together or not at all")
        return self

    @property
    def has_alert_receiver(self) -> bool:
        return any((self.alert_webhook_url, self.alert_slack_webhook_url, self.alert_email_to))
