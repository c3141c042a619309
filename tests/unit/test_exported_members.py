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
import pkgutil
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


#: the packages whose modules are imported to find every StreamsError subclass defined anywhere
ERROR_PACKAGES = ["streams.contracts", "streams.validation", "streams.events", "streams.consumers"]


def all_error_classes() -> set[type[BaseException]]:
    for package in ERROR_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            importlib.import_module(info.name)
    found: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = [streams.errors.StreamsError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def drawn_tree() -> dict[str, int]:
    """The classes drawn in the docstring of streams.errors: name -> column of the name."""
    doc = streams.errors.__doc__ or ""
    tree = doc[doc.index("    StreamsError") :].split("\n\n")[0]
    drawn = {}
    for line in tree.splitlines():
        match = re.match(r"^[\s│├└─]*([A-Z]\w+)\b", line)
        if match and match.group(1) not in drawn:
            drawn[match.group(1)] = match.start(1)
    return drawn


def test_every_error_derives_from_streams_error_and_is_drawn_once_under_its_parent() -> None:
    classes = {c for c in all_error_classes() if c.__module__.startswith("streams.")}
    defined = {v for v in vars(streams.errors).values() if inspect.isclass(v) and issubclass(v, BaseException)}
    assert classes == defined, "every StreamsError subclass is defined in streams.errors"
    tree = drawn_tree()
    assert set(tree) == {c.__name__ for c in classes}
    doc = streams.errors.__doc__ or ""
    names = list(tree)
    for cls in classes:
        assert len(re.findall(rf"[─ ]{cls.__name__}\b", doc)) == 1, f"{cls.__name__} is drawn more than once"
        assert cls.__name__ in streams.errors.__all__
        assert cls.__name__ in streams.__all__, f"{cls.__name__} is not part of the public API"
        if cls is streams.errors.StreamsError:
            continue
        # its parent in the drawing is the nearest class above it drawn one level less deep
        above = names[: names.index(cls.__name__)]
        parent = next(n for n in reversed(above) if tree[n] < tree[cls.__name__])
        assert parent == cls.__mro__[1].__name__, (cls, parent)


def test_errors_keep_the_builtin_base_they_had() -> None:
    err = streams.errors
    assert issubclass(err.UnknownSchemaError, KeyError) and issubclass(err.UnknownSchemaError, err.ContractError)
    assert issubclass(err.EventError, ValueError) and issubclass(err.EventDataError, TypeError)
    message = "Contract x@1 has no schema object 'y'."
    assert str(err.UnknownSchemaError(message)) == message  # not KeyError's quoted repr
