"""cnnlab's layering (CONTRIBUTING.md, "Module map and layers"), checked on the source.

Every module under cnnlab/ is parsed with ``ast``, never imported: its import statements at any
depth (an import inside a function counts: it runs when the function does), and the string
literals given to ``importlib.import_module`` / ``__import__`` (an f-string counts by its
literal start, ``f"cnnlab.exercises.lab{n}"`` -> ``cnnlab.exercises``).  ``LAYERS`` is the one
table that gives each module its layer, by module-name prefix (the longest prefix wins, so
``cnnlab.arithmetic.keras_adapter`` sits above the rest of ``cnnlab.arithmetic``).  A module may
import its own layer and those below it, never a higher one; and it may not import another
package's private name (``from cnnlab.x import _y``, ``cnnlab.x._z``) -- private names are shared
within one package (``cnnlab.grading.*``), and the kit-wide helpers ``cnnlab._checks``,
``cnnlab._tables``, ``cnnlab._cache`` are private to cnnlab as a whole, so anyone may import them.

Two things are not dependencies and are not checked: a package's ``__init__`` importing its own
submodules (it re-exports them: ``from cnnlab.arithmetic import conv_params`` keeps working after
a split), and a subprocess (``python -m cnnlab.cli``).
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

# ------------------------------------------------------------------------------- the one table

#: layer -> (its name in CONTRIBUTING.md, the module-name prefixes it holds).  The planned
#: modules of issue 18's splits are listed beside today's, so a split lands in its layer.
LAYERS = {
    0: ("pure NumPy", (
        "cnnlab",  # the package itself: its lazy facade (__getattr__) loads submodules on demand
        "cnnlab._quiet", "cnnlab._checks", "cnnlab._tables", "cnnlab._cache",
        "cnnlab.ops", "cnnlab.kernels",
        "cnnlab.arithmetic",  # sizes, params, receptive_field, trace; not keras_adapter
    )),
    1: ("Keras basics", (
        "cnnlab.graph", "cnnlab.layers", "cnnlab.datasets", "cnnlab.devices",
        "cnnlab.profiles",  # the lab's sizes, and whether a GPU is there (cnnlab.devices)
        "cnnlab.arithmetic.keras_adapter",  # the one part of arithmetic that reads Keras models
    )),
    2: ("models and tools", (
        "cnnlab.models", "cnnlab.counters", "cnnlab.model_report", "cnnlab.lecture_vgg16",
        "cnnlab.augment", "cnnlab.train", "cnnlab.interpret",
        "cnnlab.viz", "cnnlab.figures", "cnnlab.segmentation", "cnnlab.sequences",
    )),
    3: ("pretrained networks", ("cnnlab.transfer", "cnnlab.pretrained")),
    4: ("exercises", (
        "cnnlab.exercise", "cnnlab.exercises", "cnnlab.selfcheck", "cnnlab.notebooks",
        "cnnlab.detach",
    )),
    5: ("grading", ("cnnlab.grading",)),
    6: ("command line", ("cnnlab.cli",)),
}
_LAYER_OF_PREFIX = {prefix: layer for layer, (_, prefixes) in LAYERS.items()
                    for prefix in prefixes}

#: The imports allowed to break the rules, each with its reason; the test fails on a violation
#: not listed here AND on a listed one that no longer occurs (delete its line then).
EXPECTED_VIOLATIONS = {
    # Issue 18 removed the six this list started with.  What stays are lazy imports, each inside
    # a function that runs only on the path named beside it:
    # the pure engines hand a Keras model (duck-typed) to their adapter, so the pure path never
    # loads Keras and the user has one receptive_field / trace_shapes for specs and models;
    ("cnnlab.arithmetic.receptive_fields", "cnnlab.arithmetic.keras_adapter", "layer"),
    ("cnnlab.arithmetic.trace", "cnnlab.arithmetic.keras_adapter", "layer"),
    # the command lines moved to cnnlab.cli; the old names are deprecated aliases (a module
    # __getattr__ that warns) until they go.
    ("cnnlab.datasets", "cnnlab.cli", "layer"),
    ("cnnlab.transfer", "cnnlab.cli", "layer"),
}


def layer_of(module: str) -> int | None:
    """The layer of ``module`` by its longest prefix in LAYERS; None when no prefix holds it.
    ``cnnlab`` alone is the package itself, never a prefix of everything."""
    parts = module.split(".")
    for cut in range(len(parts), 1, -1):
        layer = _LAYER_OF_PREFIX.get(".".join(parts[:cut]))
        if layer is not None:
            return layer
    return _LAYER_OF_PREFIX.get(module) if module == "cnnlab" else None


# ------------------------------------------------------------------------------- the parser

@dataclass(frozen=True)
class Source:
    """One module's source: its dotted name, whether it is a package's __init__, its text."""

    module: str
    is_package: bool
    text: str


@dataclass(frozen=True)
class Import:
    """One import of a cnnlab module: the module, and the name taken from it (or None)."""

    target: str
    name: str | None
    line: int


@functools.cache
def kit_sources() -> tuple[Source, ...]:
    """Every module under cnnlab/ (packages as their __init__), read once per session."""
    sources = []
    for path in sorted((ROOT / "cnnlab").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        sources.append(Source(module, is_package, path.read_text(encoding="utf-8")))
    return tuple(sources)


def _dynamic_target(call: ast.Call) -> str | None:
    """The module that ``importlib.import_module("cnnlab.x")`` / ``__import__("cnnlab.x")``
    names with a literal (an f-string: up to its last literal dot), or None."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        text = arg.value
    elif (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
          and isinstance(arg.values[0].value, str)):
        text = arg.values[0].value.rsplit(".", 1)[0]  # "cnnlab.exercises.lab" -> cnnlab.exercises
    else:
        return None
    return text if text == "cnnlab" or text.startswith("cnnlab.") else None


def imports_of(source: Source, modules: set[str]) -> list[Import]:
    """Every import of a cnnlab module in ``source``, at any depth.  ``from P import n`` takes
    the submodule ``P.n`` when ``modules`` holds it, else the name ``n`` of ``P``."""
    package = source.module if source.is_package else source.module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source.text)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "cnnlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "cnnlab":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append(Import(submodule, None, node.lineno) if submodule in modules
                             else Import(target, alias.name, node.lineno))
        elif isinstance(node, ast.Call):
            target = _dynamic_target(node)
            if target is not None:
                found.append(Import(target, None, node.lineno))
    return found


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _hidden_half_of_its_lab(importer: str, owner: str) -> bool:
    """``cnnlab.grading.hidden.labNN`` and ``cnnlab.exercises.labNN`` are one lab's exercises
    in two halves (CONTRIBUTING: students receive one and not the other): the hidden cases are
    built from the public module's private case builders."""
    hidden = re.fullmatch(r"cnnlab\.grading\.hidden\.(lab\d\d)", importer)
    return hidden is not None and owner == f"cnnlab.exercises.{hidden.group(1)}"


def _private_owner(path: str) -> str | None:
    """The module or package whose private name ``path`` is (``cnnlab.counters._x`` ->
    ``cnnlab.counters``), or None when ``path`` is public or kit-wide (``cnnlab._checks``)."""
    parts = path.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if _is_private(part):
            return None if index == 1 else ".".join(parts[:index])
    return None


def violations(sources) -> set[tuple[str, str, str]]:
    """``(importer, imported, "layer" | "private")`` for each import that breaks the rules."""
    modules = {source.module for source in sources}
    found = set()
    for source in sources:
        importer_layer = layer_of(source.module)
        for imp in imports_of(source, modules):
            path = imp.target if imp.name is None else f"{imp.target}.{imp.name}"
            if imp.target == source.module or (
                    source.is_package and imp.target.startswith(source.module + ".")):
                continue  # itself, or a package re-exporting its own submodules
            target_layer = layer_of(imp.target)
            if (importer_layer is not None and target_layer is not None
                    and target_layer > importer_layer):
                found.add((source.module, imp.target, "layer"))
            owner = _private_owner(path)
            if owner is None or _hidden_half_of_its_lab(source.module, owner):
                continue
            package = ".".join(owner.split(".")[:2])  # cnnlab.grading.grade -> cnnlab.grading
            if not (source.module == package or source.module.startswith(package + ".")):
                found.add((source.module, path, "private"))
    return found


# ------------------------------------------------------------------------------- the tests

def test_every_cnnlab_module_has_a_layer():
    missing = [source.module for source in kit_sources() if layer_of(source.module) is None]
    assert not missing, (f"{missing}: give each new module a layer in LAYERS "
                         "(tests/test_layering.py) and a line in CONTRIBUTING.md's module map")


def test_cnnlab_imports_follow_the_layers():
    found = violations(kit_sources())
    new = sorted(found - EXPECTED_VIOLATIONS)
    gone = sorted(EXPECTED_VIOLATIONS - found)
    assert not new, (f"imports that break the layering: {new}; import a lower layer only, and "
                     "a public name (CONTRIBUTING.md, 'Module map and layers')")
    assert not gone, f"{gone} no longer occur: delete them from EXPECTED_VIOLATIONS"


def _fake_kit(**texts) -> list[Source]:
    """Sources named like cnnlab's modules (``cnnlab__ops`` -> ``cnnlab.ops``; a package's
    ``__init__``: ``cnnlab__grading__init`` -> ``cnnlab.grading``)."""
    return [Source(name.replace("__", ".").removesuffix(".init"), name.endswith("__init"), text)
            for name, text in texts.items()]


@pytest.mark.parametrize("ops_source, expected", [
    ("from cnnlab.models import build_mlp", ("cnnlab.ops", "cnnlab.models", "layer")),
    ("from cnnlab import models", ("cnnlab.ops", "cnnlab.models", "layer")),
    ("import cnnlab.models", ("cnnlab.ops", "cnnlab.models", "layer")),
    ("from .models import build_mlp", ("cnnlab.ops", "cnnlab.models", "layer")),
    ("def f():\n    from cnnlab.grading import grade\n", ("cnnlab.ops", "cnnlab.grading", "layer")),
    ("import importlib\nm = importlib.import_module('cnnlab.cli')", ("cnnlab.ops", "cnnlab.cli",
                                                                   "layer")),
    ("import importlib\nm = importlib.import_module(f'cnnlab.exercises.lab{1:02d}')",
     ("cnnlab.ops", "cnnlab.exercises", "layer")),
    ("from cnnlab.kernels import _named", ("cnnlab.ops", "cnnlab.kernels._named", "private")),
])
def test_the_check_catches_a_higher_layer_or_a_private_name(ops_source, expected):
    fake = _fake_kit(cnnlab__ops=ops_source, cnnlab__models="", cnnlab__kernels="_named = 1",
                     cnnlab__grading__init="", cnnlab__cli="", cnnlab__exercises__init="")
    assert violations(fake) == {expected}


def test_the_check_allows_lower_layers_own_packages_privates_and_kit_wide_helpers():
    fake = _fake_kit(
        cnnlab__init="import importlib\nimportlib.import_module(f'cnnlab.{1}')",
        cnnlab___checks="def _private(): pass",
        cnnlab__ops="from cnnlab import _checks\nfrom cnnlab._checks import _private",
        cnnlab__models="from cnnlab.ops import conv2d\nimport cnnlab",
        cnnlab__grading__init="from cnnlab.grading.grade import grade",
        cnnlab__grading__grade="from cnnlab.models import x\nfrom cnnlab.grading.reports import _w",
        cnnlab__grading__reports="",
        cnnlab__arithmetic__init="from cnnlab.arithmetic.keras_adapter import trace_shapes",
        cnnlab__arithmetic__keras_adapter="from cnnlab.graph import trace_model",
        cnnlab__graph="",
        cnnlab__exercises__lab02="def _case(): pass",
        cnnlab__grading__hidden__lab02="from cnnlab.exercises.lab02 import _case",
    )
    assert violations(fake) == set()


def test_a_hidden_lab_may_use_only_its_own_labs_private_case_builders():
    fake = _fake_kit(cnnlab__exercises__lab01="", cnnlab__grading__hidden__lab02=(
        "from cnnlab.exercises.lab01 import _case"))
    assert violations(fake) == {("cnnlab.grading.hidden.lab02", "cnnlab.exercises.lab01._case",
                                 "private")}


@pytest.mark.parametrize("module, layer", [
    ("cnnlab", 0), ("cnnlab.ops", 0), ("cnnlab._checks", 0), ("cnnlab._tables", 0),
    ("cnnlab._cache", 0), ("cnnlab.arithmetic.sizes", 0), ("cnnlab.arithmetic.params", 0),
    ("cnnlab.arithmetic.receptive_fields", 0), ("cnnlab.arithmetic.trace", 0),
    ("cnnlab.arithmetic.keras_adapter", 1), ("cnnlab.devices", 1), ("cnnlab.graph", 1),
    ("cnnlab.datasets.download", 1), ("cnnlab.datasets.parsers", 1),
    ("cnnlab.datasets.loaders", 1), ("cnnlab.datasets.samples", 1),
    ("cnnlab.interpret.surgery", 2), ("cnnlab.interpret.attribution", 2),
    ("cnnlab.interpret.adversarial", 2), ("cnnlab.interpret.features", 2),
    ("cnnlab.augment._generator", 2),
    ("cnnlab.transfer.backbones", 3), ("cnnlab.transfer.fine_tuning", 3),
    ("cnnlab.transfer.features", 3), ("cnnlab.pretrained", 3),
    ("cnnlab.exercises.lab01", 4), ("cnnlab.grading.hidden.lab01", 5), ("cnnlab.cli", 6),
    ("cnnlab.new_module", None), ("cnnlabx", None), ("cnnlab.opsx", None),
])
def test_the_table_places_todays_and_the_planned_modules(module, layer):
    assert layer_of(module) == layer


def test_contributing_names_every_layer_and_prefix_of_the_table():
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = contributing.split("## Module map and layers", 1)[-1].split("\n## ", 1)[0]
    missing = [name for name, prefixes in LAYERS.values() if name not in section]
    missing += [prefix for _, prefixes in LAYERS.values() for prefix in prefixes
                if prefix != "cnnlab" and f"`{prefix.removeprefix('cnnlab.')}`" not in section]
    assert not missing, f"CONTRIBUTING.md's module map does not name {missing}"
