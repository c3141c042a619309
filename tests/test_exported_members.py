"""The public API is exactly what ``__all__`` says (httpx's ``tests/test_exported_members.py`` is the model).

For the package and its public subpackages: every public name of the module (``dir()``,
lazily resolved names included, submodules excluded) is in ``__all__`` and vice versa,
and each one can be imported. The error tree: every exception class of
:mod:`streams.errors` derives from ``StreamsError``, is exported, and is drawn in the
module docstring.
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import re
import types

import pytest

import streams
import streams.errors

MODULES = [
    "streams",
    "streams.errors",
    "streams.events",
    "streams.validation",
    "streams.validation.pandera",
    "streams.validation.regex",
]
#: dunder names that are part of an API
PUBLIC_DUNDERS = {"__version__"}


def public_names(module: types.ModuleType) -> set[str]:
    names = set()
    for name in dir(module):
        if name.startswith("_") and name not in PUBLIC_DUNDERS:
            continue
        value = getattr(module, name)
        if isinstance(value, __future__._Feature):
            continue  # ``from __future__ import annotations`` binds a name, not an API
        if isinstance(value, types.ModuleType) and value.__name__.startswith(f"{module.__name__}."):
            continue  # a submodule, bound by importing it
        names.add(name)
    return names


@pytest.mark.parametrize("module_name", MODULES)
def test_all_lists_exactly_the_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "__all__ has duplicates"
    public = public_names(module)
    assert public - exported == set(), f"public in {module_name} but not in __all__"
    assert exported - public == set(), f"in __all__ of {module_name} but not public there"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_exported_name_imports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__all__, f"{module_name} exports nothing"
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # what users get with a star import
    assert set(module.__all__) <= set(namespace)
    for name in module.__all__:
        assert namespace[name] is getattr(module, name)


def test_the_lazy_name_resolves_to_the_report() -> None:
    from streams.validation.report import ValidationReport

    assert streams.ValidationReport is ValidationReport
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = streams.nope  # type: ignore[attr-defined]


def error_classes() -> list[type[BaseException]]:
    return [
        value
        for value in vars(streams.errors).values()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == "streams.errors"
    ]


def test_every_error_derives_from_streams_error_and_is_drawn_in_the_tree() -> None:
    classes = error_classes()
    assert len(classes) >= 10  # the tree has at least the root, contracts, data, broker, settings and events
    doc = streams.errors.__doc__ or ""
    drawn = set(re.findall(r"^\s*(?:[│├└─ ]*)([A-Z]\w+Error)\b", doc, flags=re.MULTILINE))
    assert drawn == {c.__name__ for c in classes}
    for cls in classes:
        assert issubclass(cls, streams.errors.StreamsError), cls
        assert cls.__name__ in streams.errors.__all__
        assert cls.__name__ in streams.__all__, f"{cls.__name__} is not part of the public API"
        # each is drawn under its parent: the line above it at one level less of indent names an ancestor
        lines = doc.splitlines()
        (row,) = [i for i, line in enumerate(lines) if re.search(rf"[─ ]{cls.__name__}\b", line)]
        if cls is streams.errors.StreamsError:
            continue
        depth = lines[row].index(cls.__name__)
        parent_rows = [i for i in range(row) if re.search(r"\w+Error\b", lines[i]) and _col(lines[i]) < depth]
        parent = re.search(r"(\w+Error)\b", lines[parent_rows[-1]])
        assert parent is not None and parent.group(1) in {b.__name__ for b in cls.__mro__[1:]}, cls


def _col(line: str) -> int:
    match = re.search(r"\w+Error\b", line)
    assert match is not None
    return match.start()


def test_errors_keep_the_builtin_base_they_had() -> None:
    err = streams.errors
    assert issubclass(err.UnknownSchemaError, KeyError) and issubclass(err.UnknownSchemaError, err.ContractError)
    assert issubclass(err.EventError, ValueError) and issubclass(err.EventDataError, TypeError)
    message = "Contract x@1 has no schema object 'y'."
    assert str(err.UnknownSchemaError(message)) == message  # not KeyError's quoted repr
