"""``contracts diff``'s semver check of a document whose only change is its ``version`` (red team 9): the document's
sha256 covers the version, so adding build metadata (``1.4.0`` → ``1.4.0+build.7``, which semver ranks equal) or a
``v`` prefix was "the contract changed but version 1.4.0+build.7 is the same version as 1.4.0" (exit 1), although
the documentation lets an identical document keep its version and ignores build metadata."""

from __future__ import annotations

import pytest

from streams.contracts.diff import diff_contracts
from streams.contracts.loader import parse_contract

TEXT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:semver
version: {version}
status: active
schema:
  - name: orders
    properties:
      - {{name: id, logicalType: string, {extra}}}
"""


def contract(version: str, extra: str = "required: true"):
    return parse_contract(TEXT.format(version=version, extra=extra), path=f"{version}.yaml")


@pytest.mark.parametrize("new", ["1.4.0+build.7", "v1.4.0"])
def test_a_version_that_moves_alone_to_an_equal_version_is_no_change(new: str) -> None:
    diff = diff_contracts(contract("1.4.0"), contract(new))
    assert diff.changes == () and not diff.changed
    check = diff.semver()
    assert check.ok, check.message


def test_a_version_going_backwards_still_fails_and_a_content_change_still_needs_a_step() -> None:
    backwards = diff_contracts(contract("1.4.0"), contract("1.4.0-rc.1")).semver()
    assert not backwards.ok and "lower than" in backwards.message
    # a change the rules do not show (a description) with build metadata only: still the same version
    described = diff_contracts(contract("1.4.0"), contract("1.4.0+build.7", "required: true, description: x"))
    assert described.changed and not described.semver().ok
    assert diff_contracts(contract("1.4.0"), contract("1.4.1", "required: true, description: x")).semver().ok
