"""Progress on every long step: done, total, rate and time left, as plain log lines off a terminal."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import CORPUS
from trainer.infra import progress
from trainer.infra.progress import LogProgress

LOGGER = "trainer.infra.progress"


@pytest.fixture()
def every_line(monkeypatch, caplog):
    """Progress on, a line at every update (no waiting for the 30-second interval), lines captured."""
    monkeypatch.setenv("TRAINER_PROGRESS_EVERY_S", "0")
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    progress.configure(True)
    caplog.set_level(logging.INFO, logger=LOGGER)
    return lambda: [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_a_line_has_done_total_rate_time_left_and_the_postfix(every_line):
    bar = LogProgress(total=10, desc="tagging", unit="article", every_s=0.0)
    bar.update(4)
    bar.set_postfix(sentences=1234)
    bar.update(1)
    line = every_line()[-1]
    assert re.fullmatch(r"tagging: 5/10 articles \(50%\) in \d+s, [\d.e+]+ articles/s, about \d+m?\d*s left "
                        r"\(sentences=1,234\)", line), line


def test_setting_n_then_refresh_logs_as_update_does(every_line):
    bar = LogProgress(total=8, desc="sweep s", unit="trial", every_s=0.0, initial=3)
    bar.n = 5
    bar.refresh()
    assert every_line()[-1].startswith("sweep s: 5/8 trials (62%)")


def test_tag_reports_articles_against_the_inputs_count(every_line, trained_sklearn, tmp_path):
    from trainer.workflows.tagging import count_inputs, tag

    folder = CORPUS / "articles"
    total = count_inputs(folder)
    result = tag(trained_sklearn[1].model_dir, folder, tmp_path / "out")
    lines = [line for line in every_line() if line.startswith("tagging:")]
    assert total == result.articles and lines
    assert lines[-1].startswith(f"tagging: {total}/{total} articles (100%)")
    assert f"sentences={result.sentences:,}" in lines[-1]


def test_select_reports_sentences_scored(every_line, trained_sklearn, tmp_path):
    from trainer.workflows.selection import select

    select(trained_sklearn[1].model_dir, CORPUS / "articles", 5, tmp_path / "picks")
    lines = [line for line in every_line() if line.startswith("scoring:")]
    done, total = re.match(r"scoring: ([\d,]+)/([\d,]+) sentences", lines[-1]).groups()
    assert done == total and int(total.replace(",", "")) > 5


def test_label_issues_report_sentences_scored_fold_by_fold(every_line, project):
    from trainer.config import load_data_config
    from trainer.data.build import build_dataset
    from trainer.workflows import label_issues

    built = build_dataset(load_data_config(project.write("data/fixture.yaml", project.data_config())), progress=False)
    sentences = label_issues.all_sentences(built)
    label_issues.out_of_fold_probabilities(sentences, folds=4)
    lines = [line for line in every_line() if line.startswith("label issues, 4 folds:")]
    n = len(sentences.texts)
    assert len(lines) == 4  # one per fold; closing adds no line that repeats the last
    assert lines[-1].startswith(f"label issues, 4 folds: {n:,}/{n:,} sentences (100%)")


def test_sweep_reports_trials_finished(every_line, project):
    from tests.test_sweep import TFIDF_SPACE
    from trainer.workflows.sweep import sweep

    config = project.experiment("tfidf", {"backend": "sklearn"})
    space = project.write("sweeps/space.yaml", TFIDF_SPACE)
    sweep(config, space, 2)
    lines = [line for line in every_line() if line.startswith("sweep tfidf-test:")]
    assert [line.split(" (")[0] for line in lines] == ["sweep tfidf-test: 1/2 trials", "sweep tfidf-test: 2/2 trials"]
