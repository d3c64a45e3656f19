"""The package's imports flow one way: base → models → quality → measure → suite → analysis → cli → entry.

Every module is read with `ast`: its imports at the top and inside functions, and the string literals
that name a module of the package where they are handed to ``import_module`` or kept in a lazy export
table (a dict's values). An import of a layer above the module's own, or a cycle between modules (in one
layer or across), fails the test, naming each edge.

The root package (``unet_bench/__init__.py``) is the entry of its lazy exports, so it sits on top; every
module reaches it anyway (Python imports a package before its modules), so an import of it for
``__version__`` is no edge, and the root must import nothing of the package until a name is asked for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import unet_bench

PACKAGE = Path(unet_bench.__file__).parent
# Lowest first. "base": the top-level modules (record, errors, kinds, counter_figures): plain data and
# vocabulary every layer shares. "entry": the package's own front doors (`unet_bench/__init__.py`'s lazy
# exports, `python -m unet_bench`), above everything they hand out.
LAYERS = ("base", "models", "quality", "measure", "suite", "analysis", "cli", "entry")
ROOT = "unet_bench"
ENTRY = {ROOT, "unet_bench.__main__"}


def module_name(path: Path) -> str:
    parts = ["unet_bench", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    if module in ENTRY:
        return "entry"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "base"


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(module: str, path: Path, known: set[str]) -> set[tuple[str, int]]:
    """``(module imported, line)`` for every import of a package module in ``path``, wherever it sits.

    ``from package import name`` counts as importing ``package.name`` where that is a module (the package
    itself is only the way there); string literals naming a package module count too (lazy imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names} & known
            out |= {(name, node.lineno) for name in submodules}
            if len(submodules) < len(node.names):
                out.add((source, node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            out |= {(arg.value, node.lineno) for arg in node.args[:1] if isinstance(arg, ast.Constant)}
        elif isinstance(node, ast.Dict):
            out |= {(value.value, value.lineno) for value in node.values
                    if isinstance(value, ast.Constant) and isinstance(value.value, str)}
    return {(name, line) for name, line in out if name in known and name not in (module, ROOT)}


def edges() -> dict[str, set[tuple[str, int]]]:
    found = modules()
    return {module: imported(module, path, set(found)) for module, path in found.items()}


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{module} ({layer_of(module)}) -> {target} ({layer_of(target)}), line {line}"
              for module, targets in edges().items() for target, line in sorted(targets)
              if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))]
    assert not upward, "imports of a layer above:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {module: {target for target, _ in targets} for module, targets in edges().items()}
    cycles = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join([*path[path.index(module):], module]))
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_every_module_has_a_layer_and_is_walked():
    found = modules()
    assert {"unet_bench.record", "unet_bench.measure.case", "unet_bench.cli.common"} <= set(found)
    assert {layer_of(module) for module in found} == set(LAYERS)


def test_the_root_package_imports_the_package_only_when_a_name_is_asked_for():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    eager = [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
             and any(name.startswith(ROOT) for name in
                     ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]))]
    assert not eager, f"unet_bench/__init__.py imports at its top level: {eager}"


def test_readme_layout_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 1)]
    missing = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name not in ("__init__.py", "__main__.py") and path.parent.name != "cli"
               and path.name not in layout]
    assert not missing, f"README's Layout section does not name: {missing}"
