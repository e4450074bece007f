"""How many VMs serve the API: the stack config keys of scale-out.

`apiReplicas: 1` (the default) is the single VM that runs the whole stack. Above 1, the API runs
on a regional managed instance group behind an external Application Load Balancer, and the first
VM keeps MLflow, Prometheus, Alertmanager and Grafana (the management VM). The group's size is
the autoscaler's: it starts at `apiReplicas` and moves between the bounds with CPU load.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

# More replicas than this is a different architecture (and quota) conversation, not a typo away.
MAX_API_REPLICAS = 50
# Pulumi.yaml declares the optional integer bounds with this default (a declared key needs one).
UNSET_BOUND = 0


class ApiScalingSettings(BaseModel):
    """The scale-out keys of a stack config (mixed into config.stack_settings.StackSettings)."""

    api_replicas: int = Field(
        default=1,
        alias="apiReplicas",
        ge=1,
        le=MAX_API_REPLICAS,
        description="API VMs. 1: the single VM runs everything. Above 1: a regional managed instance "
        "group of API VMs behind an HTTPS load balancer, starting at this size.",
    )
    api_min_replicas: int | None = Field(
        default=None,
        alias="apiMinReplicas",
        description="Fewest API VMs the autoscaler keeps (0: apiReplicas). Only with apiReplicas > 1.",
    )
    api_max_replicas: int | None = Field(
        default=None,
        alias="apiMaxReplicas",
        description="Most API VMs the autoscaler starts (0: twice apiReplicas). Only with apiReplicas > 1.",
    )
    api_target_cpu_percent: int = Field(
        default=60,
        alias="apiTargetCpuPercent",
        ge=10,
        le=95,
        description="Average CPU use (percent) the autoscaler holds the API VMs at.",
    )
    api_machine_type: str = Field(
        default="e2-small",
        alias="apiMachineType",
        min_length=1,
        description="Machine type of each API VM (apiReplicas > 1).",
    )

    @field_validator("api_min_replicas", "api_max_replicas", mode="before")
    @classmethod
    def _unset_bound(cls, value: Any) -> Any:
        if value in (UNSET_BOUND, str(UNSET_BOUND), "") or (isinstance(value, str) and not value.strip()):
            return None
        return value

    @model_validator(mode="after")
    def _bounds_hold(self) -> ApiScalingSettings:
        explicit = [
            key
            for key, value in (
                ("apiMinReplicas", self.api_min_replicas),
                ("apiMaxReplicas", self.api_max_replicas),
            )
            if value is not None
        ]
        if self.api_replicas == 1:
            if explicit:
                raise ValueError(f"{' and '.join(explicit)} only apply with apiReplicas above 1; remove them")
            return self
        low, high = self.min_api_replicas, self.max_api_replicas
        if not 1 <= low <= self.api_replicas <= high <= MAX_API_REPLICAS:
            raise ValueError(
                f"API replica bounds must hold 1 <= apiMinReplicas ({low}) <= apiReplicas "
                f"({self.api_replicas}) <= apiMaxReplicas ({high}) <= {MAX_API_REPLICAS}"
            )
        return self

    @property
    def scales_out(self) -> bool:
        return self.api_replicas > 1

    @property
    def min_api_replicas(self) -> int:
        return self.api_replicas if self.api_min_replicas is None else self.api_min_replicas

    @property
    def max_api_replicas(self) -> int:
        if self.api_max_replicas is None:
            return min(2 * self.api_replicas, MAX_API_REPLICAS)
        return self.api_max_replicas
