"""The package's shape, enforced: layered imports without circles, small files and functions.

Layers, lowest first. A module may import its own package and any package of a lower layer;
packages that share a layer (tokenizers and model; training and inference) may not import each
other. `vidchat.cli` is entry plumbing (Hydra composition, one-line errors) that imports only
`errors` and `utils`, so every entry point can use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
    ["vidchat.eval", "vidchat.webapp"],
    ["vidchat.curate"],
    ["vidchat.train", "vidchat.infer"],
]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


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


@pytest.mark.parametrize("mod", sorted(GRAPH))
def test_imports_only_go_down(mod):
    layer, pkg = layer_of(mod) if mod != "vidchat" else (len(LAYERS), "vidchat")
    for dep in GRAPH[mod]:
        dep_layer, dep_pkg = layer_of(dep)
        if dep_pkg == pkg:
            continue
        assert dep_layer < layer, f"{mod} imports {dep}: a layer-{dep_layer} package from layer {layer}"


def test_model_and_media_import_nothing_above_them():
    above = ("vidchat.data", "vidchat.training", "vidchat.inference", "vidchat.eval")
    for mod, deps in GRAPH.items():
        if mod.startswith(("vidchat.model", "vidchat.media")):
            assert not [d for d in deps if d.startswith(above)], mod


def test_curation_reads_perception_not_evaluation():
    """Face detection, SyncNet, VAD and the rest live in `vidchat.perception`, below both."""
    for mod, deps in GRAPH.items():
        if mod.startswith("vidchat.curate"):
            assert not [d for d in deps if d.startswith("vidchat.eval")], mod


def own_package_imports(path: Path, mod: str | None = None) -> list[int]:
    """Lines where a module (`mod`, by default named by its place) imports through its own
    package's `__init__` (`from pkg import x` inside pkg): the `__init__` may import the module
    back, a cycle no graph of submodules shows. Import the submodule itself (`import pkg.x as
    x`, `from pkg.x import y`)."""
    if path.name == "__init__.py":
        return []
    package = (mod or module_name(path)).rpartition(".")[0]
    return [n.lineno for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.ImportFrom) and not n.level and n.module == package]  # fmt: skip


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_its_own_package_init(path):
    assert not own_package_imports(path), f"{path}: from its own package at {own_package_imports(path)}"


def test_the_own_package_check_catches_one(tmp_path):
    # registry.py as it was: its package's __init__ imported it back
    fake = tmp_path / "zz_fake_for_test.py"
    fake.write_text("from vidchat.eval.metrics import asr\nimport vidchat.eval.metrics.vad as vad\n")
    assert own_package_imports(fake, "vidchat.eval.metrics.zz_fake_for_test") == [1]


def test_no_import_cycles():
    # Tarjan-free check: a depth-first search that finds any back edge.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        stack.append(mod)
        for dep in sorted(GRAPH.get(mod, ())):
            if dep not in GRAPH:
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[mod] = 2

    for mod in sorted(GRAPH):
        if mod not in state:
            visit(mod)


def test_the_layering_check_catches_a_climbing_import(tmp_path):
    # The check itself must be able to fail: a model module importing training is caught.
    fake, mod = tmp_path / "zz_fake_for_test.py", "vidchat.model.zz_fake_for_test"
    fake.write_text("from vidchat.training import optim\n")
    GRAPH[mod] = imports_of(fake, mod)
    try:
        with pytest.raises(AssertionError, match="imports vidchat.training"):
            test_imports_only_go_down(mod)
    finally:
        GRAPH.pop(mod, None)


CODE = SOURCES + sorted((ROOT / "bench").glob("*.py")) + [ROOT / "train.py", ROOT / "infer.py"]


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_small_files_and_functions(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES, f"{path}: over {MAX_FILE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path}:{node.lineno} {node.name}: {length} lines"


def test_every_test_has_a_time_limit(request):
    """pytest-timeout's default (pyproject.toml) bounds every test that sets none of its own."""
    assert request.config.pluginmanager.has_plugin("timeout")
    assert 0 < float(request.config.getini("timeout")) <= 600


def _string_literals(path: Path) -> list[str]:
    """The string constants of a module that are not docs (a string standing as a statement:
    a docstring, or a field's docstring below it)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}  # fmt: skip
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs]  # fmt: skip


def test_a_head_kind_is_named_only_by_its_module():
    """A head is one module plus one registry line: no other code branches on its name, and the
    model config carries no per-kind flags (`vidchat.model.heads`)."""
    naming = sorted(str(p.relative_to(ROOT)) for p in SOURCES
                    if any("maskgit" in s.lower() for s in _string_literals(p)))  # fmt: skip
    assert naming == ["vidchat/model/heads/maskgit.py"], naming
    from vidchat.model.blocks import ModelConfig

    fields = set(ModelConfig.__dataclass_fields__)
    assert not fields & {"frame_head", "depth_head", "max_group", "frame_prev", "depth_layers"}
