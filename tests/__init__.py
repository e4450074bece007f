"""The test suites: unit/, integration/ and e2e/, and their shared helpers in support/."""
