"""Runs the Pulumi program under Pulumi's mocks and records what it declared.

Only the GCP API and the Pulumi engine are mocked (nothing else can run here): the program, the
components, the settings loader and the providers' SDK classes are the real ones. A mocked
resource's state is its inputs plus the few values GCP or the providers would compute.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor

from config.stack_settings import PROJECT_NAME
from stacks.program import deploy
from stacks.stack_config import load_stack_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_GCP_PROJECT = "test-project-123"
FAKE_IP = "198.51.100.7"
FAKE_INTERNAL_IP = "10.10.0.2"
FAKE_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKEPRIVATEKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n"
)
FAKE_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEPUBLIC"
FAKE_HOST_KEY_BASE64 = "AAAAC3NzaC1lZDI1NTE5AAAAIFAKEHOST"
FAKE_HOST_KEY = f"ssh-ed25519 {FAKE_HOST_KEY_BASE64}"

INSTANCE = "gcp:compute/instance:Instance"
FIREWALL = "gcp:compute/firewall:Firewall"
NETWORK = "gcp:compute/network:Network"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
ADDRESS = "gcp:compute/address:Address"
SERVICE_ACCOUNT = "gcp:serviceaccount/account:Account"
IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
SERVICE = "gcp:projects/service:Service"
DISK = "gcp:compute/disk:Disk"
RESOURCE_POLICY = "gcp:compute/resourcePolicy:ResourcePolicy"
POLICY_ATTACHMENT = "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_IAM_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
GET_DISK = "gcp:compute/getDisk:getDisk"
# The API group (apiReplicas > 1) and its load balancer.
INSTANCE_TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
REGION_MIG = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
GLOBAL_ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
SECRET_VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
SECRET = "gcp:secretmanager/secret:Secret"
GET_ZONES = "gcp:compute/getZones:getZones"
FAKE_LB_IP = "203.0.113.80"
GET_GUEST_ATTRIBUTES = "gcp:compute/getInstanceGuestAttributes:getInstanceGuestAttributes"
# The outside watch (stacks/uptime.py).
UPTIME_CHECK = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
NOTIFICATION_CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
GET_UPTIME_CHECK_IPS = "gcp:monitoring/getUptimeCheckIPs:getUptimeCheckIPs"


def guest_attributes(host_key_base64: str | None = FAKE_HOST_KEY_BASE64) -> dict[str, Any]:
    """What the provider answers for `hostkeys/` once the guest agent published the keys."""
    values = [{"namespace": "hostkeys", "key": "ecdsa-sha2-nistp256", "value": "AAAAE2VjZHNh"}]
    if host_key_base64 is not None:
        values.append({"namespace": "hostkeys", "key": "ssh-ed25519", "value": host_key_base64})
    return {"queryPath": "hostkeys/", "queryValues": values}


def stack_files() -> list[Path]:
    return sorted(REPO_ROOT.glob("Pulumi.*.yaml"))


def project_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    return loaded


def engine_config(stack_file: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The flat `namespace:key -> string` map the engine gives the program for this stack file.

    Declared defaults of Pulumi.yaml first, then the stack file; structured values as JSON text,
    as the engine sends them. gcp:project is per user, so a test project stands in when unset.
    """
    project = project_file()
    values: dict[str, Any] = {}
    for key, declaration in project.get("config", {}).items():
        full_key = key if ":" in key else f"{project['name']}:{key}"
        if "default" in declaration:
            values[full_key] = declaration["default"]
        elif "value" in declaration:
            values[full_key] = declaration["value"]
    values.update(yaml.safe_load(stack_file.read_text()).get("config", {}))
    values.setdefault("gcp:project", TEST_GCP_PROJECT)
    values.update(overrides or {})
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


class InvokeFailedError(Exception):
    """Raised by an invoke answer: the provider reports this failure for the call."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class RecordingMocks(pulumi.runtime.Mocks):
    """Resources get their inputs plus computed values; invokes answer from `answers`.

    `answers` maps an invoke token to a function of its arguments (no entry: an empty result).
    With `computed=False` (a first preview) nothing a provider computes is known.
    """

    def __init__(self, answers: Mapping[str, Any] | None = None, computed: bool = True) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers = {GET_GUEST_ATTRIBUTES: lambda _args: guest_attributes(), **(answers or {})}
        self.computed = computed

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        if not self.computed:
            # A resource still to be created: no id, nothing computed.
            return None, dict(args.inputs)
        return _mock_id(args), {**args.inputs, **self._computed(args)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.calls.append((args.token, dict(args.args)))
        answer = self.answers.get(args.token)
        try:
            # No failures: an empty list (the mock monitor iterates it).
            return (answer(dict(args.args)) if answer else {}), []
        except InvokeFailedError as failure:
            # As the engine reports a provider's failed invoke: the SDK raises it in the program,
            # which may catch it (a raise here would count as an unhandled RPC error instead).
            return {}, [(failure.field, failure.reason)]

    @staticmethod
    def _computed(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        """What GCP or the providers fill in after creation."""
        link = f"https://www.googleapis.com/compute/v1/projects/{TEST_GCP_PROJECT}/x/{args.name}"
        computed: dict[str, dict[str, Any]] = {
            NETWORK: {"selfLink": link},
            DISK: {"selfLink": link, "name": args.inputs.get("name")},
            RESOURCE_POLICY: {"name": args.name, "selfLink": link},
            BUCKET: {"name": f"{args.name}-a1b2c3d"},
            INSTANCE: {"name": args.inputs.get("name"), "networkInterfaces": _with_internal_ip(args.inputs)},
            SUBNETWORK: {"selfLink": link},
            ADDRESS: {"address": FAKE_IP},
            SERVICE_ACCOUNT: {
                "email": f"{args.inputs.get('accountId')}@{TEST_GCP_PROJECT}.iam.gserviceaccount.com"
            },
            PRIVATE_KEY: {"privateKeyOpenssh": FAKE_PRIVATE_KEY, "publicKeyOpenssh": FAKE_PUBLIC_KEY + "\n"},
            RANDOM_PASSWORD: {"result": f"generated-password-of-{args.name}"},
            REMOTE_COMMAND: {"stdout": FAKE_HOST_KEY + "\n", "stderr": ""},
            LOCAL_COMMAND: {"stdout": "provision: ok=1 changed=0 failed=0", "stderr": ""},
            INSTANCE_TEMPLATE: {"selfLinkUnique": f"{link}?uniqueId=4711"},
            REGION_MIG: {"instanceGroup": f"{link}-ig"},
            GLOBAL_ADDRESS: {"address": FAKE_LB_IP},
            # Cloud Monitoring names both after an id it assigns.
            UPTIME_CHECK: {"uptimeCheckId": f"{args.name}-check-id"},
            NOTIFICATION_CHANNEL: {"name": f"projects/{TEST_GCP_PROJECT}/notificationChannels/{args.name}"},
            # GCP's version name (projects/P/secrets/S/versions/N), from the secret's mocked id.
            SECRET_VERSION: {
                "name": f"projects/{TEST_GCP_PROJECT}/secrets/{args.inputs.get('secret')}/versions/1"
            },
        }
        return computed.get(args.typ, {})


def _mock_id(args: pulumi.runtime.MockResourceArgs) -> str:
    """A resource's id; a Secret Manager secret's is its resource name, as GCP's (its versions'
    names extend it: projects/P/secrets/S/versions/N)."""
    if args.typ == SECRET:
        return f"projects/{TEST_GCP_PROJECT}/secrets/{args.inputs.get('secretId')}"
    return f"{args.name}-id"


def _with_internal_ip(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A VM's interfaces as GCE fills them in: each gets its internal address in the subnet."""
    return [{**nic, "networkIp": FAKE_INTERNAL_IP} for nic in inputs.get("networkInterfaces") or []]


@dataclass
class Registration:
    """One resource as the engine saw it: inputs plus the options that matter here."""

    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    additional_secret_outputs: list[str]
    create_timeout: str
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    import_id: str
    inputs: dict[str, Any] = field(default_factory=dict)
    # The inputs as the engine received them (unknown values as Pulumi's sentinels).
    wire_inputs: dict[str, Any] = field(default_factory=dict)


class RecordingMonitor(MockMonitor):
    """The mock engine, also noting registration order, parents, dependencies and options."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording_mocks = mocks
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        with self._lock:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    create_timeout=request.customTimeouts.create,
                    protect=request.protect,
                    delete_before_replace=request.deleteBeforeReplace,
                    retain_on_delete=request.retainOnDelete,
                    import_id=request.importId,
                    inputs=self.recording_mocks.inputs.get((request.type, request.name), {}),
                    wire_inputs=json_format.MessageToDict(request.object),
                )
            )
            return response


@dataclass
class Deployment:
    registrations: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, resource_type: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == resource_type]

    def one(self, resource_type: str) -> Registration:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def position(self, resource_type: str) -> int:
        return next(i for i, r in enumerate(self.registrations) if r.type == resource_type)


def configure_engine(
    config: Mapping[str, str], stack: str, mocks: RecordingMocks | None = None, preview: bool = False
) -> RecordingMonitor:
    mocks = mocks or RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT_NAME, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    return monitor


def run_program(
    config: Mapping[str, str],
    stack: str = "dev",
    repo_root: Path = REPO_ROOT,
    mocks: RecordingMocks | None = None,
    preview: bool = False,
    deploy_options: Mapping[str, Any] | None = None,
) -> Deployment:
    """Validate settings and declare every resource, as `pulumi up` would, then resolve the outputs.

    `deploy_options`: further keyword arguments of `deploy` (the environment, the startup script)."""
    monitor = configure_engine(config, stack, mocks, preview)
    collected: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        outputs = deploy(load_stack_settings(), stack, repo_root, **(deploy_options or {})).outputs

        async def resolve() -> None:
            collected["values"] = {name: await output.future() for name, output in outputs.items()}
            collected["secrets"] = {name for name, output in outputs.items() if await output.is_secret()}

        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    program()
    calls = monitor.recording_mocks.calls
    return Deployment(monitor.registrations, collected["values"], collected["secrets"], calls)
