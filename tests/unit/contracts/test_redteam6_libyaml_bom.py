"""libyaml skips a byte order mark at the start of *every* line, PyYAML only at the start of the text.

A line beginning with U+FEFF (a part pasted from a file saved with a BOM) is then one column to the right for
libyaml, so after a key with no value it nests under that key: libyaml read different data without any error
(and a contract PyYAML rejects for an unknown top-level key loaded as valid). Such a text is read by PyYAML.
"""

from __future__ import annotations

import pytest

from streams.contracts import source

needs_libyaml = pytest.mark.skipif(source._fast_loader() is None, reason="PyYAML built without libyaml")


@needs_libyaml
@pytest.mark.parametrize(
    "text",
    [
        "description:\n\ufeffpurpose: x\n",
        "\ufeffa:\n\ufeffk: Off\n",
        "%YAML 1.1\n---\n\ufeff- z:\n",
    ],
)
def test_a_byte_order_mark_inside_the_text_reads_as_pyyaml_reads_it(text: str) -> None:
    slow = source._compose(text, "c.yaml", source.ContractLoader)
    assert source.compose(text, "c.yaml") == slow
    assert any(isinstance(k, str) and k.startswith("\ufeff") for p in slow[1] for k in p)


@pytest.mark.parametrize("text", ["a: 1\t\n", "a:\t1\n", "a: x\ty\n", "- a\t\n", "a: 1 \t# c\n"])
def test_a_tab_pyyaml_refuses_is_refused_at_its_line_as_before(text: str) -> None:
    """libyaml accepts tabs PyYAML's parser refuses (``found character '\\t' that cannot start any token``): a
    contract must not load on a machine with libyaml and fail where PyYAML has none, so texts with a tab are
    read by PyYAML."""
    with pytest.raises(source.ContractSyntaxError) as slow:
        source._compose(text, "c.yaml", source.ContractLoader)
    with pytest.raises(source.ContractSyntaxError) as got:
        source.compose(text, "c.yaml")
    assert (got.value.message, got.value.line) == (slow.value.message, slow.value.line)
    assert "'\\t'" in got.value.message
