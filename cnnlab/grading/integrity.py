"""Flags an exercise cell that uses cnnlab's own implementation of that exercise.

A student can pass an exercise by handing back the reference instead of writing it:
``from cnnlab.ops import correlate2d``, or ``exercise("01.correlate2d").reference()``.  The grader
reads each submitted exercise cell with :mod:`ast` (it never runs it here) and flags:

* the cnnlab function(s) that implement *that* exercise (:func:`implementations`), imported or
  used by any route it can follow: ``import``/``from ... import``, aliases (``import cnnlab.ops as
  o``, ``f = o.correlate2d``), re-exports, names the lab's own cells import (``ops`` in Lab 02),
  ``getattr(m, "name")``, ``importlib.import_module("...")``, ``__import__``, ``sys.modules[...]``
  and code in constant strings given to ``exec``/``eval`` or to IPython magics;
* in every exercise cell, the exercise definitions and their answers: ``cnnlab.exercises``,
  ``cnnlab.exercise.exercise``/``lab_exercises``, ``cnnlab.checkpoint``, ``cnnlab.grading``, any
  ``.reference`` and ``.expected()``;
* what it cannot follow: a cnnlab module that holds such a function used as a plain value
  (``getattr(ops, name)``, ``vars(ops)``), a module imported by a computed name, ``exec`` of a
  computed string.

Other uses of cnnlab are fine (``cnnlab.ops.pool2d`` or ``keras`` in a ``correlate2d`` cell,
``arithmetic.conv_output_size`` outside the exercise about it).  A flag never changes a score: it
is a note for the instructor.  The export cell adds two run-time checks: the answer object is a
cnnlab function (:func:`cnnlab.grading.export.cnnlab_origin`), and the tests of the answer
called one of the exercise's implementations, however the cell reached it (:func:`watched_code`).

Used in: ``cnnlab grade``.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["ALWAYS", "implementations", "resolve_name", "watched_code", "code_digest", "cell_flags",
           "notebook_aliases",
           "canonical_name", "submission_flags", "index_cnnlab"]

#: Flagged in every exercise cell: the exercise definitions, their references and the grader.
ALWAYS = ("cnnlab.exercises", "cnnlab.exercise.exercise", "cnnlab.exercise.lab_exercises",
          "cnnlab.selfcheck.checkpoint", "cnnlab.grading")

_CODE_RUNNERS = {"exec", "eval", "compile"}
_IPYTHON_RUNNERS = {"run_line_magic", "run_cell_magic", "run_cell", "ex", "ev"}
_EXERCISE_ID = re.compile(r"^\d\d\.\w+$")
_NAMESPACE_DUNDERS = {"__dict__", "__getattr__", "__getattribute__", "__loader__", "__spec__"}


# --------------------------------------------------------------------------------------------
# What cnnlab defines: a static index of its modules (nothing is imported)


@lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    """Every cnnlab module name and its file (found on disk; nothing is imported)."""
    import cnnlab

    root = Path(cnnlab.__file__).resolve().parent
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


@lru_cache(maxsize=None)
def _table(module: str) -> dict:
    """``{top-level name: target path, or None if defined there}`` of one cnnlab module."""
    path = _modules().get(module)
    table: dict = {}
    if path is None:
        return table
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return table
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in tree.body:
        _index_statement(node, module, package, table)
    if module == "cnnlab":  # the lazy re-exports of cnnlab/__init__.py
        import cnnlab

        for name, submodule in getattr(cnnlab, "_FUNCTIONS", {}).items():
            table[name] = f"cnnlab.{submodule}.{name}"
        for name in getattr(cnnlab, "_SUBMODULES", ()):
            table[name] = f"cnnlab.{name}"
    return table


def index_cnnlab() -> None:
    """Read every cnnlab module's top level now, once, rather than on first use (the grader's
    parse server does this before it forks a worker per submission)."""
    for module in _modules():
        _table(module)


def _defines(module: str, name: str) -> bool:
    """True if ``module``'s source has a top-level ``def name`` or ``class name``."""
    try:
        text = _modules()[module].read_text(encoding="utf-8")
    except (KeyError, OSError):
        return False
    return re.search(rf"^(?:async\s+def|def|class)\s+{re.escape(name)}\b", text, re.M) is not None


def _index_statement(node, module, package, table) -> None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        table[node.name] = None
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                table[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                table[top] = top
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parent + ([base] if base else []))
        for alias in node.names:
            if alias.name != "*":
                table[alias.asname or alias.name] = f"{base}.{alias.name}"
    elif (isinstance(node, ast.Assign) and len(node.targets) == 1
          and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "_HOMES"
          and isinstance(node.value, ast.Dict)):
        # A module's lazy re-exports (read by its __getattr__, as cnnlab.pretrained's
        # efficientnet_lite0): ``_HOMES = {"name": "cnnlab.home.module"}``.
        for key, home in zip(node.value.keys, node.value.values):
            if isinstance(key, ast.Constant) and isinstance(home, ast.Constant):
                table[key.value] = f"{home.value}.{key.value}"
    elif isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        for target in targets:
            if isinstance(target, ast.Name):
                if isinstance(value, ast.Name) and value.id in table:
                    table[target.id] = table[value.id] or f"{module}.{value.id}"
                else:
                    table.setdefault(target.id, None)


def canonical_name(path: str, _depth: int = 0) -> tuple[str, str]:
    """Resolve a dotted cnnlab path through re-exports: ``(canonical path, kind)``.

    ``kind`` is ``"module"``, ``"object"`` (defined in a cnnlab module), ``"unknown"`` (a cnnlab
    path the index does not know) or ``"other"`` (not cnnlab).  ``cnnlab.checkpoint`` gives
    ``("cnnlab.selfcheck.checkpoint", "object")``.
    """
    parts = path.split(".")
    if parts[0] != "cnnlab" or _depth > 10:
        return path, "other" if parts[0] != "cnnlab" else "unknown"
    modules = _modules()
    current, kind = "cnnlab", "module"
    for i, name in enumerate(parts[1:], start=1):
        if kind != "module":
            return ".".join([current] + parts[i:]), kind
        if f"{current}.{name}" in modules:
            current = f"{current}.{name}"
            continue
        table = _table(current)
        if name not in table:
            return ".".join([current] + parts[i:]), "unknown"
        target = table[name]
        if target is None:
            current, kind = f"{current}.{name}", "object"
        else:
            current, kind = canonical_name(target, _depth + 1)
            if kind == "other":
                return ".".join([current] + parts[i + 1:]), "other"
    return current, kind


# --------------------------------------------------------------------------------------------
# Which cnnlab objects implement an exercise


def _reference_name(ex) -> str | None:
    import inspect

    try:
        obj = ex.reference()
    except Exception:  # noqa: BLE001 - a reference that cannot be built names nothing
        return None
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
        return None
    module = getattr(obj, "__module__", "") or ""
    qualname = getattr(obj, "__qualname__", "") or ""
    if not module.startswith("cnnlab.") or "<" in qualname:
        return None
    return canonical_name(f"{module}.{qualname}")[0]


def implementations(ex) -> tuple[str, ...]:
    """The canonical cnnlab names that implement exercise ``ex``: its ``implementations`` (listed
    on the exercise, in ``cnnlab/exercises/labNN.py``), the reference object itself when it lives
    in cnnlab outside ``cnnlab.exercises``, and a cnnlab function with the exercise's name.

    Used in: ``cnnlab grade``.
    """
    names = list(ex.implementations)
    reference = _reference_name(ex)
    if reference:
        names.append(reference)
    for module in _modules():
        if not module.startswith(("cnnlab.exercises", "cnnlab.grading")) \
                and _defines(module, ex.name):
            names.append(f"{module}.{ex.name}")
    out = []
    for name in names:
        canon = canonical_name(name)[0]
        if not canon.startswith("cnnlab.exercises") and canon not in out:
            out.append(canon)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Reading a cell


def _parse(source: str):
    """Parse a cell as IPython would run it (magics become calls), or return None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - plain Python is still worth reading
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _import_bindings(node) -> list[tuple[str, str]]:
    """``(bound name, dotted path)`` for an import statement (star imports bind nothing)."""
    if isinstance(node, ast.Import):
        return [(a.asname, a.name) if a.asname else (a.name.split(".")[0], a.name.split(".")[0])
                for a in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return [(a.asname or a.name, f"{node.module}.{a.name}") for a in node.names
                if a.name != "*"]
    return []


def notebook_aliases(sources) -> dict[str, str]:
    """Names the notebook's cells bind by importing: ``{"ops": "cnnlab.ops", ...}``.

    Cells share one namespace, so a name a lab's setup cell imports (``from cnnlab import ops``)
    can be used in an exercise cell without an import there.  Used in: ``cnnlab grade``.
    """
    aliases = {"cnnlab": "cnnlab"}
    for source in sources:
        tree = _parse(source)
        if tree is None:
            continue
        for node in ast.walk(tree):
            for name, path in _import_bindings(node):
                aliases[name] = path
    return aliases


def _local_names(function) -> set[str]:
    """Names a function (or lambda) binds itself: parameters and assignments in its body."""
    args = function.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    body = function.body if isinstance(function.body, list) else [function.body]
    declared = set()
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                declared |= set(node.names)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {name for name, _ in _import_bindings(node)}
    return names - declared


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _module_level_nodes(statement):
    """The nodes of a statement outside the functions and classes it defines."""
    todo = [statement]
    while todo:
        node = todo.pop()
        yield node
        if not (isinstance(node, _SCOPES) and node is not statement):
            todo.extend(ast.iter_child_nodes(node))


def _stored_names(statement) -> set[str]:
    """Names a module-level statement binds (not inside the functions it defines)."""
    if isinstance(statement, _SCOPES[:3]):
        return {statement.name}
    names = set()
    for node in _module_level_nodes(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, _SCOPES[:3]):
            names.add(node.name)
    return names


class _Reader:
    """Reads one cell.  Module level is read in order (a rebinding ends an alias); a function
    sees the names it does not bind itself, as bound where it is defined or later in the cell."""

    def __init__(self, aliases, forbidden, depth=0):
        self.aliases = dict(aliases)
        self.forbidden = forbidden
        self.depth = depth
        self.later: dict[str, str] = {}  # aliases bound anywhere at the cell's module level
        self.reasons: dict[str, str] = {}

    # ---- bookkeeping
    def flag(self, key: str, reason: str) -> None:
        self.reasons.setdefault(key, reason)

    def matches(self, canon: str) -> str | None:
        for name in self.forbidden + ALWAYS:
            if canon == name or canon.startswith(name + "."):
                return name
        return None

    def holds(self, module: str) -> str | None:
        """A forbidden name that module ``module`` gives access to, if any."""
        for name in self.forbidden + ALWAYS:
            if name.startswith(module + "."):
                return name
        for name in _table(module):
            canon, _ = canonical_name(f"{module}.{name}")
            if self.matches(canon):
                return canon
        return None

    def builtin(self, node, name) -> bool:
        return isinstance(node, ast.Name) and node.id == name and name not in self.aliases

    @staticmethod
    def constant(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return None

    # ---- names
    def resolve(self, node) -> str | None:
        """The dotted path an expression names, where it can be followed statically."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):
            key = self.constant(node.slice)
            if key is None:
                return None
            if self.resolve(node.value) == "sys.modules":
                return key
            if isinstance(node.value, ast.Call) and self.builtin(node.value.func, "globals"):
                return self.aliases.get(key)
            return None
        if isinstance(node, ast.Call) and node.args:
            if self.builtin(node.func, "getattr") and len(node.args) >= 2:
                base, attr = self.resolve(node.args[0]), self.constant(node.args[1])
                return f"{base}.{attr}" if base and attr else None
            first = self.constant(node.args[0])
            if first is None:
                return None
            if self.resolve(node.func) == "importlib.import_module" and len(node.args) == 1:
                return first
            if self.builtin(node.func, "__import__") or \
                    self.resolve(node.func) == "importlib.__import__":
                fromlist = [k for k in node.keywords if k.arg == "fromlist"] or node.args[3:4]
                return first if fromlist else first.split(".")[0]
        return None

    def bindings(self, statement) -> dict[str, str | None]:
        """What a module-level statement binds: an alias path, or None (not followed)."""
        out: dict[str, str | None] = {name: None for name in _stored_names(statement)}
        for node in _module_level_nodes(statement):
            for name, path in _import_bindings(node):
                out[name] = path
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) \
                else [statement.target]
            path = self.resolve(statement.value)
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = path
        return out

    # ---- reading
    def use(self, path: str, verb: str, opaque: bool) -> None:
        canon, kind = canonical_name(path)
        if kind == "other":
            return
        if self.matches(canon):
            self.flag(canon, f"{verb} {canon}")
            return
        module, _, attr = canon.rpartition(".")
        if kind == "module" and opaque:
            held = self.holds(canon)
            if held:
                self.flag(canon, f"uses the module {canon} in a way the grader cannot follow "
                                 f"(it holds {held})")
        elif attr in _NAMESPACE_DUNDERS and canonical_name(module)[1] == "module":
            held = self.holds(module)
            if held:
                self.flag(canon, f"reads {canon} (the module holds {held})")

    def code(self, node, how: str) -> None:
        """Code given as a string: read it when constant, flag it when computed."""
        text = self.constant(node)
        if text is None:
            self.flag(f"dynamic:{how}", f"runs code built at run time ({how})")
        elif self.depth < 3:
            inner = _Reader(self.aliases, self.forbidden, self.depth + 1)
            inner.read(text)
            for key, reason in inner.reasons.items():
                self.flag(key, reason)

    def read(self, source: str) -> None:
        tree = _parse(source)
        if tree is None:
            return
        for statement in tree.body:
            for name, path in self.bindings(statement).items():
                if path is not None:
                    self.later[name] = path
        for statement in tree.body:
            self.visit(statement)
            for name, path in self.bindings(statement).items():
                if path is None:
                    self.aliases.pop(name, None)
                else:
                    self.aliases[name] = path

    def visit_function(self, node) -> None:
        saved = self.aliases
        local = _local_names(node)
        scope = {**self.later, **saved}
        self.aliases = {k: v for k, v in scope.items() if k not in local}
        body = node.body if isinstance(node.body, list) else [node.body]
        for statement in body:  # imports and aliases inside the function are followed too
            for sub in ast.walk(statement):
                for name, path in _import_bindings(sub):
                    self.aliases[name] = path
        for child in ast.iter_child_nodes(node):
            self.visit(child)
        self.aliases = saved

    def visit(self, node) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self.visit_function(node)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.visit_import(node)
            return
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            path = self.resolve(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if path is not None and all(isinstance(t, ast.Name) for t in targets):
                self.use(path, "uses", opaque=False)  # an alias: its uses are followed
                for target in targets:
                    self.aliases[target.id] = path
                return
        if isinstance(node, ast.expr):
            path = self.resolve(node)
            if path is not None:
                self.use(path, "uses", opaque=True)
                return
        if isinstance(node, ast.Attribute) and node.attr == "reference":
            self.flag("attr:reference", "uses `.reference` (an exercise's reference answer)")
        if isinstance(node, ast.Call):
            self.visit_call(node)
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def visit_import(self, node) -> None:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            canon, kind = canonical_name(node.module or "")
            held = (self.matches(canon) and canon) or (kind == "module" and self.holds(canon))
            if held:
                self.flag(canon, f"imports everything from {canon} (it holds {held})")
            return
        for name, path in _import_bindings(node):
            self.use(path, "imports", opaque=False)
            self.aliases[name] = path
        if isinstance(node, ast.Import):  # `import cnnlab.exercises.lab01` binds only cnnlab
            for alias in node.names:
                self.use(alias.name, "imports", opaque=False)

    def visit_call(self, node) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _CODE_RUNNERS and func.id not in self.aliases:
            if node.args:
                self.code(node.args[0], func.id)
        elif isinstance(func, ast.Attribute) and func.attr in _IPYTHON_RUNNERS and node.args:
            self.code(node.args[-1], f"IPython {func.attr}")
        if isinstance(func, ast.Attribute) and func.attr == "expected":
            self.flag("attr:expected", "calls `.expected()` (a test's expected answer)")
        if isinstance(func, ast.Name) and func.id == "exercise" and node.args \
                and "exercise" not in self.aliases:
            text = self.constant(node.args[0])
            if text and _EXERCISE_ID.match(text):
                self.flag("call:exercise", f"calls exercise({text!r})")
        is_import = self.builtin(func, "__import__") or \
            self.resolve(func) in ("importlib.import_module", "importlib.__import__")
        if is_import and (not node.args or self.constant(node.args[0]) is None):
            self.flag("dynamic:import", "imports a module whose name is computed at run time")


def cell_flags(source: str, forbidden, aliases=None) -> list[str]:
    """Reasons to flag one exercise cell: it uses one of ``forbidden`` (canonical cnnlab names).

    ``aliases`` are the names the rest of the notebook imports (:func:`notebook_aliases`).
    Returns ``[]`` for a clean cell.  Used in: ``cnnlab grade``.
    """
    reader = _Reader(aliases or {"cnnlab": "cnnlab"}, tuple(forbidden))
    try:
        reader.read(source)
    except RecursionError:
        return ["the grader could not read this cell (nested too deeply)"]
    return list(reader.reasons.values())


def submission_flags(notebook, positions, exercises, forbidden=None, skip=()) -> dict:
    """``{exercise id: [reasons]}`` for the exercise cells of a prepared submission.

    ``positions`` maps an exercise id to its (cell, export cell) indices in ``notebook``;
    ``forbidden`` maps an exercise id to :func:`implementations` (computed when missing);
    exercises in ``skip`` (missing from the submission) are not read.  Used in: ``cnnlab grade``.
    """
    exports = {export for _, export in positions.values()}
    aliases = notebook_aliases(cell.source for i, cell in enumerate(notebook.cells)
                               if cell.get("cell_type") == "code" and i not in exports)
    flags = {}
    for ex in exercises:
        if ex.id in skip or ex.id not in positions:
            continue
        names = (forbidden or {}).get(ex.id)
        if names is None:
            names = implementations(ex)
        reasons = cell_flags(notebook.cells[positions[ex.id][0]].source, names, aliases)
        if reasons:
            flags[ex.id] = reasons
    return flags


# --------------------------------------------------------------------------------------------
# At run time: the code of each implementation, which the kernel watches for while the tests run


def code_digest(code) -> str:
    """The SHA-256 of a code object's bytecode (``co_code``), hex: the same function's code,
    however it was reached (an alias, ``sys.modules[...]``, its source ``exec``-ed again), has
    the same digest in the same Python.  Used in: ``cnnlab grade`` (kernel and grader)."""
    import hashlib

    return hashlib.sha256(code.co_code).hexdigest()


def resolve_name(dotted: str):
    """The object a dotted name like ``cnnlab.ops.correlate2d`` names: the longest importable
    module prefix, then attributes.  Raises ImportError or AttributeError when there is none.
    Used in: ``cnnlab grade`` (the call watch, the similarity report's references)."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"no module in {dotted!r} can be imported")


def _resolved_or_none(dotted: str):
    try:
        return resolve_name(dotted)
    except (ImportError, AttributeError):
        return None


def watched_code(ex, names=None) -> dict[str, dict[str, str]]:
    """``{function name: {code digest: dotted name}}`` of the functions that compute exercise
    ``ex``'s answer (``names``, by default :func:`implementations`, and its reference when that
    is a function, wherever it lives): while the grader's probes run the student's answer, the
    kernel notes any call of one of them (:func:`cnnlab.grading.export.exporter`), which catches
    what no reading of the cell can (a computed ``sys.modules`` key, an alias made in another
    cell, ``__globals__`` of a public function, ``builtins.__import__``, the module's source
    loaded again).  Plain data, computed in the grader and written into the notebook's first
    cell.  Used in: ``cnnlab grade``."""
    import inspect

    functions = [(name, _resolved_or_none(name)) for name in (implementations(ex) if names is None
                                                      else names)]
    try:
        reference = ex.reference()
    except Exception:  # noqa: BLE001 - a reference that cannot be built watches nothing
        reference = None
    if inspect.isfunction(reference):
        functions.append((f"{reference.__module__}.{reference.__qualname__}", reference))
    watched: dict[str, dict[str, str]] = {}
    for name, function in functions:
        function = inspect.unwrap(function) if callable(function) else function
        code = getattr(function, "__code__", None)
        if code is not None and code.co_name != "<lambda>":  # a lambda's code is too common
            watched.setdefault(code.co_name, {})[code_digest(code)] = name
    return watched
