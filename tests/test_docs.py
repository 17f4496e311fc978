"""The documentation: a short README whose links resolve, and a docs site whose generated parts cover every
command, option and config key, and whose result files all parse and are all shown. No MkDocs needed:
docs/hooks.py (what `make docs` runs) is imported as a plain module."""

import argparse
import importlib.util
import re
from pathlib import Path
from typing import get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from trainer.cli import TABLE, build_parser
from trainer.config.schema import DataConfig, ExperimentConfig
from trainer.config.sweep_space import SweepSpace

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail into a docs/ page and link it"


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = text[text.index("```"):text.index("```", text.index("```") + 3)]
    assert "make train" in first_block and "make test" in first_block


def test_every_readme_link_into_docs_exists():
    targets = [t.split("#")[0] for t in LINK.findall(README.read_text(encoding="utf-8"))]
    into_docs = [t for t in targets if t.startswith("docs/")]
    assert len(into_docs) >= 10  # the README points into the site rather than repeating it
    missing = [t for t in into_docs if not (ROOT / t).exists()]
    assert not missing, f"README.md links to {missing}, which do not exist"


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md"))


def _nav_pages(nav) -> list[str]:
    found = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        found += _nav_pages(value) if isinstance(value, list) else [value]
    return found


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    pages = [str(p.relative_to(DOCS)) for p in _pages()]
    assert sorted(nav) == sorted(pages)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_relative_link_in_the_docs_resolves(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        path = target.split("#")[0]
        if path and "://" not in path and not path.startswith("mailto:"):
            assert (page.parent / path).resolve().exists(), f"{page.name} links to {target}, which does not exist"


def test_command_reference_covers_every_command_and_option():
    markdown = hooks.command_reference()
    assert hooks.documented_commands(markdown) == {command.name for command in TABLE}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in TABLE:
        section = markdown.split(f"## trainer {command.name}\n")[1].split("\n## trainer ")[0]
        parsers = [commands[command.name]]
        parsers += [sub for a in parsers[0]._actions if isinstance(a, argparse._SubParsersAction)
                    for sub in a.choices.values()]
        for parser in parsers:
            for action in parser._actions:
                if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                    continue
                assert action.help, f"`trainer {command.name}`: {action.dest} has no help text"
                for option in action.option_strings:  # a hidden (SUPPRESS) option is left out on purpose
                    if action.help != argparse.SUPPRESS:
                        assert option in section, f"`trainer {command.name}`: {option} is not in the reference"


def _keys(model: type, prefix: str = "") -> set[str]:
    """Every dotted key a config file can hold, walked from the schema itself (not from the generator)."""
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        inner = [a for a in _all_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        suffix = {list: "[].", dict: ".<key>."}.get(get_origin(field.annotation), ".")
        for member in inner:
            if member is not DataConfig or model is DataConfig:  # an experiment's data: documented on its own
                keys |= _keys(member, prefix + name + suffix)
    return keys


def _all_args(annotation) -> list:
    return [annotation] + [inner for arg in get_args(annotation) for inner in _all_args(arg)]


def test_config_reference_covers_every_key_of_the_schema():
    markdown = hooks.config_reference()
    rendered = set(re.findall(r"^\| `([^`]+)` \|", markdown, re.MULTILINE))
    for model in (ExperimentConfig, DataConfig, SweepSpace):
        missing = _keys(model) - rendered
        assert not missing, f"{model.__name__}: {sorted(missing)} are not in the config reference"
    assert "`training.epochs` | int (≥ 1) | `6` |" in markdown  # type, bound and default, from the schema


def test_every_result_file_parses_and_is_shown_on_a_page():
    names = hooks.result_names()
    assert names
    shown = {name for page in _pages() for kind, name in hooks.MARKER.findall(page.read_text(encoding="utf-8"))
             if kind == "result"}
    assert shown == set(names), f"result files shown on no page: {set(names) - shown}; markers without a file: " \
                                f"{shown - set(names)}"
    for name in names:
        meta, rows = hooks.read_result(name)
        assert meta.get("command"), f"docs/results/{name}.csv names no command"
        assert len(rows) >= 2
        assert "```bash" in hooks.render_result(name)


def test_a_result_with_a_ragged_row_or_no_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(hooks, "RESULTS", tmp_path)
    (tmp_path / "ragged.csv").write_text("# command: x\na,b\n1\n")
    with pytest.raises(ValueError, match="as many cells"):
        hooks.read_result("ragged")
    with pytest.raises(FileNotFoundError, match="expected a result file"):
        hooks.expand("<!-- result: absent -->")


def test_every_figure_and_screenshot_is_shown_on_a_page():
    pages = "".join(page.read_text(encoding="utf-8") for page in _pages())
    images = [p for folder in ("figures", "screenshots") for p in (DOCS / folder).iterdir()]
    images.append(DOCS / "label-studio-labeling.png")
    unlinked = [str(p.relative_to(DOCS)) for p in images if f"{p.parent.name}/{p.name}" not in pages
                and f"]({p.name})" not in pages and f"/{p.name})" not in pages]
    assert not unlinked, f"images no page shows: {unlinked}"
