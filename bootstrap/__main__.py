"""Pulumi runs this file (bootstrap/Pulumi.yaml); the program lives in stacks/bootstrap/."""

from stacks.bootstrap.program import main

main()
