"""The rule labeler: each rule family, the guidelines' precedence, and the rules backend."""

from __future__ import annotations

import pytest

from trainer.data.rules import DEFAULT_RULES, RuleLabeler
from trainer.errors import ConfigError


@pytest.fixture(scope="module")
def rules():
    return RuleLabeler.from_yaml(DEFAULT_RULES)


@pytest.mark.parametrize(
    ("text", "label", "family"),
    [
        # unverified markers, hedges, "not known"
        ("The video could not be independently verified.", "unverified", "unverified.marker"),
        ("Reuters was unable to confirm the account.", "unverified", "unverified.marker"),
        ("He claimed without evidence that the vote was rigged.", "unverified", "unverified.no_evidence"),
        ("Rebels reportedly seized the airport.", "unverified", "unverified.hedge"),
        ("It is unclear how many people were inside.", "unverified", "unverified.not_known"),
        # attribution verbs, beliefs, frames, quotes
        ("The minister said the talks had failed.", "attributed", "attributed.verb"),
        ("Analysts believe the bank will cut rates.", "attributed", "attributed.belief"),
        ("According to the report, 40 people died.", "attributed", "attributed.frame"),
        ('"We will rebuild," he said.', "attributed", "attributed.verb"),
        ('"We will rebuild every house on this street."', "attributed", "attributed.quote"),
        # verified: plain assertions, refusals, other senses, side clauses, forecasts
        ("The bridge was built in 1931.", "verified", "verified.default"),
        ("A spokesman declined to comment, the company said.", "verified", "verified.refusal"),
        ("Argentina claimed the top spot on Sunday.", "verified", "verified.other_sense"),
        ("The Senate confirmed her on Tuesday.", "verified", "verified.other_sense"),
        ("He was shot after he allegedly brandished a pistol.", "verified", "verified.side_clause_hedge"),
        ("It is unclear who will win in November.", "verified", "verified.forecast"),
        ("The report runs to 300 pages.", "verified", "verified.default"),
    ],
)
def test_rule_families(rules, text, label, family):
    result = rules.label(text)
    assert result.label == label, result
    assert any(f.startswith(family) for f in result.fired), result.fired


@pytest.mark.parametrize(
    ("text", "label"),
    [
        # unverified wins over attributed
        ("The army said it killed 40 fighters, though this could not be verified.", "unverified"),
        # uncertainty voiced by a source is the source's: attributed
        ("Officials said it was not clear whether the dam had failed.", "attributed"),
        # a hedge inside a quotation belongs to the speaker
        ('"They allegedly stole the ballots," the senator said.', "attributed"),
    ],
)
def test_precedence(rules, text, label):
    assert rules.label(text).label == label


def test_bad_lexicon_is_a_config_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("unverified:\n  markers: ['(unclosed']\n")
    with pytest.raises(ConfigError, match=r"unverified\.markers: expected a regular expression"):
        RuleLabeler.from_yaml(path)
    path.write_text("attributd: {}\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml: attributd: extra inputs are not permitted"):
        RuleLabeler.from_yaml(path)


def test_rules_backend_trains_evaluates_and_predicts(project):
    from trainer import load_classifier
    from trainer.config import load_config
    from trainer.workflows.train import train

    result = train(load_config(project.experiment("rules", {"backend": "rules"})))
    assert (result.model_dir / "rules.yaml").is_file()
    clf = load_classifier(result.model_dir)
    predictions = clf.predict(["Rebels reportedly seized the airport.", "The minister said talks failed."])
    assert [p.label for p in predictions] == ["unverified", "attributed"]
    assert result.metrics["test"]["macro_f1"] > 0.5  # the fixture corpus is written by the same guidelines
