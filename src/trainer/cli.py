"""Command line: a thin layer over the package's functions.

    trainer validate   --config configs/default.yaml [--set key=value ...]
    trainer build-data --config configs/data/bundled.yaml
    trainer check-data --config configs/data/polnear.yaml
    trainer train      --config configs/default.yaml [--set training.epochs=2] [--overwrite]
                       [--register-as NAME --alias champion] [--cv K]
    trainer evaluate   --model models/<run> [--split test | --data file.jsonl | --data-config cfg.yaml]
    trainer compare    --models models/a models/b [--data file.jsonl] [--markdown table.md]
    trainer predict    --model models/<run> (--text "..." | --file article.txt) [--format table|jsonl]

Each command is one entry of `TABLE`: its name, help line, options, the function it runs, and the
options that name what it writes. The parser, the dispatch (`COMMANDS`) and the checks of outputs
before any work (`OUTPUTS`) are all read from that table. What a command prints is `cli_output`'s.

User mistakes print one line and exit with code 2; no traceback. Anything unforeseen is a bug: one
line names it and the log file that holds its traceback (exit 1). Ctrl-C prints one line (exit 130).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from trainer import cli_output
from trainer.cli_args import (
    MAX_SEED,
    MAX_TRIALS,
    add_config,
    add_eval_data,
    add_overrides,
    add_precision,
    fraction,
    label_map,
    whole,
)
from trainer.config import DEFAULT_SEED, DEFAULT_TEXT_COLUMN, OnBadEncoding
from trainer.errors import EXIT_USAGE, ConfigError, DataError, TrainerError
from trainer.infra.console import quiet_libraries, setup_logging
from trainer.infra.crash import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    bug_message,
    close_progress_bars,
    disk_message,
    stop_on_sigterm,
)
from trainer.infra.secrets import mask_secrets
from trainer.workflows.selection import STRATEGIES, Diversity, SelectSettings, Uncertainty

__all__ = ["COMMANDS", "EXIT_BUG", "EXIT_INTERRUPTED", "OUTPUTS", "TABLE", "Command", "main"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trainer")
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


class _Parser(argparse.ArgumentParser):
    """argparse with its mistakes as one `error:` line (exit 2), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------- the commands: options, then what runs


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, "experiment or data config")


def _cmd_validate(args: argparse.Namespace) -> None:
    from trainer.config import load_config, load_data_config, read_yaml

    load = load_data_config if "sources" in read_yaml(args.config) else load_config
    cli_output.print_config(load(args.config, args.overrides))


def _build_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, "data config")
    parser.add_argument("--force", action="store_true", help="rebuild even if the fingerprint is unchanged")


def _cmd_build(args: argparse.Namespace) -> None:
    from trainer.config import load_data_config
    from trainer.data.build import build_dataset

    built = build_dataset(load_data_config(args.config, args.overrides), force=args.force, wait=False)
    cli_output.print_dataset(built)


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, "data config")
    parser.add_argument("--label-issues", action="store_true",
                        help="also find probable label errors (cleanlab on out-of-fold probabilities)")
    parser.add_argument("--issues-output", type=Path, help="folder for the ranked CSV and review tasks "
                        "(default: <output_dir>/<name>-label-issues)")
    parser.add_argument("--backend", default="sklearn", help="the model that gives the out-of-fold probabilities")
    parser.add_argument("--folds", type=whole(2), default=5, help="cross-validation folds, grouped by article")
    parser.add_argument("--inject-flips", type=fraction(0, 1, low_open=True), metavar="RATE",
                        help="check the finder instead: flip this share of labels and report how many it finds")


def _cmd_check(args: argparse.Namespace) -> int:
    from trainer.config import load_data_config
    from trainer.data.build import build_dataset
    from trainer.data.check import check_dataset

    if args.issues_output is not None and not args.label_issues:  # else the option would do nothing, silently
        raise TrainerError(f"--issues-output: expected --label-issues as well, found it alone ({args.issues_output})")
    config = load_data_config(args.config, args.overrides)
    built = build_dataset(config)
    problems = check_dataset(built, config.min_examples_per_label)
    cli_output.print_problems(built, problems)
    if args.label_issues or args.inject_flips is not None:
        _label_issues(args, config, built)
    return 1 if any(p.severity == "error" for p in problems) else 0


def _label_issues(args: argparse.Namespace, config: Any, built: Any) -> None:
    from trainer.registry import BACKENDS
    from trainer.workflows import label_issues

    kind = BACKENDS.get(args.backend, "--backend: ")
    if kind.config is None:
        raise TrainerError(f"--backend: expected a trainable backend, found {args.backend!r} (prediction only)")
    model = kind.config()
    if args.inject_flips is not None:
        cli_output.print_flip_check(label_issues.flip_check(built, args.inject_flips, model, folds=args.folds))
        return
    output = args.issues_output or config.output_dir / f"{config.name}-label-issues"
    rows = label_issues.label_issues(built, output, model, folds=args.folds)
    cli_output.print_label_issues(rows, built.card["label_issues"]["per_source"], output)


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, "experiment config")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing models/<run_name> folder")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    parser.add_argument("--cv", type=whole(2), metavar="K", help="k-fold cross-validation grouped by article instead")
    parser.add_argument("--register-as", metavar="NAME", help="register the logged model under this name")
    parser.add_argument("--alias", metavar="ALIAS", help="with --register-as: point this alias (e.g. champion) at it")


def _cmd_train(args: argparse.Namespace) -> None:
    from trainer.config import load_config
    from trainer.workflows.train import cross_validate, train

    config = load_config(args.config, args.overrides)
    if args.cv:
        cli_output.print_cross_validation(cross_validate(config, args.cv))
        return
    if args.alias and not args.register_as:
        raise ConfigError("--alias: expected --register-as NAME as well (an alias names a registered model version)")
    result = train(
        config, overwrite=args.overwrite, register_as=args.register_as, alias=args.alias, resume=args.resume
    )
    from trainer.infra import distributed

    if distributed.is_main():  # rank 0 reports for everyone
        cli_output.print_training(result)


def _distill_arguments(parser: argparse.ArgumentParser) -> None:
    add_config(parser, "the student's experiment config (its data: kind: teacher sources)")
    parser.add_argument("--teacher", required=True, type=Path, nargs="+",
                        help="the teacher's model folder; several: an ensemble (the mean of their probabilities)")
    parser.add_argument("--no-train", action="store_true", help="write the probabilities only (train later)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing models/<run_name> folder")
    parser.add_argument("--force", action="store_true", help="label a source again though its file is up to date")


def _cmd_distill(args: argparse.Namespace) -> None:
    from trainer.config import load_config
    from trainer.workflows.distill import distill

    config = load_config(args.config, args.overrides)
    result = distill(config, args.teacher, not args.no_train, args.overwrite, force=args.force)
    cli_output.print_distill(result)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or MLflow model URI")
    add_eval_data(parser)
    parser.add_argument("--output", type=Path, help="folder for the report (default: inside the model folder)")
    add_precision(parser)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from trainer.workflows.evaluate import evaluate

    result = evaluate(
        args.model, split=args.split, data=args.data, dataset=args.dataset, data_config=args.data_config,
        label_map=label_map(args.label_map), output=args.output, n_resamples=args.resamples,
        precision=args.precision,
    )
    cli_output.print_evaluation(result)


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", required=True, help="model folders or MLflow model URIs")
    parser.add_argument("--reference", help="the model the others are tested against (default: the first)")
    add_eval_data(parser)
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")


def _cmd_compare(args: argparse.Namespace) -> None:
    from trainer.workflows.compare import compare, to_markdown

    table = compare(
        args.models, reference=args.reference, split=args.split, data=args.data, dataset=args.dataset,
        data_config=args.data_config, label_map=label_map(args.label_map), n_resamples=args.resamples,
    )
    cli_output.print_comparison(table)
    if args.markdown:
        from trainer.infra.atomic import atomic_file

        text = to_markdown(table)
        atomic_file(args.markdown, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        cli_output.print_markdown(args.markdown)


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="a transformer model folder")
    parser.add_argument("--output", required=True, type=Path, help="the new model folder")
    from trainer.models.export import EXPORTS

    parser.add_argument(
        "--format",
        default=EXPORTS.names()[0],
        choices=EXPORTS.names(),
        help="; ".join(f"{name}: {EXPORTS.get(name).help}" for name in EXPORTS.names()),
    )


def _cmd_export(args: argparse.Namespace) -> None:
    from trainer.models.export import export_model

    check = export_model(args.model, args.output, args.format)
    cli_output.print_export(check, args.model, args.output, args.format)


def _select_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or MLflow model URI")
    parser.add_argument("--input", required=True, type=Path,
                        help="a folder of articles, a JSONL/CSV/Parquet file of articles, or a data config")
    parser.add_argument("--n", required=True, type=whole(1), help="how many sentences to select")
    parser.add_argument("--output", required=True, type=Path, help="a new folder for the tasks")
    parser.add_argument("--strategy", action="append", choices=STRATEGIES,
                        help="uncertainty (default), disagreement (model vs rules), rare (repeatable)")
    parser.add_argument("--uncertainty", choices=get_args(Uncertainty), default=SelectSettings.uncertainty,
                        help="with uncertainty: the smallest margin between the top two labels, or the highest entropy")
    parser.add_argument("--diversity", choices=get_args(Diversity), default=SelectSettings.diversity,
                        help="spread the picks over the encoder's embedding space")
    parser.add_argument("--max-per-article", type=whole(1), default=SelectSettings.max_per_article,
                        help="at most this many picks from one article")
    parser.add_argument("--rare-share", type=fraction(0, 1), default=SelectSettings.rare_share,
                        help="with rare: share of picks kept for it")
    parser.add_argument("--seed", type=whole(0, MAX_SEED), default=DEFAULT_SEED, help="the same seed, the same picks")
    parser.add_argument("--skip-labeled", type=Path, action="append", default=[], metavar="DATA_CONFIG",
                        help="skip sentences these data configs label already (repeatable)")
    parser.add_argument("--predictions", action="store_true",
                        help="add the model's guess to each task (Label Studio pre-selects it; off by default, "
                        "so that annotators are not anchored by it)")
    parser.add_argument("--no-predictions", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--text-column", default=DEFAULT_TEXT_COLUMN, help="JSONL/CSV/Parquet column of article text")
    parser.add_argument("--id-column", help="JSONL/CSV/Parquet column naming each article")


def _cmd_select(args: argparse.Namespace) -> None:
    from trainer.workflows.selection import select

    settings = SelectSettings(
        n=args.n, strategies=tuple(args.strategy or SelectSettings.strategies), uncertainty=args.uncertainty,
        diversity=args.diversity, max_per_article=args.max_per_article, rare_share=args.rare_share, seed=args.seed,
    )
    picks = select(args.model, args.input, args.n, args.output, settings, args.skip_labeled,
                   with_predictions=args.predictions and not args.no_predictions, text_column=args.text_column,
                   id_column=args.id_column)
    cli_output.print_selection(picks, args.output, args.n, args.max_per_article)


def _labelstudio_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.workflows.annotation import DEFAULT_URL, TOKEN_ENV

    actions = parser.add_subparsers(dest="action", required=True)
    push = actions.add_parser("push", help="create a project with a select folder's labeling config; import its tasks")
    push.add_argument("--tasks", required=True, type=Path, help="a folder written by `trainer select`")
    push.add_argument("--title", help="the project's title (default: the folder's name)")
    pull = actions.add_parser("pull", help="export a project's annotations as JSON, for a kind: labelstudio source")
    pull.add_argument("--project", required=True, type=whole(1), help="the project's id (push prints it)")
    pull.add_argument("--output", required=True, type=Path, help="the JSON file to write (replaced whole)")
    for action in (push, pull):
        action.add_argument("--url", default=DEFAULT_URL, help=f"the Label Studio server; its access token is read "
                            f"from ${TOKEN_ENV}")
    parser.set_defaults(output=None)


def _cmd_labelstudio(args: argparse.Namespace) -> None:
    from trainer.workflows.annotation import LabelStudio, pull, push

    client = LabelStudio.from_env(args.url)
    if args.action == "push":
        cli_output.print_pushed(push(args.tasks, args.title, client))
    else:
        cli_output.print_pulled(args.project, args.output, pull(args.project, args.output, client))


def _tag_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.workflows.tagging import FORMATS, PART_SENTENCES

    parser.add_argument("--model", required=True, help="model folder or MLflow model URI")
    parser.add_argument("--input", required=True, type=Path,
                        help="a folder of .txt/.md/.html articles, a JSONL/CSV/Parquet file of articles, "
                        "or a data config")
    parser.add_argument("--output", required=True, type=Path, help="folder for sentences/, articles/, skipped/")
    parser.add_argument("--text-column", default=DEFAULT_TEXT_COLUMN, help="JSONL/CSV/Parquet column of article text")
    parser.add_argument("--id-column", help="JSONL/CSV/Parquet column naming each article (default: row number)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output written by another model")
    parser.add_argument("--format", choices=FORMATS, default="parquet",
                        help="parquet parts (always written: a rerun resumes from them), plus the whole tables as "
                        "CSV files or one Excel workbook")
    parser.add_argument("--part-sentences", type=whole(1), default=PART_SENTENCES,
                        help="sentences per Parquet part (a kill loses at most one part's work)")
    parser.add_argument("--on-bad-encoding", choices=get_args(OnBadEncoding), default="replace",
                        help="files that are not UTF-8: skip them (counted) or decode with replacement characters")


def _cmd_tag(args: argparse.Namespace) -> None:
    from trainer.workflows.tagging import tag

    result = tag(args.model, args.input, args.output, args.text_column, args.id_column, overwrite=args.overwrite,
                 part_sentences=args.part_sentences, on_bad_encoding=args.on_bad_encoding, progress=not args.quiet,
                 format=args.format)
    cli_output.print_tagging(result)


def _tag_spark_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.workflows.spark_tag import add_arguments

    add_arguments(parser)


def _cmd_tag_spark(args: argparse.Namespace) -> None:
    from trainer.workflows import spark_tag

    print(spark_tag.summary(args.output, spark_tag.run(args)))


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="the base experiment config (default: the space's config: key)")
    add_overrides(parser, "override a base config value for every trial (repeatable)")
    parser.add_argument("--space", required=True, type=Path, help="search space YAML (configs/sweeps/)")
    parser.add_argument("--trials", required=True, type=whole(1, MAX_TRIALS),
                        help="the study's budget of finished trials, shared by every worker on the same storage")
    parser.add_argument("--storage", help="Optuna RDB storage URL (default: sqlite under "
                        "<output_dir>/sweeps/<study>/; postgresql://... for many machines)")
    parser.add_argument("--keep", choices=["best"], help="train the best trial's config into a model folder")


def _cmd_sweep(args: argparse.Namespace) -> None:
    from trainer.workflows.sweep import sweep

    result = sweep(args.config, args.space, args.trials, args.overrides, args.storage, args.keep,
                   progress=not args.quiet)
    cli_output.print_sweep(result)


def _summarize_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.estimators import QUANTIFIERS

    parser.add_argument("output", type=Path, help="the folder `trainer tag` wrote")
    parser.add_argument("--by", required=True, help="publisher, month, or any column of the articles table")
    parser.add_argument("--metadata", type=Path, help="a CSV/TSV/JSONL of article metadata to join on --key")
    parser.add_argument("--key", default="filename", help="the --metadata column that holds the article id")
    parser.add_argument("--report", type=Path, help="folder for the summary (default: OUTPUT/summary-<by>)")
    parser.add_argument("--audit", type=Path, help="hand labels of a `trainer audit` sample (Label Studio JSON "
                        "export, or CSV/JSONL with article_id, start/end or text, label): prediction-powered "
                        "inference")
    parser.add_argument("--model", help="without --audit: the model that tagged, to fit QuaPy's quantifier on "
                        "labeled real news")
    parser.add_argument("--labeled", type=Path, help="with --model: labels the model never trained on, to fit the "
                        "quantifier on (default: configs/data/real-news.yaml, or the dev set for a model trained on it)")
    parser.add_argument("--quantifier", choices=QUANTIFIERS, default=QUANTIFIERS[0],
                        help="with --model: QuaPy's method")
    parser.add_argument("--track", action="store_true", help="log the summary and its audit to MLflow as a run")


def _cmd_summarize(args: argparse.Namespace) -> None:
    from trainer.workflows.summary import summarize

    summary = summarize(args.output, args.by, args.report, args.metadata, args.key, audit=args.audit,
                        model=args.model, labeled=args.labeled, quantifier=args.quantifier, track=args.track)
    cli_output.print_summary(summary)


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    from trainer.workflows.audit import AUDIT_SEED

    parser.add_argument("tagged", type=Path, help="the folder `trainer tag` wrote")
    parser.add_argument("--output", required=True, type=Path, help="a new folder for the tasks, CSV and design")
    parser.add_argument("--n", type=whole(1), help="a simple random sample of this many sentences")
    parser.add_argument("--by", help="stratify by this column of the articles (publisher, month, ...)")
    parser.add_argument("--per-stratum", type=whole(1), help="with --by: sentences drawn from each stratum")
    parser.add_argument("--metadata", type=Path, help="a CSV/TSV/JSONL of article metadata to join on --key")
    parser.add_argument("--key", default="filename", help="the --metadata column that holds the article id")
    parser.add_argument("--seed", type=whole(0, MAX_SEED), default=AUDIT_SEED, help="the same seed, the same sample")


def _cmd_audit(args: argparse.Namespace) -> None:
    from trainer.workflows.audit import audit

    result = audit(args.tagged, args.output, n=args.n, by=args.by, per_stratum=args.per_stratum,
                   metadata=args.metadata, key=args.key, seed=args.seed)
    cli_output.print_audit(result)


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder or MLflow model URI")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append",
                        help="a sentence (repeatable); each is read alone (a model that reads context gets none)")
    source.add_argument("--file", type=Path, help="a raw article: cleaned, split and tagged (a model that reads "
                        "context reads each sentence with its neighbours)")
    parser.add_argument("--format", choices=cli_output.PREDICTION_FORMATS, default=cli_output.PREDICTION_FORMATS[0],
                        help="a table to read, or one JSON line per sentence")
    add_precision(parser)


def _cmd_predict(args: argparse.Namespace) -> None:
    from trainer.data.language import detect, foreign_summary, warning
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.data.sources import read_text
    from trainer.workflows.predict import load_classifier

    classifier = load_classifier(args.model, args.precision)
    if args.file is not None:
        if not args.file.is_file():
            raise DataError(f"{args.file}: expected an article file, found nothing there (check the path)")
        article = read_text(args.file)
        predictions = classifier.tag_article(article)
        languages = [detect(article)] * len(predictions)  # an article's language, read whole, for each sentence
        counted, total, what = [languages[0]] if languages else [], 1, "articles"
    else:
        predictions = classifier.predict(args.text)
        languages = [detect(p.text) for p in predictions]
        counted, total, what = languages, len(languages), "inputs"
    foreign = foreign_summary(counted)
    if foreign:  # never English labels on German in silence
        cli_output.print_warning(warning(foreign, total, what))
    labeler = RuleLabeler.from_yaml(rules_path(None))  # the rule cues: evidence a reader can check
    cli_output.print_predictions(predictions, args.format, [labeler.label(p.text).fired for p in predictions],
                                 languages)


# ---------------------------------------------------------------- the table, and the run of one command

Handler = Callable[[argparse.Namespace], int | None]
OutputKind = Literal["folder", "file"]


@dataclass(frozen=True)
class Command:
    """One `trainer` command: its name and help line, the function adding its options, the function it
    runs (its exit code, None for 0), and its options that name a folder or a file it writes, which
    are checked before it starts."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Handler
    outputs: tuple[tuple[str, OutputKind], ...] = ()


# In the order `trainer --help` lists them.
TABLE: tuple[Command, ...] = (
    Command("validate", "check a config and print it fully resolved", _validate_arguments, _cmd_validate),
    Command("build-data", "build the labeled sentence dataset of a data config", _build_arguments, _cmd_build),
    Command("check-data", "build (or reuse) a dataset and report problems before training", _check_arguments,
            _cmd_check, outputs=(("--issues-output", "folder"),)),
    Command("train", "train a model and log the run to MLflow", _train_arguments, _cmd_train),
    Command("distill", "label unlabeled news with a teacher model, then train a student on its probabilities",
            _distill_arguments, _cmd_distill),
    Command("evaluate", "evaluate a saved model: metrics, intervals, calibration, report", _evaluate_arguments,
            _cmd_evaluate, outputs=(("--output", "folder"),)),
    Command("compare", "evaluate several models on the same data, with paired bootstrap tests", _compare_arguments,
            _cmd_compare, outputs=(("--markdown", "file"),)),
    Command("export", "make a faster CPU model folder (ONNX Runtime or int8) from a trained one", _export_arguments,
            _cmd_export, outputs=(("--output", "folder"),)),
    Command("select", "choose the sentences worth labeling next, as Label Studio tasks", _select_arguments,
            _cmd_select, outputs=(("--output", "folder"),)),
    Command("labelstudio", "push select's tasks to a Label Studio project, or pull its annotations (its API)",
            _labelstudio_arguments, _cmd_labelstudio, outputs=(("--output", "file"),)),
    Command("tag", "tag every sentence of a collection into Parquet tables (resumable)", _tag_arguments, _cmd_tag,
            outputs=(("--output", "folder"),)),
    Command("tag-spark", "the same tagging as a Spark job, with the logged MLflow model (pip install -e '.[spark]')",
            _tag_spark_arguments, _cmd_tag_spark),
    Command("sweep", "search hyperparameters with Optuna; every trial a nested MLflow run", _sweep_arguments,
            _cmd_sweep),
    Command("audit", "draw a random sample of a tagged corpus to label by hand (for valid shares)",
            _audit_arguments, _cmd_audit, outputs=(("--output", "folder"),)),
    Command("summarize", "label shares per publisher, month or any column of a tagged corpus, with named "
            "estimators and 95%% intervals", _summarize_arguments, _cmd_summarize, outputs=(("--report", "folder"),)),
    Command("predict", "label sentences or a whole article", _predict_arguments, _cmd_predict),
)
COMMANDS: dict[str, Handler] = {command.name: command.run for command in TABLE}
OUTPUTS: dict[str, tuple[tuple[str, OutputKind], ...]] = {c.name: c.outputs for c in TABLE if c.outputs}


def build_parser() -> argparse.ArgumentParser:
    """The `trainer` parser, built from `TABLE` (the docs site's command reference reads it too)."""
    parser = _Parser(prog="trainer", description="Sentence sourcing classifier toolkit.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in TABLE:
        command.arguments(sub.add_parser(command.name, help=command.help))
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """A file where an output folder goes, a folder where a file goes, a read-only parent: one line
    before the command starts, not a traceback after its work."""
    from trainer.config import output_problem

    for option, kind in OUTPUTS.get(args.command, ()):
        path = vars(args)[option.removeprefix("--").replace("-", "_")]  # a KeyError: no such option of the command
        if path is None:
            continue
        if kind == "file" and path.is_dir():
            raise ConfigError(f"{option}: expected a file to write, found the folder '{path}' (name a file)")
        problem = output_problem(path.parent if kind == "file" else path)
        if problem is not None:
            raise ConfigError(f"{option}: {problem}")


def _readable(value: str) -> str:
    """A command-line string as text: bytes that were not UTF-8 (kept by Python as lone surrogates,
    which no tokenizer or file write takes) become U+FFFD, as in a file read with replacement."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    argv = [_readable(a) for a in (sys.argv[1:] if argv is None else argv)]
    for stream in (sys.stdout, sys.stderr):  # a file name with undecodable bytes is shown, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _run(argv)
    except KeyboardInterrupt:
        close_progress_bars()
        print("interrupted: stopped before the end; outputs under their final names are complete or absent",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `trainer predict ... | head`: the reader left; nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except Exception as exc:  # noqa: BLE001 - the top-level guard: a bug gets one line and a log file
        close_progress_bars()
        print(bug_message(exc, argv, _version()), file=sys.stderr)
        return EXIT_BUG


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries(args.quiet)
    stop_on_sigterm()
    from trainer.infra.distributed import is_main

    setup_logging(args.quiet, is_main())
    try:
        _check_outputs(args)
        return COMMANDS[args.command](args) or 0
    except TrainerError as exc:
        close_progress_bars()
        print(f"error: {mask_secrets(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        message = disk_message(exc)
        if message is None:
            raise
        close_progress_bars()
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())


