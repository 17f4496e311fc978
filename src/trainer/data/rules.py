"""Rule labeling from the cue lexicons in a YAML file (default: `default_rules.yaml` beside this module).

Precedence follows the guidelines: a writer's unverified marker on the main claim wins, then an
attribution frame, else verified. Markers inside quotation marks are the speaker's, hedges inside a
side clause ("after he allegedly ...") do not count, uncertainty voiced by a source ("officials said
it was unclear ...") is attributed, and "unclear whether X will ..." is a forecast (verified).

>>> labeler = RuleLabeler.from_yaml(DEFAULT_RULES)  # doctest: +SKIP
>>> labeler.label("Rebels reportedly seized the town.")  # doctest: +SKIP
RuleResult(label='unverified', fired=['unverified.hedge:reportedly'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainer.errors import ConfigError

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")


def rules_path(path: Path | None) -> Path:
    """The lexicon file a config names, or the packaged default."""
    return DEFAULT_RULES if path is None else path


# The longest one search of a user's pattern may take on one text. The patterns come from rule files a
# user edits (and model folders carry); `regex` stops a catastrophic one ("(a|aa)+c") at this bound,
# where `re` would backtrack for hours.
PATTERN_TIMEOUT_S = 1.0


class UserPattern:
    """A regular expression from a rules file or config, searched with a time bound: a pattern that
    backtracks past `PATTERN_TIMEOUT_S` on a text is a ConfigError naming it, never a hang."""

    def __init__(self, pattern: str, where: str, flags: int = 0, shown: str | None = None):
        self.where, self.shown = where, shown if shown is not None else pattern
        try:
            self.compiled = regex.compile(pattern, flags)
        except (regex.error, re.error) as exc:
            raise ConfigError(f"{where}: expected a regular expression, found {self.shown!r} ({exc})") from None

    def _timed_out(self, text: str) -> ConfigError:
        return ConfigError(
            f"{self.where}: expected a regular expression that matches in under {PATTERN_TIMEOUT_S:g} s, found "
            f"{self.shown!r} still searching a text of {len(text)} characters (nested repetition such as "
            "(a|aa)+ backtracks without end); simplify it"
        )

    def search(self, text: str, pos: int = 0, endpos: int | None = None) -> Any:
        try:
            return self.compiled.search(text, pos, len(text) if endpos is None else endpos, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            raise self._timed_out(text) from None

    def match(self, text: str) -> Any:
        try:
            return self.compiled.match(text, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            raise self._timed_out(text) from None

    def finditer(self, text: str) -> list[Any]:
        try:
            return list(self.compiled.finditer(text, timeout=PATTERN_TIMEOUT_S))
        except TimeoutError:
            raise self._timed_out(text) from None

    def sub(self, replacement: str, text: str) -> str:
        try:
            return self.compiled.sub(replacement, text, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            raise self._timed_out(text) from None


_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|''.*?''|‘[^’]*’")
_CLAUSE_BREAK = re.compile(r"[,;:()—–]|\bbut\b|\bthough\b|\balthough\b|\bhowever\b")


class _Lexicon(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnverifiedRules(_Lexicon):
    markers: list[str] = Field(default_factory=list)
    no_evidence: list[str] = Field(default_factory=list)
    hedges: list[str] = Field(default_factory=list)
    not_known: list[str] = Field(default_factory=list)
    forecast: str = r"\b(will|would)\b"


class AttributedRules(_Lexicon):
    verbs: list[str] = Field(default_factory=list)
    beliefs: list[str] = Field(default_factory=list)
    frames: list[str] = Field(default_factory=list)
    quote_pattern: str = r"^[\"“].+[\"”]$"


class VerifiedRules(_Lexicon):
    refusals: list[str] = Field(default_factory=list)
    other_senses: list[str] = Field(default_factory=list)


class RuleFile(_Lexicon):
    unverified: UnverifiedRules = UnverifiedRules()
    attributed: AttributedRules = AttributedRules()
    verified: VerifiedRules = VerifiedRules()
    side_clause_openers: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class RuleResult:
    label: str
    fired: list[str]


class _Patterns(list):  # list[tuple[str, UserPattern]]
    """One lexicon's compiled patterns, in order, and `any`: all of them in one alternation.

    `any.search(text)` finds a match exactly when one of the patterns does (the regex engine tries
    every alternative at every position), so a sentence that none of them matches, the usual case,
    costs one search instead of one per pattern.
    """

    any: UserPattern


def _compile(patterns: list[str], where: str) -> _Patterns:
    compiled = _Patterns()
    for pattern in patterns:
        compiled.append(
            (pattern, UserPattern(rf"(?<![\w-])(?:{pattern})(?![\w-])", where, regex.IGNORECASE, shown=pattern))
        )
    alternatives = "|".join(f"(?:{pattern})" for pattern in patterns) or "(?!)"
    compiled.any = UserPattern(rf"(?<![\w-])(?:{alternatives})(?![\w-])", where, regex.IGNORECASE,
                               shown=" | ".join(patterns))
    return compiled


def _search(patterns: _Patterns, text: str) -> bool:
    try:
        return bool(patterns.any.search(text))
    except ConfigError:
        for _, pattern in patterns:  # name the pattern that does not end, not the whole alternation
            pattern.search(text)
        raise


class RuleLabeler:
    """Labels one sentence at a time from the lexicons; records which rules fired."""

    def __init__(self, rules: RuleFile, source: str = "<rules>"):
        self.rules = rules
        self.source = source
        self.markers = _compile(rules.unverified.markers, f"{source}: unverified.markers")
        self.no_evidence = _compile(rules.unverified.no_evidence, f"{source}: unverified.no_evidence")
        self.hedges = _compile(rules.unverified.hedges, f"{source}: unverified.hedges")
        self.not_known = _compile(rules.unverified.not_known, f"{source}: unverified.not_known")
        self.forecast = UserPattern(rules.unverified.forecast, f"{source}: unverified.forecast", regex.IGNORECASE)
        self.verbs = _compile(rules.attributed.verbs, f"{source}: attributed.verbs")
        self.beliefs = _compile(rules.attributed.beliefs, f"{source}: attributed.beliefs")
        self.frames = _compile(rules.attributed.frames, f"{source}: attributed.frames")
        self.quote = UserPattern(rules.attributed.quote_pattern, f"{source}: attributed.quote_pattern")
        self.refusals = _compile(rules.verified.refusals, f"{source}: verified.refusals")
        self.other_senses = _compile(rules.verified.other_senses, f"{source}: verified.other_senses")
        openers = "|".join(re.escape(w) for w in rules.side_clause_openers) or "(?!)"
        self.openers = re.compile(rf"\b({openers})\b", re.IGNORECASE)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RuleLabeler:
        """Load a lexicon file; unknown keys and bad regular expressions are ConfigErrors."""
        from trainer.config import read_yaml

        path = Path(path)
        try:
            rules = RuleFile.model_validate(read_yaml(path))
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(p) for p in error["loc"])
            raise ConfigError(f"{path}: {key}: {error['msg'].lower()}") from None
        return cls(rules, str(path))

    # ------------------------------------------------------------ helpers

    def _source_voiced(self, text: str, start: int) -> bool:
        """True when a reporting verb precedes position `start` in the same clause."""
        clause_start = max((m.end() for m in _CLAUSE_BREAK.finditer(text, 0, start)), default=0)
        clause = text[clause_start:start]
        return _search(self.verbs, clause) or _search(self.beliefs, clause)

    def _in_side_clause(self, text: str, match: Any) -> bool:
        clause_start = max((m.end() for m in _CLAUSE_BREAK.finditer(text, 0, match.start())), default=0)
        return bool(self.openers.search(text[clause_start : match.start()]))

    def _is_forecast(self, text: str, match: Any) -> bool:
        return bool(self.forecast.search(text[max(0, match.start() - 80) : match.end() + 80]))

    # ------------------------------------------------------------ labeling

    def label(self, text: str) -> RuleResult:
        """Label one sentence by the lexicons, with the guidelines' precedence."""
        unquoted = _QUOTED.sub(" \u2026 ", text)  # a speaker's words are not the writer's markers
        fired: list[str] = []
        attributed_by_source = False

        for name, pattern in self.no_evidence if _search(self.no_evidence, unquoted) else ():
            match = pattern.search(unquoted)
            if match:
                return RuleResult("unverified", [f"unverified.no_evidence:{match.group(0).lower()}"])
        # The writer's unverified markers, in precedence order. Each family may have an exception that
        # leaves the sentence alone; a marker voiced by a source makes it attributed instead.
        families = (
            ("marker", self.markers, None, "attributed.source_uncertainty"),
            # a forecast: "unclear whether X will ...", "whether X will ... remains unclear"
            ("not_known", self.not_known, ("verified.forecast", self._is_forecast), "attributed.source_uncertainty"),
            ("hedge", self.hedges, ("verified.side_clause_hedge", self._in_side_clause), "attributed.source_hedge"),
        )
        for family, patterns, exception, voiced in families:
            for _, pattern in patterns if _search(patterns, unquoted) else ():
                for match in pattern.finditer(unquoted):
                    cue = match.group(0).lower()
                    if exception is not None and exception[1](unquoted, match):
                        fired.append(f"{exception[0]}:{cue}")
                    elif self._source_voiced(unquoted, match.start()):
                        attributed_by_source = True
                        fired.append(f"{voiced}:{cue}")
                    else:
                        return RuleResult("unverified", [f"unverified.{family}:{cue}"])

        for name, pattern in self.refusals if _search(self.refusals, unquoted) else ():
            if pattern.search(unquoted):
                return RuleResult("verified", [*fired, f"verified.refusal:{name}"])
        cleaned = unquoted
        for name, pattern in self.other_senses if _search(self.other_senses, unquoted) else ():
            if pattern.search(cleaned):
                fired.append(f"verified.other_sense:{name}")
                cleaned = pattern.sub(" ", cleaned)

        if attributed_by_source:
            return RuleResult("attributed", fired)
        for family, patterns in (("verb", self.verbs), ("belief", self.beliefs), ("frame", self.frames)):
            for name, pattern in patterns if _search(patterns, cleaned) else ():
                match = pattern.search(cleaned)
                if match:
                    return RuleResult("attributed", [*fired, f"attributed.{family}:{match.group(0).lower()}"])
        if self.quote.search(text.strip()):
            return RuleResult("attributed", [*fired, "attributed.quote"])
        return RuleResult("verified", fired or ["verified.default"])

    def counts_as_claim_cue(self, cue: str) -> bool:
        """Does an annotated attribution cue (e.g. PolNeAR's) relay a claim? Speech, beliefs and
        evidence frames do; desires, feelings and perceptions ("wants", "likes", "feel") do not."""
        cue = cue.strip()
        if cue and not any(ch.isalnum() for ch in cue):
            return True  # ":" or a quotation mark introducing a quote
        return any(p.search(cue) for _, p in self.verbs + self.beliefs + self.frames)

    def is_belief_cue(self, cue: str) -> bool:
        return any(p.search(cue) for _, p in self.beliefs)
