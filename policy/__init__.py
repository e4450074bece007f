"""Pulumi policy pack: CIS GCP controls for the resources this project declares."""
