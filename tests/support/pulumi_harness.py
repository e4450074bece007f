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
from pulumi.runtime.mocks import MockMonitor

from config.stack_settings import PROJECT_NAME
from stacks.program import deploy
from stacks.stack_config import load_stack_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_GCP_PROJECT = "test-project-123"
FAKE_IP = "198.51.100.7"
FAKE_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKEPRIVATEKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n"
)
FAKE_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEPUBLIC"
FAKE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEHOST"

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


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, **self._computed(args)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    @staticmethod
    def _computed(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        """What GCP or the providers fill in after creation."""
        link = f"https://www.googleapis.com/compute/v1/projects/{TEST_GCP_PROJECT}/x/{args.name}"
        computed: dict[str, dict[str, Any]] = {
            NETWORK: {"selfLink": link},
            SUBNETWORK: {"selfLink": link},
            ADDRESS: {"address": FAKE_IP},
            SERVICE_ACCOUNT: {
                "email": f"{args.inputs.get('accountId')}@{TEST_GCP_PROJECT}.iam.gserviceaccount.com"
            },
            PRIVATE_KEY: {"privateKeyOpenssh": FAKE_PRIVATE_KEY, "publicKeyOpenssh": FAKE_PUBLIC_KEY + "\n"},
            RANDOM_PASSWORD: {"result": f"generated-password-of-{args.name}"},
            REMOTE_COMMAND: {"stdout": FAKE_HOST_KEY + "\n", "stderr": ""},
            LOCAL_COMMAND: {"stdout": "provision: ok=1 changed=0 failed=0", "stderr": ""},
        }
        return computed.get(args.typ, {})


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
    inputs: dict[str, Any] = field(default_factory=dict)


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
                    inputs=self.recording_mocks.inputs.get((request.type, request.name), {}),
                )
            )
            return response


@dataclass
class Deployment:
    registrations: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str]

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


def configure_engine(config: Mapping[str, str], stack: str) -> RecordingMonitor:
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT_NAME, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    return monitor


def run_program(config: Mapping[str, str], stack: str = "dev", repo_root: Path = REPO_ROOT) -> Deployment:
    """Validate settings and declare every resource, as `pulumi up` would, then resolve the outputs."""
    monitor = configure_engine(config, stack)
    collected: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        outputs = deploy(load_stack_settings(), stack, repo_root).outputs

        async def resolve() -> None:
            collected["values"] = {name: await output.future() for name, output in outputs.items()}
            collected["secrets"] = {name for name, output in outputs.items() if await output.is_secret()}

        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    program()
    return Deployment(monitor.registrations, collected["values"], collected["secrets"])
