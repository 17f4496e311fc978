"""Command line: a thin layer over the package's functions.

    trainer validate   --config configs/default.yaml [--set key=value ...]
    trainer build-data --config configs/data/bundled.yaml
    trainer check-data --config configs/data/polnear.yaml
    trainer train      --config configs/default.yaml [--set training.epochs=2] [--overwrite]
    trainer evaluate   --model models/<run> [--split test | --data file.jsonl]
    trainer predict    --model models/<run> (--text "..." | --file article.txt) [--format table|jsonl]

User mistakes print one line and exit with code 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from trainer.errors import EXIT_USAGE, TrainerError

log = logging.getLogger("trainer")


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
    parser = argparse.ArgumentParser(prog="trainer", description="Sentence sourcing classifier toolkit.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a config and print it fully resolved")
    _add_config(validate, "experiment or data config")

    build = sub.add_parser("build-data", help="build the labeled sentence dataset of a data config")
    _add_config(build, "data config")
    build.add_argument("--force", action="store_true", help="rebuild even if the fingerprint is unchanged")

    check = sub.add_parser("check-data", help="build (or reuse) a dataset and report problems before training")
    _add_config(check, "data config")

    train = sub.add_parser("train", help="train a model and log the run to MLflow")
    _add_config(train, "experiment config")
    train.add_argument("--overwrite", action="store_true", help="replace an existing models/<run_name> folder")

    evaluate = sub.add_parser("evaluate", help="evaluate a saved model")
    evaluate.add_argument("--model", required=True, help="model folder or MLflow model URI")
    group = evaluate.add_mutually_exclusive_group()
    group.add_argument("--split", default="test", choices=["train", "validation", "test"])
    group.add_argument("--data", type=Path, help="labeled JSONL/CSV with text and label fields")
    evaluate.add_argument("--dataset", type=Path, help="a built dataset folder whose --split to use (default: the model's own)")
    evaluate.add_argument("--output", type=Path, help="folder for the report (default: inside the model folder)")

    predict = sub.add_parser("predict", help="label sentences or a whole article")
    predict.add_argument("--model", required=True, help="model folder or MLflow model URI")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a sentence (repeatable)")
    source.add_argument("--file", type=Path, help="a raw article: cleaned, split and tagged")
    predict.add_argument("--format", choices=["table", "jsonl"], default="table")
    return parser


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

    built = build_dataset(load_data_config(args.config, args.overrides), force=args.force)
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
    return 1 if errors else 0


def _cmd_train(args: argparse.Namespace) -> None:
    from trainer.config import load_config
    from trainer.metrics import format_table
    from trainer.train import train

    result = train(load_config(args.config, args.overrides), overwrite=args.overwrite)
    print(f"\ntest split ({result.metrics['test']['n']} sentences):\n{format_table(result.metrics['test'])}\n")
    print(f"validation macro-F1: {result.metrics['validation']['macro_f1']:.3f}")
    print(f"model folder: {result.model_dir}")
    if result.run_id:
        print(f"MLflow run:   {result.run_id} ({result.model_uri})")
    if result.tracking_error:
        print(f"MLflow tracking failed ({result.tracking_error}); the model is saved all the same", file=sys.stderr)
    print(f"took {result.seconds:.0f}s")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from trainer.evaluate import evaluate
    from trainer.metrics import format_table

    result = evaluate(
        args.model, split=None if args.data else args.split, data=args.data, dataset=args.dataset, output=args.output
    )
    print(format_table(result.metrics))
    for name, metrics in result.slices.items():
        print(f"\n{name} ({metrics['n']} sentences): macro-F1 {metrics['macro_f1']:.3f}  " + "  ".join(
            f"{label} F1 {v['f1']:.3f} ({v['support']})" for label, v in metrics["per_label"].items()
        ))
    print(f"\nreport: {result.report_dir}")
    if result.run_id:
        print(f"MLflow run: {result.run_id}")
    if result.tracking_error:
        print(f"MLflow tracking failed ({result.tracking_error})", file=sys.stderr)


def _cmd_predict(args: argparse.Namespace) -> None:
    from trainer.data.sources import read_text
    from trainer.errors import DataError
    from trainer.predict import load_classifier

    classifier = load_classifier(args.model)
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
    "predict": _cmd_predict,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return COMMANDS[args.command](args) or 0
    except TrainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
