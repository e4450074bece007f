"""The bootstrap program: what CI/CD needs in GCP before the first pipeline run.

A Pulumi project of its own (bootstrap/Pulumi.yaml runs `stacks.bootstrap.program`), run once by a
project owner with their own credentials: the Workload Identity Federation pool and provider for
GitHub Actions, one service account per pipeline job kind, the Artifact Registry repositories, the
bucket holding the main program's Pulumi state and the KMS key of its secrets provider.
"""
