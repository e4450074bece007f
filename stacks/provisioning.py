"""The provisioning concern: wait for SSH on the new VM, then run the provisioning entry point.

1. `remote.Command` connects with the deploy key (retrying while the VM boots), checking the
   VM's ED25519 host key that GCE published as a guest attribute (stacks/host_key.py), after the
   firewall rules exist, and waits for boot to finish.
2. `local.Command` runs `python -m stacks.provision` on this machine against the VM, pinned to
   the same host key. Secrets travel only in its environment, never in argv (argv is visible in
   `ps` and in Pulumi's diff of the `create` string).

With `sshVia: iap` step 1 is left out: a remote.Command's connection dials the host itself (its
`proxy` is a bastion host it logs in to, not a ProxyCommand), and the firewall then admits only
IAP's range. The entry point's own SSH (through `gcloud compute start-iap-tunnel`) retries while
the VM boots instead, and the host key still comes from the guest attributes alone.

Nothing in the command's inputs names this machine: the interpreter is the project's virtualenv
relative to the repo root, and `dir` is the repo root relative to the program's folder, which is
the working directory the Pulumi engine gives provider plugins (the project's `main` folder).
A `pulumi up` from another checkout or machine then sees no change and re-runs nothing.
`ignore_changes` on an absolute `dir` would not do: the engine would keep the first machine's
path and run the update there (or in a stale checkout at that path).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import local, remote

from stacks.provision_env import (
    ENV_ALERTMANAGER_CONFIG,
    ENV_GRAFANA_PASSWORD,
    ENV_HOST_KEY,
    ENV_MLFLOW_PASSWORD,
    ENV_PRIVATE_KEY,
)

SSH_PORT = 22
# sshd answers within a minute or two of creation; 40 dials x 15 s allow ~10 min of booting.
SSH_DIAL_ERROR_LIMIT = 40
SSH_PER_DIAL_TIMEOUT_SECONDS = 15
WAIT_FOR_SSH_TIMEOUT = "15m"
PROVISION_TIMEOUT = "40m"
# Wait for boot to settle (apt and the guest agent busy otherwise).
WAIT_FOR_BOOT = "timeout 300 systemctl is-system-running --wait >/dev/null 2>&1 || true; echo booted"
PASSWORD_LENGTH = 32


def provision_command(
    python: str, host: str, user: str, port: int = SSH_PORT, options: Sequence[str] = ()
) -> str:
    """The entry point's command line: addresses, exposure and TLS options only, never a secret."""
    args = [python, "-m", "stacks.provision", "--host", host, "--port", str(port), "--user", user, *options]
    return shlex.join(args)


@dataclass(frozen=True)
class ProvisioningArgs:
    host: pulumi.Input[str]
    user: str
    private_key_openssh: pulumi.Input[str]
    # `ssh-ed25519 <base64>`, as GCE published it: both commands trust this key only.
    host_key: pulumi.Input[str]
    vm_id: pulumi.Input[str]
    files_hash: str
    # The virtualenv's interpreter (the entry point needs the program's packages), relative to `dir`.
    python: str
    # The repo root, relative to the provider's working directory.
    dir: str
    # SSH is reached only once the firewall lets it through.
    firewall_rules: Sequence[pulumi.Resource]
    # Entry point options: public optional services, the edge's domain, data disk, backup target,
    # and the IAP tunnel.
    options: pulumi.Input[Sequence[str]] = ()
    # False when SSH goes through IAP: nothing here can dial the VM (see the module's docstring).
    wait_for_ssh: bool = True
    # With deletion protection: a destroy would otherwise forget the passwords the stack runs with.
    protect: bool = False
    # Alertmanager's config from the stack config (config/alertmanager.py): it holds the receivers'
    # secrets, so it travels as a Pulumi secret in the environment only.
    alertmanager_config: str = ""


class Provisioning(pulumi.ComponentResource):
    host_key: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    mlflow_admin_password: pulumi.Output[str]
    wait_for_ssh: remote.Command | None
    provision: local.Command

    def __init__(self, name: str, args: ProvisioningArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:provisioning:Provisioning", name, None, opts)
        self.grafana_admin_password = self._password(f"{name}-grafana-admin", args.protect)
        self.mlflow_admin_password = self._password(f"{name}-mlflow-admin", args.protect)
        self.host_key = pulumi.Output.from_input(args.host_key)
        self.wait_for_ssh = self._wait_for_ssh(name, args) if args.wait_for_ssh else None
        self.provision = self._provision(name, args)
        self.register_outputs({"host_key": self.host_key})

    def _password(self, name: str, protect: bool) -> pulumi.Output[str]:
        password = random.RandomPassword(
            name,
            length=PASSWORD_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        return pulumi.Output.secret(password.result)

    def _wait_for_ssh(self, name: str, args: ProvisioningArgs) -> remote.Command:
        """Connect with the deploy key (retrying while the VM boots), trusting the published host key."""
        timeouts = pulumi.CustomTimeouts(create=WAIT_FOR_SSH_TIMEOUT, update=WAIT_FOR_SSH_TIMEOUT)
        return remote.Command(
            f"{name}-wait-for-ssh",
            connection=remote.ConnectionArgs(
                host=args.host,
                port=SSH_PORT,
                user=args.user,
                private_key=args.private_key_openssh,
                host_key=self.host_key,
                dial_error_limit=SSH_DIAL_ERROR_LIMIT,
                per_dial_timeout=SSH_PER_DIAL_TIMEOUT_SECONDS,
            ),
            create=WAIT_FOR_BOOT,
            # A new VM (new id) boots again: wait for it again.
            triggers=[args.vm_id],
            logging=remote.Logging.STDOUT_AND_STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self, custom_timeouts=timeouts, depends_on=list(args.firewall_rules)
            ),
        )

    def _provision(self, name: str, args: ProvisioningArgs) -> local.Command:
        """Run the entry point on this machine against the VM; secrets only in its environment."""
        command = pulumi.Output.all(args.host, args.options).apply(
            lambda values: provision_command(args.python, values[0], args.user, options=values[1])
        )
        timeouts = pulumi.CustomTimeouts(create=PROVISION_TIMEOUT, update=PROVISION_TIMEOUT)
        # After the wait, or else (through IAP) after the firewall admits IAP's range.
        after = [self.wait_for_ssh] if self.wait_for_ssh is not None else list(args.firewall_rules)
        return local.Command(
            f"{name}-run",
            create=command,
            # Same run on update: the playbooks are idempotent.
            update=command,
            dir=args.dir,
            environment={
                ENV_PRIVATE_KEY: pulumi.Output.secret(args.private_key_openssh),
                ENV_HOST_KEY: self.host_key,
                ENV_GRAFANA_PASSWORD: self.grafana_admin_password,
                ENV_MLFLOW_PASSWORD: self.mlflow_admin_password,
                ENV_ALERTMANAGER_CONFIG: pulumi.Output.secret(args.alertmanager_config),
            },
            # The entry point prints short progress lines built from Ansible events (task, host,
            # status) and never a secret; stderr (tracebacks, raw Ansible warnings that could quote
            # a variable) is not shown. Both captured streams are kept encrypted in state below.
            logging=local.Logging.STDOUT,
            # Never feed the previous run's output back in: it is not an input of provisioning.
            add_previous_output_in_env=False,
            triggers=[args.files_hash, args.vm_id],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=after,
                additional_secret_outputs=["stdout", "stderr"],
                custom_timeouts=timeouts,
            ),
        )
