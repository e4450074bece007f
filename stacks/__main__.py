"""Pulumi runs this file (`main: stacks/` in Pulumi.yaml)."""

from stacks.program import main

main()
