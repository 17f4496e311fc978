"""The docs site's generated parts, rendered at build time so they cannot drift from the code or the results.

mkdocs.yml names this file under `hooks:`. A page asks for a generated part with an HTML comment on a line
of its own, replaced when the site is built:

    <!-- reference: commands -->       every `trainer` command and option, from the argparse parser
    <!-- reference: config -->         every key of the experiment, data and sweep configs, from the schema
    <!-- result: dev-set-models -->    the table in docs/results/dev-set-models.csv, with its command

The functions below import no mkdocs, so tests/test_docs.py checks them without building the site.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

DOCS = Path(__file__).resolve().parent
RESULTS = DOCS / "results"
MARKER = re.compile(r"^<!-- (reference|result): ([\w.-]+) -->$", re.MULTILINE)


# ---------------------------------------------------------------- markdown helpers


def _cell(text: Any) -> str:
    """One table cell: on one line, pipes escaped outside code spans (inside them a pipe splits no cell)."""
    parts = re.split(r"(`+[^`]*`+)", " ".join(str(text).split()))
    return "".join(part if part.startswith("`") else part.replace("|", "\\|").replace("<", "&lt;") for part in parts)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


# ---------------------------------------------------------------- commands, from the argparse parser


def _parser() -> argparse.ArgumentParser:
    from trainer.cli import build_parser

    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_row(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    names = ", ".join(action.option_strings) or action.dest
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        value = " | ".join(str(choice) for choice in action.choices)  # _cell escapes the pipes
    elif action.nargs == 0:
        value = "(a switch)"
    else:
        value = action.metavar or action.dest.upper()
        value = value if isinstance(value, str) else " ".join(value)
        value += " ..." if action.nargs in ("+", "*") else ""
    required = getattr(action, "required", False)
    default = "required" if required else (
        "" if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else _code(str(action.default)))
    helptext = parser._get_formatter()._expand_help(action) if action.help else ""
    return [_code(names), value, default, helptext]


def _command_section(parser: argparse.ArgumentParser, path: list[str], help_line: str, level: int) -> list[str]:
    out = [f"{'#' * level} trainer {' '.join(path)}", "", help_line[:1].upper() + help_line[1:] + ".", "",
           "```", parser.format_usage().strip(), "```", ""]
    rows = [_option_row(parser, action) for action in parser._actions  # positionals too (summarize's output)
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
            and action.help != argparse.SUPPRESS]
    if rows:
        out += [_table(["option", "value", "default", "what it does"], rows), ""]
    for name, sub in _subcommands(parser).items():
        out += _command_section(sub, path + [name], _help_of(parser, name), level + 1)
    return out


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def command_reference() -> str:
    """Markdown for every command of `trainer.cli.TABLE`, in its order, with each option's help."""
    from trainer.cli import TABLE

    parser = _parser()
    top = [_option_row(parser, a) for a in parser._actions if a.option_strings and a.dest != "help"]
    out = ["Options before the command (`trainer -q train ...`):", "", _table(["option", "value", "default",
                                                                                "what it does"], top), ""]
    commands = _subcommands(parser)
    for command in TABLE:
        out += _command_section(commands[command.name], [command.name], command.help.replace("%%", "%"), 2)
    return "\n".join(out)


def documented_commands(markdown: str) -> set[str]:
    """The commands a generated reference has a section for (`## trainer NAME`)."""
    return set(re.findall(r"^## trainer (\S+)$", markdown, re.MULTILINE))


# ---------------------------------------------------------------- config keys, from the pydantic schema


def _models_in(annotation: Any) -> list[type]:
    """The pydantic models an annotation holds (through Annotated, unions, lists and dicts)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if _models_in(annotation) and all(_tag(m) for m in _models_in(annotation)) and origin not in (list, dict):
        tags = [_tag(m).split(": ") for m in _models_in(annotation)]  # a choice of models: name them by their tag
        return f"by {tags[0][0]}: " + " | ".join(value for _, value in tags)
    if isinstance(annotation, type) and _models_in(annotation):
        from trainer.config.schema import DataConfig

        return "path or mapping" if annotation is DataConfig else "mapping"
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " | ".join(str(a) if a is not None else "null" for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin in (list, tuple, set):
        return f"list of {_grouped(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_grouped(args[1])}" if args else "map"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _grouped(annotation: Any) -> str:
    name = _type_name(annotation)
    return f"({name})" if name.startswith("by ") else name


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return "required"
    if _models_in(type(value)):
        return "(its keys below)"
    return _code(_value(value))


def _bounds(field: Any) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "at least", "max_length": "at most"}
    found = []
    for item in field.metadata:
        for attribute, sign in signs.items():
            if getattr(item, attribute, None) is not None:
                found.append(f"{sign} {getattr(item, attribute)}")
    return f" ({', '.join(found)})" if found else ""


def _expanded(field: Any) -> type | None:
    """The one model a field holds, whose keys are listed in place (`training.epochs`); None for a plain
    value, a choice of models (`model`, `sources`: sections of their own) or a config file of its own."""
    from trainer.config.schema import DataConfig

    inner = _models_in(field.annotation)
    plain = len(inner) == 1 and get_origin(field.annotation) not in (list, dict) and inner[0] is not DataConfig
    return inner[0] if plain else None


def config_rows(model: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) for every field of `model` and of the models in it."""
    rows = []
    for name, field in model.model_fields.items():
        key = prefix + name
        meaning = field.description or ("chooses this section's kind" if name in ("kind", "backend", "type") else "")
        rows.append((key, _type_name(field.annotation) + _bounds(field), _default(field), meaning))
        if (inner := _expanded(field)) is not None:
            rows += config_rows(inner, key + ".")
    return rows


def _choices(model: type, prefix: str = "") -> list[tuple[str, type]]:
    """(where, member model) for every field of `model` (or of a nested model) that holds a choice of models."""
    found = []
    for name, field in model.model_fields.items():
        inner = _models_in(field.annotation)
        where = prefix + name + ("[]" if get_origin(field.annotation) is list else "")
        where += ".<key>" if get_origin(field.annotation) is dict else ""
        if (single := _expanded(field)) is not None:
            found += _choices(single, prefix + name + ".")
        elif len(inner) > 1 or get_origin(field.annotation) in (list, dict):
            found += [(where, member) for member in inner]
    return found


def _tag(member: type) -> str:
    """`kind: corpus`: the field and value that choose this member of a choice of models ("" if none)."""
    for name, field in member.model_fields.items():
        if get_origin(field.annotation) is Literal and name in ("kind", "backend", "type"):
            return f"{name}: {get_args(field.annotation)[0]}"
    return ""


def config_models() -> list[tuple[str, str, type]]:
    """(title, a note, model): the config files the reference documents."""
    from trainer.config.schema import DataConfig, ExperimentConfig
    from trainer.config.sweep_space import SweepSpace

    return [
        ("Experiment config", "Its `data:` names a data config file or holds one inline.", ExperimentConfig),
        ("Data config", "", DataConfig),
        ("Sweep space", "", SweepSpace),
    ]


def _doc_line(model: type) -> str:
    doc = (model.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) if doc and not doc.startswith("!!!") else ""


def config_reference() -> str:
    """Markdown: each config file's keys, then each choice (model backends, source kinds, sweep parameters)."""
    out = []
    for title, note, model in config_models():
        out += [f"## {title}", "", f"{_doc_line(model)} {note}".strip(), "",
                _table(["key", "type", "default", "meaning"], [[_code(k), t, d, m] for k, t, d, m in
                                                              config_rows(model)]), ""]
        for where, member in _choices(model):
            out += [f"### {where}: {_tag(member) or member.__name__}", "", _doc_line(member), "",
                    _table(["key", "type", "default", "meaning"],
                           [[_code(f"{where}.{k}"), t, d, m] for k, t, d, m in config_rows(member)]), ""]
    return "\n".join(out)


def all_config_keys() -> set[str]:
    """Every dotted key of the configs and of each of their choices, as the reference names them."""
    keys = set()
    for _, _, model in config_models():
        keys |= {row[0] for row in config_rows(model)}
        for where, member in _choices(model):
            keys |= {f"{where}.{row[0]}" for row in config_rows(member)}
    return keys


# ---------------------------------------------------------------- results, from docs/results/*.csv


def read_result(name: str) -> tuple[dict[str, list[str]], list[list[str]]]:
    """A result file: `# key: value` lines (title, command, measured, note; command may repeat), then a CSV
    table whose first row is the header."""
    path = RESULTS / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"expected a result file docs/results/{name}.csv, found none; "
                                f"add it (docs/results.md: adding a result) or fix the marker")
    meta: dict[str, list[str]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and lines[0].startswith("#"):
        key, _, value = lines.pop(0).lstrip("# ").partition(":")
        meta.setdefault(key.strip(), []).append(value.removeprefix(" ").rstrip())  # a command keeps its indent
    rows = [row for row in csv.reader(io.StringIO("\n".join(lines))) if row]
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError(f"expected {path.name} to hold a CSV table with as many cells in every row as in its "
                         f"header, found rows of {sorted({len(row) for row in rows})} cells")
    return meta, rows


def render_result(name: str) -> str:
    """The result's table, its note, and the command that gives it."""
    meta, rows = read_result(name)
    out = [_table(rows[0], rows[1:]), ""]
    out += [note + "\n" for note in meta.get("note", [])]
    if meta.get("command"):
        measured = f" ({meta['measured'][0]})" if meta.get("measured") else ""
        out += [f"Command{measured}, from `docs/results/{name}.csv`:", "", "```bash", *meta["command"], "```", ""]
    return "\n".join(out)


def result_names() -> list[str]:
    return sorted(path.stem for path in RESULTS.glob("*.csv"))


def expand(markdown: str) -> str:
    """A page with every marker replaced by what it asks for."""
    def replace(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "result":
            return render_result(name)
        makers = {"commands": command_reference, "config": config_reference}
        if name not in makers:
            raise ValueError(f"expected a reference of {sorted(makers)}, found {name!r}")
        return makers[name]()

    return MARKER.sub(replace, markdown)


# ---------------------------------------------------------------- mkdocs hooks


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """A page with its markers expanded; a marker that cannot be is one line naming the page, and the build stops."""
    from mkdocs.exceptions import PluginError

    try:
        return expand(markdown)
    except (FileNotFoundError, ValueError) as error:
        raise PluginError(f"{page.file.src_path}: {error}") from None


def on_post_build(config: Any) -> None:
    """A result file that no page shows is a warning (a failure under --strict)."""
    import logging

    shown = set()
    for page in Path(config["docs_dir"]).rglob("*.md"):
        shown |= {name for kind, name in MARKER.findall(page.read_text(encoding="utf-8")) if kind == "result"}
    for name in sorted(set(result_names()) - shown):
        logging.getLogger("mkdocs.hooks").warning(f"docs/results/{name}.csv is shown on no page; add "
                                                  f"<!-- result: {name} --> where it belongs")
