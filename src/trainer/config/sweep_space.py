"""The search space of `trainer sweep` (configs/sweeps/*.yaml): each parameter's range, and the study's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Field, field_validator, model_validator

from trainer.config.schema import DEFAULT_SEED, SWEEP_PARAM_TAG, SafeName, Strict


class SweepParamBase(Strict):
    @model_validator(mode="after")
    def _range(self) -> Any:
        low, high = getattr(self, "low", None), getattr(self, "high", None)
        if low is not None and not low < high:
            raise ValueError(f"expected low < high, found low {low} and high {high}")
        if getattr(self, "log", False) and low is not None and low <= 0:
            raise ValueError(f"expected low > 0 with log: true, found {low}")
        if getattr(self, "log", False) and getattr(self, "step", 1) != 1:
            raise ValueError("expected step: 1 with log: true (Optuna samples a log range without steps), "
                             f"found step {self.step}")
        return self


class FloatParam(SweepParamBase):
    type: Literal["float"]
    low: float = Field(allow_inf_nan=False, description="the smallest value")
    high: float = Field(allow_inf_nan=False, description="the largest value")
    log: bool = Field(default=False, description="sample on a log scale")


class IntParam(SweepParamBase):
    type: Literal["int"]
    low: int = Field(description="the smallest value")
    high: int = Field(description="the largest value")
    step: int = Field(default=1, ge=1, description="the spacing of the values")
    log: bool = Field(default=False, description="sample on a log scale")


class CategoricalParam(SweepParamBase):
    type: Literal["categorical"]
    choices: list[str | int | float | bool | None] = Field(min_length=1, description="the values to choose from")


SWEEP_PARAMS = (FloatParam, IntParam, CategoricalParam)
SweepParam = Annotated[Union[SWEEP_PARAMS], Field(discriminator=SWEEP_PARAM_TAG)]  # noqa: UP007
# The tags of a sweep parameter's `type` ("float", "int", "categorical").
SWEEP_PARAM_TYPES: tuple[str, ...] = tuple(get_args(param.model_fields[SWEEP_PARAM_TAG].annotation)[0]
                                           for param in SWEEP_PARAMS)


class SweepSpace(Strict):
    """A search space: `trainer sweep --space configs/sweeps/<name>.yaml`. Keys are the dotted config
    keys of `--set`; each trial's values are applied to the base config as `--set` would."""

    study: SafeName = Field(description="the Optuna study name (workers share it)")
    config: Path | None = Field(default=None, description="the base experiment config, when --config is not given")
    metric: Literal["val_macro_f1"] = Field(default="val_macro_f1", description="what the study maximises")
    pruner: Literal["median", "hyperband", "none"] = Field(
        default="median", description="prunes on the validation macro-F1 each epoch; backends without epochs never are"
    )
    seed: int = Field(default=DEFAULT_SEED, ge=0, le=2**32 - 1, description="the TPE sampler's seed")
    startup_trials: int = Field(default=5, ge=1, description="random trials before TPE models the results")
    params: dict[str, SweepParam] = Field(min_length=1, description="dotted config key (as for --set) -> its range")

    @field_validator("params")
    @classmethod
    def _keys_once(cls, params: dict[str, Any]) -> dict[str, Any]:
        """A key written twice (`model.C` and `'model.C '`) is one setting: --set strips keys, so the later
        range would silently win over the earlier."""
        seen: dict[str, str] = {}
        for key in params:
            plain = key.strip()
            if plain in seen:
                raise ValueError(f"expected each config key once, found {plain!r} twice (as {seen[plain]!r} and "
                                 f"{key!r}); keep one range for it")
            seen[plain] = key
        return params
