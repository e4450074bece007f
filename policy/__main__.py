"""Entry point of `pulumi preview --policy-pack policy`: serves the CIS GCP pack to the engine.

Constructing PolicyPack starts a gRPC server and blocks, so it lives only here; tests import
policy.cis_gcp instead.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.cis_gcp import policies

PolicyPack(name="mlops-cis-gcp", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
