"""Command line: a thin layer over the package's functions.

    trainer validate   --config configs/default.yaml [--set key=value ...]
    trainer build-data --config configs/data/bundled.yaml
    trainer check-data --config configs/data/polnear.yaml
    trainer train      --config configs/default.yaml [--set training.epochs=2] [--overwrite]
                       [--register-as NAME --alias champion] [--cv K]
    trainer evaluate   --model models/<run> [--split test | --data file.jsonl | --data-config cfg.yaml]
    trainer compare    --models models/a models/b [--data file.jsonl] [--markdown table.md]
    trainer predict    --model models/<run> (--text "..." | --file article.txt) [--format table|jsonl]

User mistakes print one line and exit with code 2; no traceback. Anything unforeseen is a bug: one
line names it and the log file that holds its traceback (exit 1). Ctrl-C prints one line (exit 130).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, get_args

from trainer.config import DEFAULT_SEED
from trainer.errors import EXIT_USAGE, ConfigError, TrainerError
from trainer.labels import LABELS
from trainer.workflows.selection import STRATEGIES, Diversity, Uncertainty

log = logging.getLogger("trainer")


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


def _whole(minimum: int) -> Any:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, found {raw!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, found {value}")
        return value

    return parse


def _fraction(low: float, high: float, low_open: bool = False) -> Any:
    """An argparse type: a number in [low, high] (or (low, high] with `low_open`)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, found {raw!r}") from None
        if not (low < value if low_open else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"expected a number {'above' if low_open else 'from'} {low:g} "
                                             f"{'and at most' if low_open else 'to'} {high:g}, found {raw}")
        return value

    return parse


def _add_config(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--config", required=True, type=Path, help=f"{what} YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=2 (repeatable)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trainer", description="Sentence sourcing classifier toolkit.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a config and print it fully resolved")
    _add_config(validate, "experiment or data config")

    build = sub.add_parser("build-data", help="build the labeled sentence dataset of a data config")
    _add_config(build, "data config")
    build.add_argument("--force", action="store_true", help="rebuild even if the fingerprint is unchanged")

    check = sub.add_parser("check-data", help="build (or reuse) a dataset and report problems before training")
    _add_config(check, "data config")
    check.add_argument("--label-issues", action="store_true",
                       help="also find probable label errors (cleanlab on out-of-fold probabilities)")
    check.add_argument("--issues-output", type=Path, help="folder for the ranked CSV and review tasks "
                       "(default: <output_dir>/<name>-label-issues)")
    check.add_argument("--backend", default="sklearn", help="the model that gives the out-of-fold probabilities")
    check.add_argument("--folds", type=_whole(2), default=5, help="cross-validation folds, grouped by article")
    check.add_argument("--inject-flips", type=_fraction(0, 1, low_open=True), metavar="RATE",
                       help="check the finder instead: flip this share of labels and report how many it finds")

    train = sub.add_parser("train", help="train a model and log the run to MLflow")
    _add_config(train, "experiment config")
    train.add_argument("--overwrite", action="store_true", help="replace an existing models/<run_name> folder")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    train.add_argument("--cv", type=_whole(2), metavar="K", help="k-fold cross-validation grouped by article instead")
    train.add_argument("--register-as", metavar="NAME", help="register the logged model under this name")
    train.add_argument("--alias", metavar="ALIAS", help="with --register-as: point this alias (e.g. champion) at it")

    evaluate = sub.add_parser("evaluate", help="evaluate a saved model: metrics, intervals, calibration, report")
    evaluate.add_argument("--model", required=True, help="model folder or MLflow model URI")
    _add_eval_data(evaluate)
    evaluate.add_argument("--output", type=Path, help="folder for the report (default: inside the model folder)")
    _add_precision(evaluate)

    compare = sub.add_parser("compare", help="evaluate several models on the same data, with paired bootstrap tests")
    compare.add_argument("--models", nargs="+", required=True, help="model folders or MLflow model URIs")
    compare.add_argument("--reference", help="the model the others are tested against (default: the first)")
    _add_eval_data(compare)
    compare.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")

    export = sub.add_parser("export", help="make a faster CPU model folder (ONNX Runtime or int8) from a trained one")
    export.add_argument("--model", required=True, type=Path, help="a transformer model folder")
    export.add_argument("--output", required=True, type=Path, help="the new model folder")
    from trainer.models.export import EXPORTS

    export.add_argument(
        "--format",
        default=EXPORTS.names()[0],
        choices=EXPORTS.names(),
        help="; ".join(f"{name}: {EXPORTS.get(name).help}" for name in EXPORTS.names()),
    )

    select = sub.add_parser("select", help="choose the sentences worth labeling next, as Label Studio tasks")
    select.add_argument("--model", required=True, help="model folder or MLflow model URI")
    select.add_argument("--input", required=True, type=Path,
                        help="a folder of articles, a JSONL/CSV/Parquet file of articles, or a data config")
    select.add_argument("--n", required=True, type=_whole(1), help="how many sentences to select")
    select.add_argument("--output", required=True, type=Path, help="a new folder for the tasks")
    select.add_argument("--strategy", action="append", choices=STRATEGIES,
                        help="uncertainty (default), disagreement (model vs rules), rare (repeatable)")
    select.add_argument("--uncertainty", choices=get_args(Uncertainty), default="margin")
    select.add_argument("--diversity", choices=get_args(Diversity), default="kmeans",
                        help="spread the picks over the encoder's embedding space")
    select.add_argument("--max-per-article", type=_whole(1), default=3)
    select.add_argument("--rare-share", type=_fraction(0, 1), default=0.3, help="with rare: share of picks kept for it")
    select.add_argument("--seed", type=int, default=DEFAULT_SEED)
    select.add_argument("--skip-labeled", type=Path, action="append", default=[], metavar="DATA_CONFIG",
                        help="skip sentences these data configs label already (repeatable)")
    select.add_argument("--no-predictions", action="store_true",
                        help="tasks without the model's guess, for labeling not anchored by it")
    select.add_argument("--text-column", default="text")
    select.add_argument("--id-column", help="JSONL/CSV/Parquet column naming each article")

    tag = sub.add_parser("tag", help="tag every sentence of a collection into Parquet tables (resumable)")
    tag.add_argument("--model", required=True, help="model folder or MLflow model URI")
    tag.add_argument("--input", required=True, type=Path,
                     help="a folder of .txt/.md/.html articles, a JSONL/CSV/Parquet file of articles, or a data config")
    tag.add_argument("--output", required=True, type=Path, help="folder for sentences/, articles/, skipped/")
    tag.add_argument("--text-column", default="text")
    tag.add_argument("--id-column", help="JSONL/CSV/Parquet column naming each article (default: row number)")
    tag.add_argument("--overwrite", action="store_true", help="replace an output written by another model")
    tag.add_argument("--part-sentences", type=_whole(1), default=20_000,
                     help="sentences per Parquet part (a kill loses at most one part's work)")
    tag.add_argument("--on-bad-encoding", choices=["error", "replace"], default="replace",
                     help="files that are not UTF-8: skip them (counted) or decode with replacement characters")

    spark = sub.add_parser("tag-spark", help="the same tagging as a Spark job, with the logged MLflow model "
                           "(pip install -e '.[spark]')")
    from trainer.workflows.spark_tag import add_arguments

    add_arguments(spark)

    sweep = sub.add_parser("sweep", help="search hyperparameters with Optuna; every trial a nested MLflow run")
    sweep.add_argument("--config", type=Path, help="the base experiment config (default: the space's config: key)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a base config value for every trial (repeatable)")
    sweep.add_argument("--space", required=True, type=Path, help="search space YAML (configs/sweeps/)")
    sweep.add_argument("--trials", required=True, type=_whole(1), help="the study's budget of finished trials, shared "
                       "by every worker on the same storage")
    sweep.add_argument("--storage", help="Optuna RDB storage URL (default: sqlite under <output_dir>/sweeps/<study>/;"
                       " postgresql://... for many machines)")
    sweep.add_argument("--keep", choices=["best"], help="train the best trial's config into a model folder")

    summarize = sub.add_parser("summarize", help="label shares per publisher, month or any column of a tagged corpus")
    summarize.add_argument("output", type=Path, help="the folder `trainer tag` wrote")
    summarize.add_argument("--by", required=True, help="publisher, month, or any column of the articles table")
    summarize.add_argument("--metadata", type=Path, help="a CSV/TSV/JSONL of article metadata to join on --key")
    summarize.add_argument("--key", default="filename", help="the --metadata column that holds the article id")
    summarize.add_argument("--report", type=Path, help="folder for the summary (default: OUTPUT/summary-<by>)")

    predict = sub.add_parser("predict", help="label sentences or a whole article")
    predict.add_argument("--model", required=True, help="model folder or MLflow model URI")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a sentence (repeatable)")
    source.add_argument("--file", type=Path, help="a raw article: cleaned, split and tagged")
    predict.add_argument("--format", choices=["table", "jsonl"], default="table")
    _add_precision(predict)
    return parser


def _add_precision(parser: argparse.ArgumentParser) -> None:
    from trainer.workflows.predict import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="transformer models: auto = bf16 on a GPU or a CPU with AMX/AVX512-BF16, fp16 on a GPU without "
        "bf16, else fp32; fp32 forces full precision",
    )


def _add_eval_data(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", type=Path, help="labeled JSONL/CSV with text and label fields")
    group.add_argument("--data-config", type=Path, help="a data config: evaluate on all its sentences, no split")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--dataset", type=Path, help="a built dataset folder whose --split to use")
    parser.add_argument(
        "--label-map", action="append", default=[], metavar="THEIRS=OURS", help="rename labels in --data (repeatable)"
    )
    from trainer.metrics import N_RESAMPLES

    # checked by metrics.check_resamples (at least MIN_RESAMPLES), for the API and the command line alike
    parser.add_argument("--resamples", type=int, default=N_RESAMPLES, help="bootstrap resamples for the intervals")


def _label_map(pairs: list[str]) -> dict[str, str]:
    from trainer.errors import ConfigError

    mapping = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep:
            raise ConfigError(f"--label-map {pair!r}: expected THEIRS=OURS, e.g. --label-map FACT=verified")
        if ours not in LABELS:
            raise ConfigError(f"--label-map {pair!r}: expected OURS to be one of {list(LABELS)}, found {ours!r}")
        mapping[theirs] = ours
    return mapping


def _is_data_config(path: Path) -> bool:
    from trainer.config import read_yaml

    return "sources" in read_yaml(path)


def _cmd_validate(args: argparse.Namespace) -> None:
    from trainer.config import dump_yaml, load_config, load_data_config

    config = (
        load_data_config(args.config, args.overrides)
        if _is_data_config(args.config)
        else load_config(args.config, args.overrides)
    )
    print(dump_yaml(config), end="")


def _cmd_build(args: argparse.Namespace) -> None:
    from trainer.config import load_data_config
    from trainer.data.build import CARD_MD, build_dataset

    built = build_dataset(load_data_config(args.config, args.overrides), force=args.force, wait=False)
    print((built.path / CARD_MD).read_text(encoding="utf-8"))
    print(f"dataset: {built.path}")


def _cmd_check(args: argparse.Namespace) -> int:
    from trainer.config import load_data_config
    from trainer.data.build import build_dataset
    from trainer.data.check import check_dataset

    config = load_data_config(args.config, args.overrides)
    built = build_dataset(config)
    problems = check_dataset(built, config.min_examples_per_label)
    for problem in problems:
        print(f"{problem.severity}: {problem.message}")
    errors = sum(p.severity == "error" for p in problems)
    print(f"{built.path}: {errors} errors, {len(problems) - errors} warnings")
    if args.label_issues or args.inject_flips is not None:
        _label_issues(args, config, built)
    return 1 if errors else 0


def _label_issues(args: argparse.Namespace, config: Any, built: Any) -> None:
    from trainer.workflows import label_issues
    from trainer.registry import BACKENDS

    kind = BACKENDS.get(args.backend, "--backend: ")
    if kind.config is None:
        raise TrainerError(f"--backend: expected a trainable backend, found {args.backend!r} (prediction only)")
    model = kind.config()
    if args.inject_flips is not None:
        check = label_issues.flip_check(built, args.inject_flips, model, folds=args.folds)
        print(f"injected {check['flipped']} flips into {check['sentences']} labels; the finder flagged {check['found']}")
        for k, figures in check["at_k"].items():
            print(f"  at k={k}: precision {figures['precision']:.3f}, recall {figures['recall']:.3f}")
        return
    output = args.issues_output or config.output_dir / f"{config.name}-label-issues"
    rows = label_issues.label_issues(built, output, model, folds=args.folds)
    per_source = built.card["label_issues"]["per_source"]
    print(f"{len(rows)} suspected label issues ({', '.join(f'{k}: {v}' for k, v in sorted(per_source.items()))}): "
          f"{output / label_issues.ISSUES_CSV}, {output / label_issues.ISSUES_TASKS} (Label Studio review tasks)")


def _cmd_train(args: argparse.Namespace) -> None:
    from trainer.config import load_config
    from trainer.metrics import format_table
    from trainer.workflows.train import cross_validate, train

    config = load_config(args.config, args.overrides)
    if args.cv:
        cv = cross_validate(config, args.cv)
        for name, stats in cv.summary.items():
            print(f"{name:<16} {stats['mean']:.3f} ± {stats['std']:.3f}")
        print(f"MLflow parent run: {cv.run_id}" if cv.run_id else f"MLflow tracking failed ({cv.tracking_error})")
        return
    if args.alias and not args.register_as:
        from trainer.errors import ConfigError

        raise ConfigError("--alias: expected --register-as NAME as well (an alias names a registered model version)")
    result = train(
        config, overwrite=args.overwrite, register_as=args.register_as, alias=args.alias, resume=args.resume
    )
    from trainer.infra import distributed

    if not distributed.is_main():
        return  # rank 0 reports for everyone
    print(f"\ntest split ({result.metrics['test']['n']} sentences):\n{format_table(result.metrics['test'])}\n")
    print(f"validation macro-F1: {result.metrics['validation']['macro_f1']:.3f}")
    print(f"model folder: {result.model_dir}")
    if result.run_id:
        print(f"MLflow run:   {result.run_id}" + (f" ({result.model_uri})" if result.model_uri else " (incomplete)"))
    if result.tracking_error:
        print(f"MLflow tracking failed ({result.tracking_error}); the model is saved all the same", file=sys.stderr)
    print(f"took {result.seconds:.0f}s")


def _print_report(report: dict) -> None:
    from trainer.outputs.report import per_label_rows

    print(f"{'label':<12}{'precision':>10}{'recall':>10}   {'F1 [95% CI]':<24}{'n':>6}")
    for label, precision, recall, f1, n in per_label_rows(report):
        print(f"{label:<12}{precision:>10}{recall:>10}   {f1:<24}{n:>6}")
    print(f"accuracy {report['metrics']['accuracy']:.3f}   ECE {report['calibration']['ece']:.3f}   "
          f"(intervals: bootstrap over {report['ci_unit']})")
    shares = report.get("shares", {})
    for kind in ("gold", "raw", "adjusted"):
        if shares.get(kind):
            figures = "  ".join(
                f"{label} {_share(shares[kind][label])}" for label in shares["raw"])
            print(f"label shares, {kind}{' (true)' if kind == 'gold' else ''}: {figures}")
    for column, slices in report["slices"].items():
        for value, m in slices.items():
            print(f"  {column}={value} ({m['n']}): macro-F1 {m['macro_f1']:.3f}  " + "  ".join(
                f"{label} {v['f1']:.3f} ({v['support']})" for label, v in m["per_label"].items()))


def _share(value: Any) -> str:
    if isinstance(value, dict):
        low, high = value["ci"]
        return f"{value['share']:.1%} [{low:.1%}, {high:.1%}]"
    return f"{value:.1%}"


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from trainer.workflows.evaluate import evaluate

    result = evaluate(
        args.model, split=args.split, data=args.data, dataset=args.dataset, data_config=args.data_config,
        label_map=_label_map(args.label_map), output=args.output, n_resamples=args.resamples,
        precision=args.precision,
    )
    _print_report(result.report)
    print(f"\nreport: {result.report_dir / 'report.html'}")
    if result.run_id:
        print(f"MLflow run: {result.run_id}")
    if result.tracking_error:
        print(f"MLflow tracking failed ({result.tracking_error})", file=sys.stderr)


def _cmd_compare(args: argparse.Namespace) -> None:
    from trainer.workflows.compare import compare, to_markdown, to_text

    table = compare(
        args.models, reference=args.reference, split=args.split, data=args.data, dataset=args.dataset,
        data_config=args.data_config, label_map=_label_map(args.label_map), n_resamples=args.resamples,
    )
    print(to_text(table))
    if args.markdown:
        from trainer.infra.atomic import atomic_file

        text = to_markdown(table)
        atomic_file(args.markdown, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"\nMarkdown: {args.markdown}")


def _cmd_select(args: argparse.Namespace) -> None:
    from trainer.workflows.selection import SelectSettings, select

    settings = SelectSettings(
        n=args.n, strategies=tuple(args.strategy or ("uncertainty",)), uncertainty=args.uncertainty,
        diversity=args.diversity, max_per_article=args.max_per_article, rare_share=args.rare_share, seed=args.seed,
    )
    picks = select(args.model, args.input, args.n, args.output, settings, args.skip_labeled,
                   with_predictions=not args.no_predictions, text_column=args.text_column, id_column=args.id_column)
    articles = len({c.article for c in picks})
    print(f"{len(picks)} sentences from {articles} articles: {args.output}/tasks.json (Label Studio import), "
          f"labeling-config.xml, tasks.csv, tasks.jsonl")


def _cmd_tag(args: argparse.Namespace) -> None:
    from trainer.workflows.tagging import tag

    result = tag(args.model, args.input, args.output, args.text_column, args.id_column, overwrite=args.overwrite,
                 part_sentences=args.part_sentences, on_bad_encoding=args.on_bad_encoding, progress=not args.quiet)
    print(f"{result.articles} articles, {result.sentences} sentences tagged; {result.reused} already there; "
          f"{result.skipped} inputs skipped (see skipped/): {result.output}")


def _cmd_tag_spark(args: argparse.Namespace) -> None:
    from trainer.workflows import spark_tag

    print(spark_tag.summary(args.output, spark_tag.run(args)))


def _cmd_sweep(args: argparse.Namespace) -> None:
    from trainer.workflows.sweep import sweep

    result = sweep(args.config, args.space, args.trials, args.overrides, args.storage, args.keep,
                   progress=not args.quiet)
    shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in result.best_params.items()}
    best = (f"best validation macro-F1 {result.best_value:.4f} with {json.dumps(shown)}"
            if result.best_value is not None else "no complete trial yet")
    print(f"sweep {result.study}: {result.finished} finished trials ({result.ran_here} here); {best}")
    if result.best_config:
        print(f"best config: {result.best_config} (trainer train --config {result.best_config})")
    print(f"study: {result.storage}; MLflow parent run: {result.parent_run_id}")


def _cmd_summarize(args: argparse.Namespace) -> None:
    from trainer.workflows.summary import summarize

    rows = summarize(args.output, args.by, args.report, args.metadata, args.key)
    adjusted = any(f"{LABELS[0]}_adjusted" in r for r in rows)
    for r in rows:
        shares = "  ".join(f"{label} {r[f'{label}_share']:.1%}"
                           + (f" (adjusted {r[f'{label}_adjusted']:.1%})" if adjusted else "") for label in LABELS)
        print(f"{r['group']:<24} {r['articles']:>6} articles {r['sentences']:>8} sentences  {shares}")
    report = args.report or args.output / f"summary-{args.by}"
    print(f"\nraw{' and adjusted' if adjusted else ''} shares; intervals, plot and page: {report}/summary.html")


def _cmd_export(args: argparse.Namespace) -> None:
    from trainer.models.export import PROBES, export_model

    check = export_model(args.model, args.output, args.format)
    print(
        f"{args.format} model folder: {args.output} (load it like any other; it runs on the CPU)\n"
        f"against {args.model} on {len(PROBES)} probe sentences: labels equal {check.label_agreement:.0%}, "
        f"probabilities at most {check.max_probability_diff:.4f} apart; "
        f"run `trainer evaluate --model {args.output} ...` before trusting it"
    )


def _cmd_predict(args: argparse.Namespace) -> None:
    from trainer.data.sources import read_text
    from trainer.errors import DataError
    from trainer.workflows.predict import load_classifier

    classifier = load_classifier(args.model, args.precision)
    if args.file is not None:
        if not args.file.is_file():
            raise DataError(f"{args.file}: expected an article file, found nothing there (check the path)")
        predictions = classifier.tag_article(read_text(args.file))
    else:
        predictions = classifier.predict(args.text)
    if args.format == "jsonl":
        for p in predictions:
            print(json.dumps({"text": p.text, "label": p.label, "probabilities": p.probabilities}, ensure_ascii=False))
        return
    width = 80
    print(f"{'label':<11} {'p':>5}  sentence")
    for p in predictions:
        text = p.text if len(p.text) <= width else p.text[: width - 1] + "…"
        print(f"{p.label:<11} {p.score:>5.2f}  {text}")


COMMANDS = {
    "validate": _cmd_validate,
    "build-data": _cmd_build,
    "check-data": _cmd_check,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "compare": _cmd_compare,
    "export": _cmd_export,
    "select": _cmd_select,
    "tag": _cmd_tag,
    "tag-spark": _cmd_tag_spark,
    "summarize": _cmd_summarize,
    "sweep": _cmd_sweep,
    "predict": _cmd_predict,
}


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds the `with` blocks: temporary folders are removed, the MLflow run is closed.
    raise SystemExit(128 + signum)


def _quiet_libraries(quiet: bool) -> None:
    """Library output that asks nothing of the user; the project prints its own lines and progress.

    Each is a setting of the library's own (the environment wins where a user sets it). With -q, the
    libraries' own warnings go too (transformers' load report); the project's warnings stay.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights", "Writing model shards"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # "Downloading artifacts" per logged model
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # datasets' "Saving the dataset (1/1 shards)"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # "Creating initial MLflow database tables..." and the like
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if quiet else "warning")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # MLflow warns of its own pydantic models' `Any` hints (wrapped in colour codes) whenever it infers a
    # signature; nothing a user can change. Matched with or without the codes.
    warnings.filterwarnings("ignore", message=r"(\x1b\[[0-9;]*m)?Any type hint is inferred as AnyType")
    from trainer.infra import progress

    progress.configure(enabled=not quiet)


class _PlainFormatter(logging.Formatter):
    """Log lines without terminal colour codes (MLflow colours some of its warnings)."""

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def format(self, record: logging.LogRecord) -> str:
        return self._ANSI.sub("", super().format(record))


def _setup_logging(quiet: bool, main_rank: bool) -> None:
    """One handler on stderr for the project's lines and Python warnings alike."""
    handler = logging.StreamHandler()
    handler.setFormatter(_PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING if quiet or not main_rank else logging.INFO, handlers=[handler])
    logging.captureWarnings(True)  # warnings.warn(...) from libraries become plain log lines


EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # the shell's code for a command stopped by SIGINT


def _readable(value: str) -> str:
    """A command-line string as text: bytes that were not UTF-8 (kept by Python as lone surrogates,
    which no tokenizer or file write takes) become U+FFFD, as in a file read with replacement."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _crash_log(exc: BaseException, argv: list[str]) -> Path:
    """Write the traceback of an unforeseen error to a log file; return its path."""
    import tempfile
    import time
    import traceback

    folder = Path(tempfile.gettempdir()) / "trainer-crashes"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with path.open("w", encoding="utf-8", errors="backslashreplace") as out:
        out.write(f"trainer {_version()}, python {sys.version.split()[0]}\ncommand: trainer {' '.join(argv)}\n\n")
        traceback.print_exception(exc, file=out)
    return path


def _close_progress_bars() -> None:
    """End a progress bar the error interrupted, so that the error starts a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _bug(exc: BaseException, argv: list[str]) -> str:
    """The one line shown for an unforeseen error."""
    lines = str(exc).strip().splitlines()
    summary = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
    try:
        where = f"the traceback is in {_crash_log(exc, argv)}"
    except OSError as log_error:
        where = f"its traceback could not be saved ({log_error.strerror})"
    return f"error: unexpected {summary}; this is a bug in trainer, please report it ({where})"


def main(argv: list[str] | None = None) -> int:
    argv = [_readable(a) for a in (sys.argv[1:] if argv is None else argv)]
    for stream in (sys.stdout, sys.stderr):  # a file name with undecodable bytes is shown, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _run(argv)
    except KeyboardInterrupt:
        _close_progress_bars()
        print("interrupted: stopped before the end; outputs under their final names are complete or absent",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `trainer predict ... | head`: the reader left; nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    except Exception as exc:  # noqa: BLE001 - the top-level guard: a bug gets one line and a log file
        _close_progress_bars()
        print(_bug(exc, argv), file=sys.stderr)
        return EXIT_BUG


# Output options of each command: (option, what it names), checked before the command does any work.
_OUTPUTS = {
    "evaluate": [("output", "folder")],
    "compare": [("markdown", "file")],
    "check-data": [("issues_output", "folder")],
    "export": [("output", "folder")],
    "select": [("output", "folder")],
    "tag": [("output", "folder")],
    "summarize": [("report", "folder")],
}


def _check_outputs(args: argparse.Namespace) -> None:
    """A file where an output folder goes, a folder where a file goes, a read-only parent: one line
    before the command starts, not a traceback after its work."""
    from trainer.config import output_problem

    for dest, kind in _OUTPUTS.get(args.command, ()):
        path = getattr(args, dest, None)
        if path is None:
            continue
        option = "--" + dest.replace("_", "-")
        if kind == "file" and path.is_dir():
            raise ConfigError(f"{option}: expected a file to write, found the folder '{path}' (name a file)")
        problem = output_problem(path.parent if kind == "file" else path)
        if problem is not None:
            raise ConfigError(f"{option}: {problem}")


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    _quiet_libraries(args.quiet)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    from trainer.infra.distributed import is_main

    _setup_logging(args.quiet, is_main())
    try:
        _check_outputs(args)
        return COMMANDS[args.command](args) or 0
    except TrainerError as exc:
        _close_progress_bars()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
