"""The package's shape, enforced: layered imports without circles, small files and functions.

Layers, lowest first. A module may import its own package and any package of a lower layer;
packages that share a layer (tokenizers and model; training and inference) may not import each
other. `vidchat.cli` is entry plumbing (Hydra composition, one-line errors) that imports only
`errors` and `utils`, so every entry point can use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vidchat"
LAYERS = [
    ["vidchat.errors"],
    ["vidchat.utils"],
    ["vidchat.cli"],
    ["vidchat.media"],
    ["vidchat.tokenizers", "vidchat.model", "vidchat.perception"],
    ["vidchat.data"],
    ["vidchat.training", "vidchat.inference"],
    ["vidchat.live"],
    ["vidchat.eval", "vidchat.webapp"],
    ["vidchat.curate"],
    ["vidchat.train", "vidchat.infer"],
]
# Guides measured on `ruff format`ted code: past them, split by concern.
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def imports_of(path: Path, mod: str | None = None) -> set[str]:
    """Every vidchat module `path` (module `mod`, by default named by its place in the package)
    imports; a `from pkg import name` of a submodule counts as that submodule."""
    mod = mod or module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("vidchat")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            if not base.startswith("vidchat"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if _is_module(sub) else base)
    return out - {mod}


def layer_of(mod: str) -> tuple[int, str]:
    for i, packages in enumerate(LAYERS):
        for pkg in packages:
            if mod == pkg or mod.startswith(pkg + "."):
                return i, pkg
    raise AssertionError(f"{mod} is in no layer of tests/test_architecture.py")


SOURCES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {module_name(p): imports_of(p) for p in SOURCES}
CODE = SOURCES + sorted((ROOT / "bench").glob("*.py")) + [ROOT / "train.py", ROOT / "infer.py"]


def climbing_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes to a package of the same or a higher layer than the importer's."""
    found = []
    for mod, deps in sorted(graph.items()):
        layer, pkg = layer_of(mod) if mod != "vidchat" else (len(LAYERS), "vidchat")
        for dep in sorted(deps):
            dep_layer, dep_pkg = layer_of(dep)
            if dep_pkg != pkg and dep_layer >= layer:
                found.append(f"{mod} imports {dep}: a layer-{dep_layer} package from layer {layer}")
    return found


def own_package_imports(path: Path, mod: str | None = None) -> list[int]:
    """Lines where a module (`mod`, by default named by its place) imports through its own
    package's `__init__` (`from pkg import x` inside pkg): the `__init__` may import the module
    back, a cycle no graph of submodules shows. Import the submodule itself (`import pkg.x as
    x`, `from pkg.x import y`)."""
    if path.name == "__init__.py":
        return []
    package = (mod or module_name(path)).rpartition(".")[0]
    return [
        n.lineno
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.ImportFrom) and not n.level and n.module == package
    ]


def import_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as a path of modules, or [] (a depth-first search that stops
    at the first back edge)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(mod: str) -> list[str]:
        state[mod] = 1
        stack.append(mod)
        for dep in sorted(graph.get(mod, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[mod] = 2
        return []

    for mod in sorted(graph):
        if mod not in state and (cycle := visit(mod)):
            return cycle
    return []


def oversized(path: Path) -> list[str]:
    """The file itself if over MAX_FILE_LINES, and each function over MAX_FUNCTION_LINES.

    Measured on `ruff format`ted code: the limits are a prompt to split by concern, never a
    reason to squeeze lines (CI checks the formatting, so a squeezed line does not pass)."""
    text = path.read_text()
    found = []
    if (lines := len(text.splitlines())) > MAX_FILE_LINES:
        found.append(f"{path}: {lines} lines (over {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno} {node.name}: {length} lines")
    return found


def test_imports_only_go_down():
    assert not climbing_imports(GRAPH), "\n".join(climbing_imports(GRAPH))


def test_curation_reads_perception_not_evaluation():
    """Face detection, SyncNet, VAD and the rest live in `vidchat.perception`, below both."""
    offenders = [
        f"{mod} imports {dep}"
        for mod, deps in GRAPH.items()
        if mod.startswith("vidchat.curate")
        for dep in deps
        if dep.startswith("vidchat.eval")
    ]
    assert not offenders, offenders


def test_no_module_imports_its_own_package_init():
    offenders = [f"{p}: line {n}" for p in SOURCES for n in own_package_imports(p)]
    assert not offenders, offenders


def test_no_import_cycles():
    assert not import_cycle(GRAPH), "import cycle: " + " -> ".join(import_cycle(GRAPH))


def test_small_files_and_functions():
    offenders = [found for path in CODE for found in oversized(path)]
    assert not offenders, "\n".join(offenders)


def test_every_check_catches_a_planted_offender(tmp_path):
    """Each check above can fail: a planted module breaks each rule once."""
    climbing = tmp_path / "zz_climbing.py"
    climbing.write_text("from vidchat.training import optim\n")
    graph = {
        **GRAPH,
        "vidchat.model.zz_climbing": imports_of(climbing, "vidchat.model.zz_climbing"),
    }
    assert climbing_imports(graph) == [
        "vidchat.model.zz_climbing imports vidchat.training.optim: a layer-6 package from layer 4"
    ]
    # registry.py as it was: its package's __init__ imported it back
    own = tmp_path / "zz_own.py"
    own.write_text("from vidchat.eval.metrics import asr\nimport vidchat.eval.metrics.vad as vad\n")
    assert own_package_imports(own, "vidchat.eval.metrics.zz_own") == [1]
    cyclic = {**GRAPH, "vidchat.zz_a": {"vidchat.zz_b"}, "vidchat.zz_b": {"vidchat.zz_a"}}
    assert import_cycle(cyclic) == ["vidchat.zz_a", "vidchat.zz_b", "vidchat.zz_a"]
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    big = tmp_path / "zz_big.py"
    big.write_text("def f():\n" + body + "\n" * (MAX_FILE_LINES - MAX_FUNCTION_LINES))
    assert [line.split(": ")[0] for line in oversized(big)] == [str(big), f"{big}:1 f"]


def test_every_test_has_a_time_limit(request):
    """pytest-timeout's default (pyproject.toml) bounds every test that sets none of its own."""
    assert request.config.pluginmanager.has_plugin("timeout")
    assert 0 < float(request.config.getini("timeout")) <= 600


def _string_literals(path: Path) -> list[str]:
    """The string constants of a module that are not docs (a string standing as a statement:
    a docstring, or a field's docstring below it)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_a_head_kind_is_named_only_by_its_module():
    """A head is one module plus one registry line: no other code branches on its name, and the
    model config carries no per-kind flags (`vidchat.model.heads`)."""
    naming = sorted(
        str(p.relative_to(ROOT))
        for p in SOURCES
        if any("maskgit" in s.lower() for s in _string_literals(p))
    )
    assert naming == ["vidchat/model/heads/maskgit.py"], naming
    from vidchat.model.blocks import ModelConfig

    fields = set(ModelConfig.__dataclass_fields__)
    assert not fields & {"frame_head", "depth_head", "max_group", "frame_prev", "depth_layers"}
