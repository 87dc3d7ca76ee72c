"""The package's import graph keeps the layers of docs/architecture.md: no circles, nothing upward.

Every ``import`` in ``lmassist/**/*.py`` counts, at the top of a module or inside a function (a lazy
import is still a dependency), read with ``ast`` so nothing is executed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lmassist"

# Low to high: an import never goes from a lower layer to a higher one. A module is placed by the
# longest entry that names it or a package above it ("lmassist.backends" covers its modules; the
# package itself, "lmassist", covers only its __init__).
LAYERS: dict[str, int] = {
    # 1. foundation
    "lmassist": 1,  # the package itself: __version__ and the hookimpl marker
    "lmassist.errors": 1,
    "lmassist.system": 1,
    "lmassist.config": 1,
    "lmassist.textinput": 1,
    "lmassist.outputs": 1,
    "lmassist.install_hints": 1,
    "lmassist.hookspecs": 1,
    "lmassist.progress": 1,
    # 2. contract and storage
    "lmassist.generation": 2,
    "lmassist.store": 2,
    "lmassist.modelfiles": 2,
    "lmassist.tasks.base": 2,  # the Task contract, beside generation's Backend: the registry checks both
    "lmassist.docindex": 2,  # folders as a searchable index (issue #16): storage
    "lmassist.attachments": 2,  # files attached to a conversation, stored once by content hash
    # 3. plugins
    "lmassist.plugins": 3,
    "lmassist.registry": 3,
    # 4. engines and tasks
    "lmassist.backends": 4,
    "lmassist.inhouse": 4,
    "lmassist.tasks": 4,
    "lmassist.conversation": 4,
    "lmassist.templates": 4,  # named prompt templates: the user's files and those plugins register
    "lmassist.jobs": 4,  # tasks over many inputs: resumable, atomic outputs, in-order concurrency
    "lmassist.task_models": 4,  # which installed model does each task best (measured, shipped as a table)
    # 5. faces
    "lmassist.commands": 5,
    "lmassist.tui": 5,
    "lmassist.bench": 5,
    "lmassist.cli": 5,
    "lmassist.launch": 5,
    "lmassist.start": 5,
    "lmassist.__main__": 5,
}
LAYER_NAMES = {1: "foundation", 2: "contract and storage", 3: "plugins", 4: "engines and tasks", 5: "faces"}

# Within layer 4: backends run models and know nothing of what is done with them.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "lmassist.backends": ("lmassist.tasks", "lmassist.commands", "lmassist.tui", "lmassist.conversation"),
    "lmassist.tasks": ("lmassist.commands", "lmassist.tui"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(name: str, modules: set[str]) -> str:
    """The module an import names: the longest prefix of ``name`` that is one of ours."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never executed)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def import_graph() -> dict[str, dict[str, tuple[int, bool]]]:
    """module → {imported module: (line of the first import, executed at run time)} over the package."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, dict[str, tuple[int, bool]]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        static = _type_checking_only(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, tuple[int, bool]] = {}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from pkg import sub`` imports the submodule when there is one
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                if target != "lmassist" and not target.startswith("lmassist."):
                    continue
                target = resolve(target, modules)
                if target != name and target not in edges:
                    edges[target] = (node.lineno, id(node) not in static)
        graph[name] = edges
    return graph


def layer_of(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or (prefix != "lmassist" and module.startswith(prefix + ".")):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return best[1] if best else None


def cycles(graph: dict[str, dict[str, tuple[int, bool]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), run-time imports only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, (_, runtime) in graph.get(v, {}).items():
            if not runtime or w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


GRAPH = import_graph()


def test_the_walk_sees_function_level_and_relative_imports():
    """The walk itself: ``cli`` imports ``start`` at the top, and a lazy import counts too."""
    assert "lmassist.start" in GRAPH["lmassist.cli"]
    assert "lmassist.cli" in GRAPH["lmassist.launch"]  # inside main(): lazy, still an edge


def test_every_module_has_a_layer():
    missing = sorted(m for m in GRAPH if layer_of(m) is None)
    assert not missing, f"add these modules to LAYERS here and in docs/architecture.md: {missing}"


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import circles (each a set of modules that import one another): " + "; ".join(
        " ↔ ".join(c) for c in found)


def test_no_import_goes_up_a_layer():
    upward = []
    for module, edges in sorted(GRAPH.items()):
        low = layer_of(module)
        for target, (line, _) in sorted(edges.items()):
            high = layer_of(target)
            if low is not None and high is not None and high > low:
                upward.append(f"{module}:{line} ({LAYER_NAMES[low]}) imports {target} ({LAYER_NAMES[high]})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


@pytest.mark.parametrize("lower", sorted(FORBIDDEN))
def test_forbidden_imports_within_a_layer(lower):
    bad = [f"{module}:{line} imports {target}"
           for module, edges in sorted(GRAPH.items()) if module == lower or module.startswith(lower + ".")
           for target, (line, _) in sorted(edges.items())
           if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[lower])]
    assert not bad, "\n".join(bad)


def test_cycle_finder_finds_a_circle():
    graph = {"a": {"b": (1, True)}, "b": {"c": (1, True)}, "c": {"a": (3, True)}, "d": {"a": (1, True)}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": (1, False)}, "b": {"a": (1, True)}}) == []  # TYPE_CHECKING only


FIRST_FRAME_FREE_OF = ("click", "pluggy", "torch", "transformers", "llama_cpp", "numpy", "httpx", "huggingface_hub")


def _imported_by(modules: str) -> list[str]:
    code = f"import sys, {modules}; print(' '.join(m for m in {FIRST_FRAME_FREE_OF!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_first_frame_path_is_free_of_click_and_pluggy():
    """The console script's first stop imports neither: bare ``lmassist`` pays for them in no frame."""
    assert _imported_by("lmassist, lmassist.launch") == []


def test_the_chat_app_module_imports_no_heavy_library():
    """What bare ``lmassist`` imports before the first frame: the app itself, without the command line,
    the plugins or any model library (a model loads after the first frame)."""
    pytest.importorskip("textual")
    assert _imported_by("lmassist.launch, lmassist.tui.app") == []
