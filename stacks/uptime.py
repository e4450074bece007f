"""Watched from outside: a Cloud Monitoring uptime check on the public API URL, its alert policy and
the notification channels it pages, from the stack config.

Prometheus and Alertmanager run on the VM and die with it; this check runs from Google's checkers,
so a dead VM (or a dead edge, API or model) still pages someone. The facts (path, period, regions,
condition) are in config/uptime_check.py; the receivers are the alert keys of the stack config
(config/alert_receivers.py): `alertEmailTo` becomes an e-mail channel, `alertWebhookUrl` a webhook
channel. A Slack-compatible incoming-webhook URL has no Cloud Monitoring channel type (its `slack`
channel needs an OAuth token from the console), so `alertSlackWebhookUrl` stays Alertmanager's.

Fields that force a replacement (`immutable` in magic-modules' UptimeCheckConfig.yaml): the check's
`period`, `checker_type`, `monitored_resource` (so setting `domain` replaces the check, and the
policy's filter follows its new id in place) and `request_method`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
from pydantic import SecretStr

from config import uptime_check as facts
from config.monitoring import REPO_ROOT, RUNBOOK_FILE
from stacks.apis import child_options

NOBODY_PAGED = (
    "No alertEmailTo or alertWebhookUrl is set: the uptime check and its alert policy exist (see "
    "them in Cloud Monitoring), but nobody is paged when the public URL stops answering."
)


@dataclass(frozen=True)
class UptimeTarget:
    """One public URL to probe: https://<host>/ready."""

    # Appended to the check's resource name ("" for the VM's check, which keeps its name).
    suffix: str
    # What it is, for the console and the alert's text.
    what: str
    # The domain when it names this target (its certificate does), else the address.
    host: pulumi.Input[str]
    # A real certificate is expected (ACME for the domain): only then is it validated; the
    # self-signed one (no domain) would fail every probe.
    validate_ssl: bool


@dataclass(frozen=True)
class UptimeArgs:
    project: str
    # The VM's edge always; the load balancer too once the API scales out.
    targets: tuple[UptimeTarget, ...]
    email: str | None
    webhook_url: SecretStr | None
    labels: dict[str, str]
    # The Monitoring API: every resource here waits for it.
    after: Sequence[pulumi.Resource] = ()


def runbook_link() -> str:
    """The section of docs/RUNBOOK.md, written like the Prometheus rules' `runbook_url`."""
    return f"{RUNBOOK_FILE.relative_to(REPO_ROOT).as_posix()}#{facts.RUNBOOK_ANCHOR}"


def check_filter(check_id: str) -> str:
    """Cloud Monitoring's filter for one uptime check's pass/fail series."""
    return (
        'metric.type="monitoring.googleapis.com/uptime_check/check_passed" '
        f'AND metric.label.check_id="{check_id}" AND resource.type="uptime_url"'
    )


class Uptime(pulumi.ComponentResource):
    checks: list[gcp.monitoring.UptimeCheckConfig]
    channels: list[gcp.monitoring.NotificationChannel]
    policy: gcp.monitoring.AlertPolicy

    def __init__(self, name: str, args: UptimeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Uptime", name, None, opts)
        self.checks = [self._check(name, args, target) for target in args.targets]
        self.channels = self._channels(name, args)
        if not self.channels:
            pulumi.log.warn(NOBODY_PAGED)
        self.policy = self._policy(name, args)
        self.register_outputs({"check_ids": [check.uptime_check_id for check in self.checks]})

    def _check(self, name: str, args: UptimeArgs, target: UptimeTarget) -> gcp.monitoring.UptimeCheckConfig:
        return gcp.monitoring.UptimeCheckConfig(
            f"{name}-uptime{target.suffix}",
            project=args.project,
            display_name=f"{name} {target.what}",
            period=f"{facts.PERIOD_SECONDS}s",
            timeout=f"{facts.TIMEOUT_SECONDS}s",
            selected_regions=list(facts.REGIONS),
            monitored_resource=gcp.monitoring.UptimeCheckConfigMonitoredResourceArgs(
                type="uptime_url", labels={"project_id": args.project, "host": target.host}
            ),
            http_check=gcp.monitoring.UptimeCheckConfigHttpCheckArgs(
                path=facts.PATH, port=facts.PORT, use_ssl=True, validate_ssl=target.validate_ssl
            ),
            content_matchers=[
                gcp.monitoring.UptimeCheckConfigContentMatcherArgs(
                    content=facts.CONTENT, matcher="CONTAINS_STRING"
                )
            ],
            user_labels=args.labels,
            opts=child_options(self, args.after),
        )

    def _channels(self, name: str, args: UptimeArgs) -> list[gcp.monitoring.NotificationChannel]:
        channels = []
        if args.email:
            channels.append(
                gcp.monitoring.NotificationChannel(
                    f"{name}-email",
                    project=args.project,
                    display_name=f"{name} e-mail",
                    type="email",
                    labels={"email_address": args.email},
                    user_labels=args.labels,
                    opts=child_options(self, args.after),
                )
            )
        if args.webhook_url:
            channels.append(self._webhook(name, args, args.webhook_url))
        return channels

    def _webhook(self, name: str, args: UptimeArgs, url: SecretStr) -> gcp.monitoring.NotificationChannel:
        # The URL carries its token, and webhook_tokenauth takes it as the `url` label: the
        # channel's sensitive_labels hold auth_token/password/service_key only. Secret in the
        # inputs and in the outputs, so the state keeps it encrypted.
        return gcp.monitoring.NotificationChannel(
            f"{name}-webhook",
            project=args.project,
            display_name=f"{name} webhook",
            type="webhook_tokenauth",
            labels={"url": pulumi.Output.secret(url.get_secret_value())},
            user_labels=args.labels,
            opts=child_options(self, args.after, additional_secret_outputs=["labels"]),
        )

    def _policy(self, name: str, args: UptimeArgs) -> gcp.monitoring.AlertPolicy:
        conditions = [
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"uptime check failing: {target.what}", condition_threshold=_failing(check)
            )
            for target, check in zip(args.targets, self.checks, strict=True)
        ]
        return gcp.monitoring.AlertPolicy(
            f"{name}-unreachable",
            project=args.project,
            display_name=f"{name}: public URL unreachable (uptime check)",
            # Any target down pages.
            combiner="OR",
            conditions=conditions,
            notification_channels=[channel.name for channel in self.channels],
            severity="CRITICAL",
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                mime_type="text/markdown", content=_documentation(args.targets)
            ),
            user_labels=args.labels,
            opts=child_options(self, args.after),
        )


def _failing(
    check: gcp.monitoring.UptimeCheckConfig,
) -> gcp.monitoring.AlertPolicyConditionConditionThresholdArgs:
    """The standard uptime-check condition, on `check`'s series (config/uptime_check.py)."""
    return gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
        filter=check.uptime_check_id.apply(check_filter),
        comparison="COMPARISON_GT",
        threshold_value=facts.FAILING_LOCATIONS,
        duration=f"{facts.FAILING_SECONDS}s",
        aggregations=[
            gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                alignment_period=f"{facts.WINDOW_SECONDS}s",
                per_series_aligner="ALIGN_NEXT_OLDER",
                cross_series_reducer="REDUCE_COUNT_FALSE",
                group_by_fields=["resource.label.*"],
            )
        ],
        trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
    )


def _documentation(targets: Sequence[UptimeTarget]) -> pulumi.Output[str]:
    urls = pulumi.Output.all(*(target.host for target in targets)).apply(
        lambda hosts: " or ".join(f"https://{host}{facts.PATH}" for host in hosts)
    )
    return urls.apply(
        lambda watched: (
            f"The uptime check of {watched} fails from more than "
            f"{facts.FAILING_LOCATIONS} checker location(s) for {facts.FAILING_SECONDS // 60} min. "
            "The VM, its edge, the API or its model is down; the VM's own Prometheus and "
            "Alertmanager may be down with it.\n\n"
            f"What to look at and what to do: `{runbook_link()}` in the repository "
            "(section *VM unreachable (uptime check)*)."
        )
    )


NO_CHECKER_ADDRESSES = (
    "Cloud Monitoring listed no IPv4 uptime checker address: publicSourceRanges shuts the checkers "
    "out, and the uptime check will fail until the next `pulumi up` admits them."
)


def uptime_checker_ips() -> list[str]:
    """The addresses Google's uptime checkers probe from (Monitoring API `uptimeCheckIps.list`),
    read at every `pulumi up`: the firewall admits them when publicSourceRanges would not."""
    result = gcp.monitoring.get_uptime_check_i_ps()
    addresses = [entry.ip_address for entry in result.uptime_check_ips or []]
    if not any(":" not in address for address in addresses):
        pulumi.log.warn(NO_CHECKER_ADDRESSES)
    return addresses
