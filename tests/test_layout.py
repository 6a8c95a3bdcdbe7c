"""The package's layers: a module's path says what it is and what it may import.

    nn    building blocks and models (attention, transformer, bert, gpt, decoding, sampling, training)
    data  data loaders and committed checkpoints                     may import nn
    lab   experiments by topic (memory, heads, induction, icl, distill…) may import nn, data
    view  the explorer, plots, widgets                               may import nn, data, lab
    book  glue, stamps, calibration, the guide's snippets            may import anything

Every import counts, also those inside functions; only ``if TYPE_CHECKING:`` imports are exempt.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wmbook"
LAYERS = ["nn", "data", "lab", "view", "book"]
ALLOWED = {layer: set(LAYERS[: i + 1]) for i, layer in enumerate(LAYERS)}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """wmbook modules imported by a file (absolute or relative), TYPE_CHECKING blocks excepted."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("wmbook"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.startswith("wmbook"):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules} - {".".join(me)}


MODULES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {_module_name(p): _imports(p) for p in MODULES}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer():
    loose = [m for m in GRAPH if m != "wmbook" and _layer(m) is None]
    assert not loose, f"modules outside nn/data/lab/view/book: {loose}"


@pytest.mark.parametrize("module", [m for m in GRAPH if _layer(m)])
def test_lower_layers_never_import_upper_ones(module):
    layer = _layer(module)
    bad = sorted(m for m in GRAPH[module] if _layer(m) and _layer(m) not in ALLOWED[layer])
    assert not bad, f"{module} ({layer}) imports {bad}; {layer} may import only {sorted(ALLOWED[layer])}"


def test_no_import_cycles():
    graph = {m: {d for d in deps if d != m and not m.startswith(d + ".")} for m, deps in GRAPH.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The rule would be toothless if function-level or relative imports were missed."""
    nn = tmp_path / "wmbook" / "nn"
    nn.mkdir(parents=True)
    f = nn / "x.py"
    f.write_text("def f():\n    from wmbook.view.plot import plot_history\n    from ..lab import heads\n")
    global PACKAGE
    saved = PACKAGE
    try:
        PACKAGE = tmp_path / "wmbook"
        (tmp_path / "wmbook" / "view").mkdir()
        (tmp_path / "wmbook" / "view" / "plot.py").write_text("")
        (tmp_path / "wmbook" / "lab").mkdir()
        (tmp_path / "wmbook" / "lab" / "heads.py").write_text("")
        assert _imports(f) == {"wmbook.view.plot", "wmbook.lab.heads"}
    finally:
        PACKAGE = saved
