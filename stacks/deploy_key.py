"""The SSH key concern: the ED25519 key pair that provisioning (and admins) log in with."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

KEY_COMMENT = "mlops-platform-deploy"


@dataclass(frozen=True)
class DeployKeyArgs:
    deploy_user: str
    # An admin's own public key, added next to the generated one (never replaces it: `pulumi up`
    # needs a private key it holds to provision the VM).
    extra_public_key: str | None = None
    # With deletion protection: a destroy would otherwise drop the key the VM trusts.
    protect: bool = False


def ssh_keys_metadata(user: str, public_keys: list[str]) -> str:
    """The instance `ssh-keys` metadata value: one `user:key` line per key."""
    return "\n".join(f"{user}:{key.strip()}" for key in public_keys)


class DeployKey(pulumi.ComponentResource):
    private_key_openssh: pulumi.Output[str]
    public_key_openssh: pulumi.Output[str]
    ssh_keys_metadata: pulumi.Output[str]

    def __init__(self, name: str, args: DeployKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:ssh:DeployKey", name, None, opts)
        key = tls.PrivateKey(
            f"{name}-ed25519",
            algorithm="ED25519",
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # The provider already marks it secret; saying it here keeps it secret under any engine.
        self.private_key_openssh = pulumi.Output.secret(key.private_key_openssh)
        self.public_key_openssh = key.public_key_openssh.apply(lambda text: f"{text.strip()} {KEY_COMMENT}")
        extra = [args.extra_public_key] if args.extra_public_key else []
        self.ssh_keys_metadata = self.public_key_openssh.apply(
            lambda generated: ssh_keys_metadata(args.deploy_user, [generated, *extra])
        )
        self.register_outputs({"public_key_openssh": self.public_key_openssh})
