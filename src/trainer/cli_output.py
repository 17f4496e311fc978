"""What each `trainer` command prints when it is done: its results on stdout, one function per command
(or per kind of result), so that `cli.py` only wires options to functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from trainer.infra.secrets import mask_secrets
from trainer.labels import LABELS

# `predict --format`: a table for reading (the first, the default) or one JSON object per line.
PREDICTION_FORMATS = ("table", "jsonl")
# Sentences longer than this are cut with an ellipsis in `predict`'s table.
PREDICTION_WIDTH = 80


def print_config(config: Any) -> None:
    """`validate`: the config fully resolved, defaults included."""
    from trainer.config import dump_yaml

    print(mask_secrets(dump_yaml(config)), end="")


def print_dataset(built: Any) -> None:
    """`build-data`: the dataset card and where the dataset is."""
    from trainer.data.build import CARD_MD

    print((built.path / CARD_MD).read_text(encoding="utf-8"))
    print(f"dataset: {built.path}")


def print_problems(built: Any, problems: list[Any]) -> None:
    """`check-data`: each problem, then the count of errors and warnings."""
    for problem in problems:
        print(f"{problem.severity}: {problem.message}")
    errors = sum(p.severity == "error" for p in problems)
    print(f"{built.path}: {errors} errors, {len(problems) - errors} warnings")


def print_flip_check(check: dict[str, Any]) -> None:
    """`check-data --inject-flips`: how many injected flips the label-issue finder found."""
    print(f"injected {check['flipped']} flips into {check['sentences']} labels; the finder flagged {check['found']}")
    for k, figures in check["at_k"].items():
        print(f"  at k={k}: precision {figures['precision']:.3f}, recall {figures['recall']:.3f}")


def print_label_issues(rows: list[Any], per_source: dict[str, int], output: Path) -> None:
    """`check-data --label-issues`: how many suspected issues per source, and the files that list them."""
    from trainer.workflows.label_issues import ISSUES_CSV, ISSUES_TASKS

    print(f"{len(rows)} suspected label issues ({', '.join(f'{k}: {v}' for k, v in sorted(per_source.items()))}): "
          f"{output / ISSUES_CSV}, {output / ISSUES_TASKS} (Label Studio review tasks)")


def print_cross_validation(cv: Any) -> None:
    """`train --cv K`: each metric's mean and spread over the folds, and the parent MLflow run."""
    for name, stats in cv.summary.items():
        print(f"{name:<16} {stats['mean']:.3f} ± {stats['std']:.3f}")
    failed = f"MLflow tracking failed ({mask_secrets(str(cv.tracking_error))})"
    print(f"MLflow parent run: {cv.run_id}" if cv.run_id else failed)


def print_training(result: Any) -> None:
    """`train`: the test table, validation macro-F1, the model folder and the MLflow run."""
    from trainer.metrics import format_table

    print(f"\ntest split ({result.metrics['test']['n']} sentences):\n{format_table(result.metrics['test'])}\n")
    print(f"validation macro-F1: {result.metrics['validation']['macro_f1']:.3f}")
    print(f"model folder: {result.model_dir}")
    if result.run_id:
        print(f"MLflow run:   {result.run_id}" + (f" ({result.model_uri})" if result.model_uri else " (incomplete)"))
    if result.tracking_error:
        print(f"MLflow tracking failed ({mask_secrets(str(result.tracking_error))}); the model is saved all the same",
              file=sys.stderr)
    print(f"took {result.seconds:.0f}s")


def print_distill(result: Any) -> None:
    """`distill`: each probabilities file written, with its counts and the teacher's label shares; then the student."""
    for written in result.files:
        counts = written.counts
        shares = "  ".join(f"{label} {written.shares[label]:.3f}" for label in LABELS if label in written.shares)
        print(f"{written.path}: {counts['drawn']:,} of {counts['sentences']:,} sentences of {counts['articles']:,} "
              f"articles ({counts.get('excluded_articles', 0)} excluded); teacher's labels: {shares}; "
              + ("kept (the same teacher and draw)" if written.reused else f"{written.seconds:.0f}s")
              + (f" (stored probabilities of {', '.join(written.reused_members)} reused)"
                 if written.reused_members else ""))
    if result.student is not None:
        print_training(result.student)


def print_report(report: dict) -> None:
    """An evaluation report: per-label figures with intervals, label shares and slices."""
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


def print_evaluation(result: Any) -> None:
    """`evaluate`: the report, where its page is, and the MLflow run."""
    from trainer.outputs.report import REPORT_HTML

    print_report(result.report)
    print(f"\nreport: {result.report_dir / REPORT_HTML}")
    if result.run_id:
        print(f"MLflow run: {result.run_id}")
    if result.tracking_error:
        print(f"MLflow tracking failed ({mask_secrets(str(result.tracking_error))})", file=sys.stderr)


def print_comparison(table: Any) -> None:
    """`compare`: the models side by side, with the paired tests against the reference."""
    from trainer.workflows.compare import to_text

    print(to_text(table))


def print_markdown(path: Path) -> None:
    """`compare --markdown`: where the Markdown table went."""
    print(f"\nMarkdown: {path}")


def print_selection(picks: list[Any], output: Path, n: int | None = None,
                    max_per_article: int | None = None) -> None:
    """`select`: how many sentences from how many articles, and the files written; fewer than --n asked
    for is explained (the per-article cap, or too few sentences)."""
    from trainer.workflows.selection import CONFIG_FILE, ROWS_CSV, ROWS_JSONL, TASKS_FILE

    articles = len({c.article for c in picks})
    print(f"{len(picks)} sentences from {articles} articles: {output}/{TASKS_FILE} (Label Studio import), "
          f"{CONFIG_FILE}, {ROWS_CSV}, {ROWS_JSONL}")
    if n is not None and len(picks) < n:
        capped = max_per_article is not None and len(picks) >= articles * max_per_article
        why = (f"at most --max-per-article {max_per_article} from each of {articles} article(s); raise it, or "
               "give more articles" if capped else "no more sentences to pick from")
        print(f"note: {len(picks)} of the {n} asked for: {why}", file=sys.stderr)


def print_warning(line: str) -> None:
    """A warning the user must see even with -q (it is about the results, not progress)."""
    print(f"warning: {line}", file=sys.stderr)


def print_pushed(pushed: Any) -> None:
    """`labelstudio push`: the project made, and where to label."""
    print(f"Label Studio project {pushed.project}: {pushed.tasks} tasks imported; label at {pushed.url}")


def print_pulled(project: int, output: Path, annotations: int) -> None:
    """`labelstudio pull`: the export written."""
    print(f"{output}: Label Studio project {project}, {annotations} annotations (a kind: labelstudio source reads it)")


def print_tagging(result: Any) -> None:
    """`tag`: what was tagged, reused and skipped."""
    print(f"{result.articles} articles, {result.sentences} sentences tagged; {result.reused} already there; "
          f"{result.skipped} inputs skipped (see skipped/): {result.output}")
    if result.non_english:
        found = ", ".join(f"{code} {n}" for code, n in sorted(result.non_english.items(), key=lambda x: -x[1]))
        print(f"not English: {sum(result.non_english.values())} articles ({found}); see the language column of "
              "articles/", file=sys.stderr)


def print_sweep(result: Any) -> None:
    """`sweep`: the trials finished, the best so far, and where the study and its runs are."""
    shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in result.best_params.items()}
    best = (f"best validation macro-F1 {result.best_value:.4f} with {json.dumps(shown)}"
            if result.best_value is not None else "no complete trial yet")
    print(f"sweep {result.study}: {result.finished} finished trials ({result.ran_here} here); {best}")
    if result.best_config:
        print(f"best config: {result.best_config} (trainer train --config {result.best_config})")
    print(f"study: {mask_secrets(result.storage)}; MLflow parent run: {result.parent_run_id}")


def print_summary(summary: Any) -> None:
    """`summarize`: each group's shares by the primary estimator (named), with the audit's size and the notes."""
    from trainer.outputs.summary_report import SHORT, percent

    name = summary.primary
    print(f"{'group':<24} {'label':<11} {'audited':>7}  {SHORT[name]} [95% interval]")
    for r in summary.rows:
        print(f"{str(r['group']):<24} {r['label']:<11} {r['audited']:>7}  {percent(r[f'{name}_share'])} "
              f"[{percent(r[f'{name}_low'])}, {percent(r[f'{name}_high'])}]")
    print()
    for note in summary.notes:
        print(note)
    if summary.audit:
        print(f"audit: {summary.audit['sentences']} sentences, {summary.audit['design']}")
    if summary.run_id:
        print(f"MLflow run: {summary.run_id}")
    print(f"estimators side by side, plot and page: {summary.report}/summary.html (and .csv, .xlsx, .json)")


def print_audit(result: Any) -> None:
    """`audit`: the sample drawn, per stratum, and where the tasks are."""
    for stratum in result.strata:
        print(f"{stratum['stratum']:<24} {stratum['sampled']:>5} of {stratum['sentences']:>7} sentences "
              f"(inclusion probability {stratum['inclusion_probability']:.4f})")
    print(f"\n{result.sentences} sentences of {result.population} to label: {result.output}/tasks.json (Label Studio, "
          f"with labeling-config.xml) or {result.output}/tasks.csv; then trainer summarize --audit <export>")


def print_export(check: Any, source: Path, output: Path, format: str) -> None:
    """`export`: the new folder and how close it comes to the source model on the probe sentences."""
    from trainer.models.export import PROBES

    print(
        f"{format} model folder: {output} (load it like any other; it runs on the CPU)\n"
        f"against {source} on {len(PROBES)} probe sentences: labels equal {check.label_agreement:.0%}, "
        f"probabilities at most {check.max_probability_diff:.4f} apart; "
        f"run `trainer evaluate --model {output} ...` before trusting it"
    )


def print_predictions(predictions: list[Any], format: str, cues: list[list[str]] | None = None,
                      languages: list[Any] | None = None) -> None:
    """`predict`: one JSON line per sentence, or a table of label, probability and sentence; with each the
    rule cues that matched it (`attributed.reporting_verb:said`) and, in JSON, its detected language."""
    cues = cues if cues is not None else [[] for _ in predictions]
    languages = languages if languages is not None else [None for _ in predictions]
    if format == "jsonl":
        for p, found, language in zip(predictions, cues, languages):
            extra = {"language": language.code, "language_confidence": language.confidence} if language else {}
            print(json.dumps({"text": p.text, "label": p.label, "probabilities": p.probabilities,
                              "rule_cues": found, **extra}, ensure_ascii=False))
        return
    width = PREDICTION_WIDTH
    print(f"{'label':<11} {'p':>5}  sentence  [rule cues]")
    for p, found in zip(predictions, cues):
        text = p.text if len(p.text) <= width else p.text[: width - 1] + "…"
        print(f"{p.label:<11} {p.score:>5.2f}  {text}" + (f"  [{', '.join(found)}]" if found else ""))
