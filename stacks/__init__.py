"""The Pulumi program: GCP network, VM and the provisioning that leaves the service running on it."""
