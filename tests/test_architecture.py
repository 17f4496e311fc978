"""The shape of the code: no import circles (function bodies included), one registration per kind,
every shipped config valid, and the default config trainable."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

import pytest

from trainer.config import SourceConfig, load_config, load_data_config, read_yaml

SRC = Path(__file__).resolve().parents[1] / "src" / "trainer"
ROOT = SRC.parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def project_imports() -> dict[str, set[str]]:
    """Every import of a project module by a project module, anywhere in its body (functions included),
    except `if TYPE_CHECKING:` blocks, which never run."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block)
                   for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_circles_even_inside_functions():
    graph = project_imports()
    assert "trainer.outputs.model_folder" in graph["trainer.workflows.evaluate"]  # the walk sees imports in function bodies too
    assert find_cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


SHIPPED = sorted((ROOT / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_validates(path, monkeypatch):
    monkeypatch.chdir(path.parent)  # shipped configs name their paths from the project root, wherever one runs
    raw = read_yaml(path)
    if "run_name" in raw:
        config = load_config(path)
        assert config.model_dir.parent == ROOT / raw.get("output_dir", "models")
    elif "sources" in raw:
        assert load_data_config(path).sources
    elif "params" in raw:  # a sweep space, checked against the base config it names
        from trainer.workflows.sweep import load_space

        space, base, _ = load_space(path, None)
        assert space.params and base.run_name
    else:
        pytest.fail(f"{path}: neither an experiment config (run_name) nor a data config (sources)")


def test_shipped_configs_are_all_found():
    names = {p.relative_to(ROOT).as_posix() for p in SHIPPED}
    assert {"configs/default.yaml", "configs/data/bundled.yaml", "configs/rules.yaml"} <= names


def test_default_config_shrunk_to_the_tiny_model_trains(tiny_model_dir, tmp_path, monkeypatch):
    """configs/default.yaml as shipped, with the tiny model, one epoch and outputs in tmp_path."""
    from trainer.workflows.train import train

    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "configs" / "default.yaml", [
        f"model.pretrained={tiny_model_dir}", "training.epochs=1", "training.precision=fp32",
        f"output_dir={tmp_path / 'models'}", f"data.output_dir={tmp_path / 'processed'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
    ])
    result = train(config)
    assert (result.model_dir / "model.safetensors").is_file()
    assert 0.0 <= result.metrics["test"]["macro_f1"] <= 1.0 and result.metrics["test"]["n"] > 100


@pytest.fixture()
def toy_kind():
    """A toy source kind: its config, its reader, and one registration."""
    from trainer.data.sources import Example, SourceResult
    from trainer.registry import SOURCES, register_source

    def read_toy(source, num_proc=1, progress=True):
        result = SourceResult(articles=source.articles)
        for article in range(source.articles):
            for index, (text, label) in enumerate([("Officials said the road was closed.", "attributed"),
                                                   ("The road was closed on Monday.", "verified"),
                                                   ("The closure could not be verified.", "unverified")]):
                result.examples.append(Example(f"{text} ({article})", label, f"toy{article}", index, "gold", "toy"))
        return result

    @register_source(read_toy, lambda source: [])
    class ToySource(SourceConfig):
        kind: Literal["toy"] = "toy"
        articles: int = 12

    yield ToySource
    SOURCES.unregister("toy")


def test_a_new_source_kind_is_one_registration(toy_kind, tmp_path):
    from trainer.data.build import build_dataset

    config = load_data_config_from({"name": "toys", "sources": [{"kind": "toy", "articles": 20}],
                                    "output_dir": str(tmp_path)}, tmp_path)
    assert isinstance(config.sources[0], toy_kind)
    built = build_dataset(config, progress=False)
    assert sum(len(built.dataset[split]) for split in built.dataset) == 60


def test_unregistered_kinds_are_errors_that_list_the_registered_ones(tmp_path):
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sources\[0\]: expected one of 'corpus', 'folder', 'brat', 'labeled', "
                                          r"'huggingface', 'labelstudio', 'pseudo', 'teacher', found 'toy'"):
        load_data_config_from({"name": "x", "sources": [{"kind": "toy"}]}, tmp_path)


def load_data_config_from(content: dict, folder: Path):
    import yaml

    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(content))
    return load_data_config(path)


# ---------------------------------------------------------------- sizes and private names

MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def _sources() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))}


def test_no_function_over_80_lines_and_no_module_over_600():
    long_functions, long_modules = [], []
    for path in sorted(SRC.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(SRC)} ({lines} lines)")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    assert long_modules == [] and long_functions == []


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_privates(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, methods, module and class attributes, `self._x`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if _private(name)}


def private_uses(sources: dict[str, ast.Module]) -> list[str]:
    """Where one project module uses a private name of another: imports it, reads it off the other module,
    or reads a private attribute (`obj._x`, not on self or cls) that only another module defines."""
    defined = {name: _defined_privates(tree) for name, tree in sources.items()}
    found = []
    for name, tree in sources.items():
        modules_bound: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trainer"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in sources:
                        modules_bound[alias.asname or alias.name] = full
                    elif _private(alias.name):
                        found.append(f"{name} imports {node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in sources and alias.asname:
                        modules_bound[alias.asname] = alias.name
        others = set().union(*(names for module, names in defined.items() if module != name))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in modules_bound:
                found.append(f"{name} uses {modules_bound[owner.id]}.{node.attr}")
            elif (not (isinstance(owner, ast.Name) and owner.id in ("self", "cls"))
                  and node.attr in others and node.attr not in defined[name]):
                found.append(f"{name} uses {node.attr} of another module (line {node.lineno})")
    return sorted(set(found))


def test_no_module_uses_a_private_name_of_another():
    assert private_uses(_sources()) == []


def test_the_private_name_finder_finds_planted_uses():
    planted = {
        "trainer.a": ast.parse("def _helper():\n    pass\nclass A:\n    def _step(self):\n        self._state = 1\n"),
        "trainer.b": ast.parse("from trainer.a import _helper\nfrom trainer import a\n"
                               "def f(x):\n    a._helper()\n    x._step()\n    return x._state\n"),
        "trainer.c": ast.parse("class C:\n    def _step(self):\n        return self._step\n"),
    }
    assert private_uses(planted) == [
        "trainer.b imports trainer.a._helper", "trainer.b uses _state of another module (line 6)",
        "trainer.b uses _step of another module (line 5)", "trainer.b uses trainer.a._helper",
    ]
