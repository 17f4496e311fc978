"""The model card: `README.md` in every model folder, written from the folder's own files.

Built with huggingface_hub's `ModelCard` (YAML metadata with a `model-index` of results, then
Markdown). It is rendered when `train` saves a model and again after every `evaluate` into the
model folder, so its figures are always those of `metrics.json` and `evaluations/*/report.json`.

>>> write_card(Path("models/minilm-bundled"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.models import encoders

from trainer.outputs import model_folder
from trainer.infra.atomic import atomic_file
from trainer.labels import LABEL_DEFINITIONS, LABELS
from trainer.outputs.model_folder import CARD_FILE, EVAL_DIR
from trainer.registry import BACKENDS

GUIDELINES = "shared/docs/labeling-guidelines.md"

_TEMPLATE = """---
{{ card_data }}
---

# {{ name }}

A sentence classifier ({{ backend }}) that labels each sentence of a news article with how its main
claim is sourced. Trained with trainer {{ version }}{% if created %} on {{ created }}{% endif %}.

## Intended use

Tagging news sentences, one at a time, as written in the writer's own voice (verified), relayed
from a source (attributed), or marked by the writer as unconfirmed (unverified), so that researchers
can count sourcing kinds per outlet, topic or month. It is not a fact-checker: `verified` means the
writer asserts the claim, not that the claim is true.

```python
from trainer import load_classifier
clf = load_classifier("{{ folder }}")
clf.predict(["The minister said talks had failed."])[0].label
```

## Labels

| label | meaning |
|---|---|
{% for label, meaning in labels %}| {{ label }} | {{ meaning }} |
{% endfor %}
The full definitions, with the rules for hard cases, are the project's labeling guidelines
(`{{ guidelines }}`).

## Training data

Dataset `{{ dataset.name }}`, fingerprint `{{ dataset.fingerprint }}`.

Sources:
{% for source in dataset.sources %}- `{{ source }}`
{% endfor %}{% if dataset.teachers %}
Distilled: besides the gold labels, the model learned the probabilities that a teacher model gave unlabeled
sentences (train split only; none in an article of the validation or test split):
{% for t in dataset.teachers %}- teacher `{{ t.teacher }}` ({{ t.base_model }}) on {{ t.sentences }} sentences of {{ t.articles }} articles of `{{ t.corpus }}` (`{{ t.file }}`)
{% endfor %}{% endif %}
| split | articles | sentences | {{ label_names | join(" | ") }} |
|---|---|---|{% for _ in label_names %}---|{% endfor %}
{% for split in dataset.splits %}| {{ split.name }} | {{ split.articles }} | {{ split.sentences }} | {{ split.counts | join(" | ") }} |
{% endfor %}
## Results

Each figure is on sentences the model never saw in training. Intervals are 95% bootstraps.

{% for result in results %}### {{ result.title }}

{{ result.n }} sentences; intervals over {{ result.ci_unit }} ({{ result.n_resamples }} resamples).

| label | precision | recall | F1 [95% CI] | n |
|---|---|---|---|---|
{% for row in result.rows %}| {{ row.label }} | {{ row.precision }} | {{ row.recall }} | {{ row.f1 }} | {{ row.n }} |
{% endfor %}| **macro-F1** | | | **{{ result.macro_f1 }}** | {{ result.n }} |

Accuracy {{ result.accuracy }}; expected calibration error (ECE, 10 bins) {{ result.ece }}.

{% endfor %}## Calibration

{{ calibration }}

## Known limits

{% for limit in limits %}- {{ limit }}
{% endfor %}
## Provenance

{% for key, value in provenance %}- {{ key }}: {{ value }}
{% endfor %}"""


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _result(report: dict[str, Any], title: str) -> dict[str, Any]:
    metrics, ci = report["metrics"], report.get("ci", {})

    def with_ci(value: float, key: str) -> str:
        low, high = ci.get(key, (None, None))
        return _fmt(value) if low is None else f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"

    rows = [
        {
            "label": label,
            "precision": _fmt(metrics["per_label"][label]["precision"]),
            "recall": _fmt(metrics["per_label"][label]["recall"]),
            "f1": with_ci(metrics["per_label"][label]["f1"], f"{label}_f1"),
            "n": metrics["per_label"][label]["support"],
        }
        for label in LABELS
    ]
    return {
        "title": title,
        "data": report.get("data", title),
        "n": metrics["n"],
        "ci_unit": report.get("ci_unit", "sentences"),
        "n_resamples": report.get("n_resamples", "?"),
        "rows": rows,
        "macro_f1": with_ci(metrics["macro_f1"], "macro_f1"),
        "accuracy": _fmt(metrics["accuracy"]),
        "ece": _fmt(report.get("calibration", {}).get("ece", float("nan"))),
        "metrics": metrics,
    }


def _limits(meta: dict[str, Any]) -> list[str]:
    limits = []
    if meta.get("max_length"):
        limits.append(
            f"It reads the first {meta['max_length']} tokens of a sentence (`max_length`); a longer sentence is "
            "labeled by its start, and predictions flag it as `truncated`."
        )
    if meta.get("context"):
        limits.append(
            "It reads each sentence with the sentences before and after it in its article (`model.context`): "
            "`predict --file`, `tag` and data sources with articles give them; a bare sentence (`predict --text`, "
            "a file of sentences, serving) is read without them, and may be labeled otherwise."
        )
    limits += [
        "Unverified sentences are rare in real news (1-5%): a small loss of precision on them inflates "
        "unverified counts a lot. Check the unverified precision above before counting them.",
        "Figures on the project's bundled test split run higher than on real news; trust the real-news "
        "evaluation where there is one.",
        "Sentences come from syntok's splitter, which sometimes splits after a title abbreviation "
        "(\"Gov.\") or merges a sentence ending in \"p.m.\" with the next.",
        "English news only; other genres and languages were never measured.",
    ]
    return limits


def _provenance_lines(record: dict[str, Any] | None, precision: str | None) -> list[tuple[str, str]]:
    if record is None:
        return [("provenance", "not recorded (a folder written before provenance existed)")]
    git = record.get("git", {})
    commit = git.get("commit") or "not a git checkout"
    if git.get("commit") and git.get("dirty"):
        commit += " (with uncommitted changes)"
    hardware = record.get("hardware", {})
    return [
        ("code", f"commit {commit}; source sha256 `{record.get('code_sha256', '')[:16]}`"),
        ("lock", f"`{record.get('lock', {}).get('path')}` sha256 `{str(record.get('lock', {}).get('sha256'))[:16]}`"
                 " (full list: pip-freeze.txt)"),
        ("python", str(record.get("python"))),
        ("packages", ", ".join(f"{k} {v}" for k, v in record.get("packages", {}).items() if v)),
        ("hardware", f"{hardware.get('gpu') or hardware.get('cpu')} ({hardware.get('torch_threads')} threads)"),
        ("training precision", str(record.get("precision") or precision)),
    ]


def _calibration_text(temperature: dict | None, test_report: dict | None) -> str:
    """The card's calibration sentence: the fitted temperature (and offsets), and the test split's ECE."""
    fitted_on = (temperature or {}).get("fitted_on", "validation")
    if temperature and isinstance(temperature.get("bias"), dict):
        offsets = ", ".join(f"{label} {float(value):+.2f}" for label, value in temperature["bias"].items())
        text = (f"Bias-corrected temperature scaling, fitted on {fitted_on}: a temperature of "
                f"{temperature['temperature']:.3f} and per-label offsets ({offsets}) on the log-probabilities, "
                "which move the decision between labels (`training.class_bias`).")
    elif temperature:
        text = (f"A temperature of {temperature['temperature']:.3f}, fitted on {fitted_on}, scales the probabilities "
                "(labels never change).")
    else:
        text = "No temperature scaling: probabilities are the model's own."
    if test_report is not None:
        text += f" Test-split ECE {_fmt(test_report['calibration']['ece'])} (reliability diagram in test_report/)."
    return text


def render_card(model_dir: Path, name: str | None = None) -> str:
    """The card's text for `model_dir` (named `name`, default the folder's name), from its files;
    figures are exactly those of the reports."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    read = model_folder.read_json
    meta = read(model_dir / model_folder.MODEL_META) or {}
    run = model_folder.read_run(model_dir)
    record = read(model_dir / model_folder.PROVENANCE_FILE)
    temperature = read(model_dir / model_folder.TEMPERATURE_FILE)
    test_report = read(model_dir / model_folder.TEST_REPORT_DIR / model_folder.REPORT_JSON)
    results = []
    if test_report is not None:
        results.append(_result(test_report, f"Test split ({test_report.get('data', 'test')})"))
    for path in model_folder.evaluation_reports(model_dir):
        report = read(path)
        if test_report is not None and report.get("data") == test_report.get("data"):
            continue  # `evaluate --split test` again: the same sentences as the test split above
        results.append(_result(report, f"{report.get('data', path.parent.name)} (`{EVAL_DIR}/{path.parent.name}`)"))

    dataset = run.get("dataset", {})
    label_counts = dataset.get("label_counts", {})
    splits = [
        {"name": name, "articles": dataset.get("articles", {}).get(name, "?"), "sentences": count,
         "counts": [label_counts.get(name, {}).get(label, 0) for label in LABELS]}
        for name, count in dataset.get("sentences", {}).items()
    ]
    sources = dataset.get("sources") or ["(not recorded)"]
    eval_results = [
        EvalResult(task_type="text-classification", dataset_type=r["data"], dataset_name=r["data"],
                   metric_type=metric, metric_name=name, metric_value=value)
        for r in results
        for metric, name, value in [
            ("f1", "macro-F1", r["metrics"]["macro_f1"]),
            ("accuracy", "accuracy", r["metrics"]["accuracy"]),
            *[("f1", f"{label} F1", r["metrics"]["per_label"][label]["f1"]) for label in LABELS],
        ]
    ]
    backend = meta.get("backend", "unknown")
    name = name or model_dir.name
    base_model = encoders.hub_id(meta.get("base_model"))
    card_data = ModelCardData(
        language="en",
        library_name=BACKENDS.get(backend).library if backend in BACKENDS else None,
        pipeline_tag="text-classification",
        tags=["trainer", "news", "attribution", "sentence-classification", backend],
        base_model=base_model,
        model_name=name,
        eval_results=eval_results or None,
        metrics=["f1", "accuracy"],
    )
    calibration = _calibration_text(temperature, test_report)
    version = (record or {}).get("trainer_version", "?")
    card = ModelCard.from_template(
        card_data,
        template_str=_TEMPLATE,
        name=name,
        backend=f"{backend} ({base_model})" if base_model else backend,
        version=version,
        created=(record or {}).get("created"),
        folder=f"models/{name}",
        labels=[(label, LABEL_DEFINITIONS[label]) for label in LABELS],
        guidelines=GUIDELINES,
        label_names=list(LABELS),
        dataset={"name": dataset.get("name", "?"),
                 "fingerprint": run.get("dataset_fingerprint", "?"), "sources": sources, "splits": splits,
                 "teachers": dataset.get("distilled_from", [])},
        results=results,
        calibration=calibration,
        limits=_limits(meta),
        provenance=_provenance_lines(record, meta.get("precision")),
    )
    return str(card)


def write_card(model_dir: Path, name: str | None = None) -> Path:
    """Write (or rewrite) `model_dir/README.md` whole: a reader never sees half a card."""
    path = model_dir / CARD_FILE
    text = render_card(model_dir, name)
    atomic_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
