"""The external Application Load Balancer in front of the API group (apiReplicas > 1).

HTTPS on 443 of a global address to a backend service (the group's named port `http`, health
checked on /ready), and HTTP on 80 of the same address answering with a redirect to HTTPS. The
certificate is Google-managed for `domain` when set (Google provisions it once the domain's A record
points at the address, and renews it), else self-signed (pulumi-tls, made in the stack's state:
clients must trust it explicitly, as the single VM's self-signed one).

On the first `pulumi up` a managed certificate stays PROVISIONING until DNS points at the address
(up to an hour after that); the HTTPS proxy serves nothing valid until then. Certificates are
immutable: a new domain or a renewed self-signed certificate is a new resource, auto-named, which
Pulumi creates and swaps into the proxy before deleting the old one. The address survives any
replacement of the rest; `pulumi destroy` releases it (a domain's record then points nowhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_tls as tls

from config import api_group as facts
from config import edge
from stacks.apis import child_options

# Application Load Balancer with Envoy-based proxies (the current generation; "classic" is EXTERNAL).
SCHEME = "EXTERNAL_MANAGED"
HTTPS_PORT = "443"
HTTP_PORT = "80"
# The HTTPS URL map's one path matcher (every host): the API, minus its private paths.
PATH_MATCHER = "api"


@dataclass(frozen=True)
class LoadBalancerArgs:
    project: str
    # The regional group's instance group (its URL) and the health check on /ready.
    instance_group: pulumi.Input[str]
    health_check: pulumi.Input[str]
    domain: str | None
    labels: dict[str, str] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()


class LoadBalancer(pulumi.ComponentResource):
    address: gcp.compute.GlobalAddress
    backend: gcp.compute.BackendService
    certificate: gcp.compute.ManagedSslCertificate | gcp.compute.SSLCertificate
    https_rule: gcp.compute.GlobalForwardingRule
    http_rule: gcp.compute.GlobalForwardingRule

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:LoadBalancer", name, None, opts)
        child = child_options(self, args.after)
        self.address = gcp.compute.GlobalAddress(
            f"{name}-ip",
            project=args.project,
            address_type="EXTERNAL",
            ip_version="IPV4",
            labels=args.labels,
            opts=child,
        )
        self.backend = gcp.compute.BackendService(
            f"{name}-backend",
            project=args.project,
            load_balancing_scheme=SCHEME,
            protocol="HTTP",
            port_name=facts.NAMED_PORT,
            health_checks=args.health_check,
            backends=[
                gcp.compute.BackendServiceBackendArgs(
                    group=args.instance_group, balancing_mode="UTILIZATION", capacity_scaler=1.0
                )
            ],
            connection_draining_timeout_sec=facts.CONNECTION_DRAINING_SECONDS,
            timeout_sec=facts.BACKEND_TIMEOUT_SECONDS,
            # No request logging: at thousands of predictions a second it would cost more than the
            # replicas; Prometheus counts every request per replica already.
            opts=child,
        )
        self.certificate = self._certificate(name, args, child)
        self.https_rule = self._https(name, args, child)
        self.http_rule = self._http_redirect(name, args, child)
        self.register_outputs({"ip": self.address.address})

    def _certificate(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> gcp.compute.ManagedSslCertificate | gcp.compute.SSLCertificate:
        if args.domain:
            return gcp.compute.ManagedSslCertificate(
                f"{name}-cert",
                project=args.project,
                managed=gcp.compute.ManagedSslCertificateManagedArgs(domains=[args.domain]),
                opts=child,
            )
        # ECDSA P-256: a key type Google's SSL certificates accept (RSA-2048 is the other).
        key = tls.PrivateKey(f"{name}-cert-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        cert = tls.SelfSignedCert(
            f"{name}-self-signed",
            private_key_pem=key.private_key_pem,
            ip_addresses=[self.address.address],
            subject=tls.SelfSignedCertSubjectArgs(common_name="mlops-platform API"),
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            validity_period_hours=facts.SELF_SIGNED_VALIDITY_HOURS,
            early_renewal_hours=facts.SELF_SIGNED_EARLY_RENEWAL_HOURS,
            opts=child,
        )
        return gcp.compute.SSLCertificate(
            f"{name}-cert",
            project=args.project,
            certificate=cert.cert_pem,
            private_key=key.private_key_pem,
            opts=child,
        )

    def _private_paths(self) -> list[gcp.compute.URLMapPathMatcherRouteRuleArgs]:
        """The paths the single VM's edge never forwards (metrics: Prometheus scrapes each replica
        directly) are refused by the load balancer itself: an abort fault on every such request,
        answered 404 like the edge, before it reaches a replica."""
        abort = gcp.compute.URLMapPathMatcherRouteRuleRouteActionFaultInjectionPolicyArgs(
            abort=gcp.compute.URLMapPathMatcherRouteRuleRouteActionFaultInjectionPolicyAbortArgs(
                http_status=404, percentage=100.0
            )
        )
        return [
            gcp.compute.URLMapPathMatcherRouteRuleArgs(
                priority=priority,
                match_rules=[gcp.compute.URLMapPathMatcherRouteRuleMatchRuleArgs(prefix_match=path)],
                service=self.backend.id,
                route_action=gcp.compute.URLMapPathMatcherRouteRuleRouteActionArgs(
                    fault_injection_policy=abort
                ),
            )
            for priority, path in enumerate(edge.PRIVATE_PATHS, start=1)
        ]

    def _https(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> gcp.compute.GlobalForwardingRule:
        url_map = gcp.compute.URLMap(
            f"{name}-https",
            project=args.project,
            default_service=self.backend.id,
            host_rules=[gcp.compute.URLMapHostRuleArgs(hosts=["*"], path_matcher=PATH_MATCHER)],
            path_matchers=[
                gcp.compute.URLMapPathMatcherArgs(
                    name=PATH_MATCHER, default_service=self.backend.id, route_rules=self._private_paths()
                )
            ],
            opts=child,
        )
        proxy = gcp.compute.TargetHttpsProxy(
            f"{name}-https",
            project=args.project,
            url_map=url_map.id,
            ssl_certificates=[self.certificate.id],
            opts=child,
        )
        return self._rule(f"{name}-https", args, proxy.id, HTTPS_PORT, child)

    def _http_redirect(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> gcp.compute.GlobalForwardingRule:
        url_map = gcp.compute.URLMap(
            f"{name}-http-redirect",
            project=args.project,
            default_url_redirect=gcp.compute.URLMapDefaultUrlRedirectArgs(
                https_redirect=True, strip_query=False, redirect_response_code="MOVED_PERMANENTLY_DEFAULT"
            ),
            opts=child,
        )
        proxy = gcp.compute.TargetHttpProxy(
            f"{name}-http", project=args.project, url_map=url_map.id, opts=child
        )
        return self._rule(f"{name}-http", args, proxy.id, HTTP_PORT, child)

    def _rule(
        self,
        name: str,
        args: LoadBalancerArgs,
        target: pulumi.Input[str],
        port: str,
        child: pulumi.ResourceOptions,
    ) -> gcp.compute.GlobalForwardingRule:
        return gcp.compute.GlobalForwardingRule(
            name,
            project=args.project,
            target=target,
            ip_address=self.address.id,
            ip_protocol="TCP",
            port_range=port,
            load_balancing_scheme=SCHEME,
            labels=args.labels,
            opts=child,
        )
