"""Commands the docs and stack files tell users to paste must give what the settings accept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.stack_settings import StackConfigError, parse_stack_config

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted(REPO_ROOT.glob("Pulumi.*.yaml"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_address_lookup_asks_for_ipv4(document: Path) -> None:
    # ifconfig.me answers over IPv6 when the machine has it, and `/32` of an IPv6 address is refused.
    lookups = re.findall(r"curl[^)\n]*ifconfig\.me", document.read_text(encoding="utf-8"))
    assert all(" -4 " in lookup for lookup in lookups), lookups


def test_an_ipv6_address_with_the_docs_suffix_is_refused_and_ipv4_accepted() -> None:
    base = {"gcp:project": "my-project-123"}
    with pytest.raises(StackConfigError, match="sshSourceRanges"):
        parse_stack_config({**base, "mlops-platform:sshSourceRanges": '["2001:db8::1/32"]'})
    parse_stack_config({**base, "mlops-platform:sshSourceRanges": '["203.0.113.7/32"]'})
