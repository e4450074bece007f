"""Alert receiver keys: secrets must be Pulumi secrets and are never echoed; e-mail needs its SMTP server."""

from __future__ import annotations

import pytest

from config.stack_settings import StackConfigError, parse_stack_config

VALID = {"gcp:project": "my-project-1", "mlops-platform:sshSourceRanges": '["203.0.113.7/32"]'}
TOKEN_URL = "https://hooks.example.com/services/T000/B000/very-secret-token"
WEBHOOK_KEY = "mlops-platform:alertWebhookUrl"


def problems_of(secret_keys: set[str] | None = None, **changes: str) -> list[str]:
    raw = {**VALID, **{f"mlops-platform:{key}": value for key, value in changes.items()}}
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw, secret_keys=secret_keys)
    return caught.value.problems


def test_no_receiver_is_valid_and_says_so() -> None:
    settings = parse_stack_config(
        {**VALID, WEBHOOK_KEY: "", "mlops-platform:alertEmailTo": ""}, secret_keys=set()
    )
    assert settings.has_alert_receiver is False
    assert settings.alert_webhook_url is None


def test_secret_receivers_set_in_plain_text_are_refused_by_name() -> None:
    problems = problems_of(set(), alertWebhookUrl=TOKEN_URL, alertSlackWebhookUrl=TOKEN_URL)
    assert problems == [
        f"{WEBHOOK_KEY}: must be a secret; set it with `pulumi config set --secret {WEBHOOK_KEY} ...`",
        "mlops-platform:alertSlackWebhookUrl: must be a secret; set it with "
        "`pulumi config set --secret mlops-platform:alertSlackWebhookUrl ...`",
    ]


def test_secret_receivers_are_accepted_and_stay_hidden() -> None:
    settings = parse_stack_config({**VALID, WEBHOOK_KEY: TOKEN_URL}, secret_keys={WEBHOOK_KEY})
    assert settings.has_alert_receiver is True
    assert settings.alert_webhook_url is not None
    assert settings.alert_webhook_url.get_secret_value() == TOKEN_URL
    assert "very-secret-token" not in repr(settings)


def test_a_bad_secret_is_named_but_its_value_never_echoed() -> None:
    problems = problems_of(
        {"mlops-platform:alertSlackWebhookUrl"}, alertSlackWebhookUrl="http://x/very-secret-token"
    )
    assert problems == ["mlops-platform:alertSlackWebhookUrl: must be an https URL"]


def test_email_needs_a_sender_and_smtp_server_and_login_pairs() -> None:
    assert problems_of(alertEmailTo="oncall@example.com") == [
        "alertEmailTo needs alertEmailFrom and alertSmtpSmarthost too (the SMTP server to send from)"
    ]
    complete = {"alertEmailTo": "oncall@example.com", "alertEmailFrom": "alerts@example.com"}
    assert problems_of(None, **complete, alertSmtpSmarthost="smtp.example.com") == [
        "mlops-platform:alertSmtpSmarthost: 'smtp.example.com' is not host:port, e.g. smtp.example.com:587"
    ]
    assert problems_of(
        None, **complete, alertSmtpSmarthost="smtp.example.com:587", alertSmtpUsername="bot"
    ) == ["alertSmtpUsername and alertSmtpPassword are set together or not at all"]
    raw = {**VALID, **{f"mlops-platform:{k}": v for k, v in complete.items()}}
    settings = parse_stack_config({**raw, "mlops-platform:alertSmtpSmarthost": "smtp.example.com:587"})
    assert settings.alert_email_to == "oncall@example.com"
    assert settings.has_alert_receiver is True
