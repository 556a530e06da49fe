"""The /train request and response bodies (pydantic only; the CLI validates with them too)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from .custom import DataError, clean_rows, parse_csv
from .datasets import DEFAULT_NOISE

DatasetName = Literal["digits", "xor", "circles", "moons", "spiral", "custom"]


def _not_a_boolean(value: Any) -> Any:
    """Refuse true/false where a number goes: pydantic's lax mode would read them as 1 and 0
    (and YAML reads `yes`/`no` as booleans), so `learning_rate: true` would train at 1."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_not_boolean", "a number, not true or false")
    return value


#: A number that true and false are not.
Number = BeforeValidator(_not_a_boolean)
Units = Annotated[int, Field(ge=1, le=1024), Number]


class CustomData(BaseModel):
    """A learner's own 2-D points: `x` rows [x1, x2] with labels `y`, or the same as `csv` text."""

    model_config = ConfigDict(extra="forbid")

    x: list[Any] | None = Field(default=None, description="rows [x1, x2] of finite numbers")
    y: list[Any] | None = Field(default=None, description="one label per row (strings or ints)")
    # its length is checked by parse_csv (MAX_CSV_CHARS), with a message that says so
    csv: str | None = Field(
        default=None,
        exclude=True,
        description="instead of x and y: `x1,x2,label` lines, the first may be a header",
    )

    @model_validator(mode="after")
    def _checked(self) -> CustomData:
        try:
            if self.csv is not None:
                if self.x is not None or self.y is not None:
                    raise DataError("give either csv or x and y, not both")
                self.x, self.y = parse_csv(self.csv)
                self.csv = None
            elif self.x is None or self.y is None:
                raise DataError("give the points as x and y (or as csv)")
            else:
                self.x, self.y = clean_rows(self.x, self.y)
        except DataError as exc:
            raise PydanticCustomError("custom_data", "{problem}", {"problem": str(exc)}) from None
        return self


class TrainRequest(BaseModel):
    """What to train; every field is optional and defaults to the lesson's network on digits."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {"dataset": "digits", "hidden_layers": [128, 64], "epochs": 30},
                {"dataset": "moons", "hidden_layers": [16, 16], "epochs": 60, "batch_size": 32},
            ]
        },
    )

    dataset: DatasetName = Field(
        default="digits",
        description="8x8 handwritten digits, a 2-D toy set, or custom: the points in `data`",
    )
    hidden_layers: list[Units] = Field(
        default=[128, 64], min_length=1, max_length=8, description="1-8 layers of 1-1024 units"
    )
    activation: Literal["relu", "sigmoid", "tanh"] = Field(
        default="relu", description="the hidden layers' activation"
    )
    epochs: Annotated[int, Number] = Field(
        default=30, ge=1, le=1000, description="passes over the training set"
    )
    learning_rate: Annotated[float, Number] = Field(
        default=0.1, gt=0, le=100, description="the SGD step size"
    )
    batch_size: Annotated[int | None, Number] = Field(
        default=64, ge=1, le=1_000_000, description="null: full-batch gradient descent"
    )
    momentum: Annotated[float, Number] = Field(default=0.0, ge=0, lt=1, description="0: plain SGD")
    init: Literal["he", "xavier", "lesson"] = Field(
        default="he", description="weight initialisation; lesson: the lesson's randn * 0.01"
    )
    seed: Annotated[int, Number] = Field(
        default=0, ge=0, le=2**32 - 1, description="the same seed trains the same network"
    )
    noise: Annotated[float | None, Number] = Field(
        default=None, ge=0, le=1, description="2-D sets only; default depends on the set"
    )
    data: CustomData | None = Field(
        default=None,
        description="dataset custom only: 10-2,000 points of 2-10 classes, split 80/20 by seed "
        "(backprop train reads them from a CSV file of x1,x2,label lines)",
    )

    @model_validator(mode="after")
    def _noise_only_for_2d(self) -> TrainRequest:
        if self.noise is not None and self.dataset not in DEFAULT_NOISE:
            raise PydanticCustomError(
                "noise_not_2d",
                "noise: only the 2-D datasets (xor, circles, moons, spiral) take a noise level",
            )
        if (self.data is not None) != (self.dataset == "custom"):
            raise PydanticCustomError(
                "data_only_for_custom",
                "data: give data with dataset custom, and only then",
            )
        return self


class HistoryRow(BaseModel):
    """One epoch: training-set loss (null once it stops being finite) and accuracies."""

    epoch: int
    loss: float | None
    train_accuracy: float
    test_accuracy: float


class RunConfig(TrainRequest):
    """The request as run: defaults filled in, plus the layer sizes with input and output."""

    layer_sizes: list[int]


class DecisionBoundary(BaseModel):
    """Predicted class on a grid over the data; grid[r][c] is at y_range[0] + r * step (y up)."""

    x_range: list[float]
    y_range: list[float]
    grid: list[list[int]]
    points: list[list[float]] = Field(
        description="the test set as [x, y, class]; for custom data every point"
    )


class TrainResult(BaseModel):
    """A finished run (a diverged one included)."""

    run_id: str
    status: Literal["completed", "diverged"]
    config: RunConfig
    history: list[HistoryRow]
    train_accuracy: float
    test_accuracy: float
    parameters: int = Field(description="weights and biases of the network")
    duration_seconds: float = Field(description="the whole run, data loading and evaluation too")
    samples_per_second: float = Field(description="training samples per second of training steps")
    confusion_matrix: list[list[int]] = Field(description="test set: rows true, columns predicted")
    decision_boundary: DecisionBoundary | None = None
    classes: list[str] | None = Field(
        default=None, description="custom data: the labels, in the order of the class numbers"
    )
    exportable: bool = Field(
        default=False,
        description="GET /train/{run_id}/export has this run for the next hour (completed, "
        "at most 100,000 parameters)",
    )


class StepState(BaseModel):
    """Where a step-by-step run is: mini-batches done, and the parameters as the last step left
    them (flat, layer by layer: W1 row by row, b1, W2, ...); send it back unchanged."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    step: int = Field(ge=0, le=10_000)
    params: list[float] = Field(max_length=1000)
    velocity: list[float] | None = Field(default=None, max_length=1000)


class StepRequest(BaseModel):
    """A small network's configuration and, after the first step, the state the last one gave."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"config": {"dataset": "xor", "hidden_layers": [4], "batch_size": 32}},
                {
                    "config": {"dataset": "xor", "hidden_layers": [2], "batch_size": 32},
                    "state": {"step": 1, "params": [0.5, -0.3, 0.1, 0.8, 0, 0, 1, -1, 1, -1, 0, 0]},
                },
            ]
        },
    )

    config: TrainRequest = Field(default_factory=TrainRequest)
    state: StepState | None = Field(default=None, description="null: start from the seeded init")


class StepLayer(BaseModel):
    """One layer's numbers for the step: weights (n_in, n_out) and the rest alike."""

    layer: int
    inputs: int
    units: int
    activation: str
    activations: list[list[float | None]] = Field(description="outputs for the shown samples")
    weights: list[list[float | None]] = Field(description="before the update")
    biases: list[float | None]
    weight_gradients: list[list[float | None]] = Field(description="dL/dW over the batch")
    bias_gradients: list[float | None]
    weight_updates: list[list[float | None]] = Field(description="what the step added")
    bias_updates: list[float | None]


class StepResult(BaseModel):
    """One mini-batch trained, every number of it, and the state for the next step."""

    step: int
    epoch: int
    batch_start: int
    batch_size: int
    inputs: list[list[float]] = Field(description="the first samples of the batch, as trained")
    labels: list[int]
    loss: float | None = Field(description="mean cross-entropy of the batch before the update")
    batch_accuracy: float
    test_accuracy: float = Field(description="after the update")
    layers: list[StepLayer]
    state: dict[str, Any]
    decision_boundary: DecisionBoundary | None = None
    classes: list[str] | None = None


@lru_cache(maxsize=1)
def _properties() -> dict[str, Any]:
    return TrainRequest.model_json_schema()["properties"]


def field_spec(name: str) -> dict[str, Any]:
    """How a /train field may be set, read off TrainRequest's own constraints.

    `kind`: choice (with `choices`), integer or number (with `min`/`max`, `min_exclusive` and
    `max_exclusive` when a bound itself is not allowed), or layers (a list of `max_length`
    whole numbers from `min` to `max`); `nullable` when null is a value (batch_size: full batch).
    """
    prop = _properties()[name]
    options = prop.get("anyOf", [prop])
    main = next(option for option in options if option.get("type") != "null")
    spec: dict[str, Any] = {
        "name": name,
        "nullable": any(option.get("type") == "null" for option in options),
    }
    if "enum" in main:
        return {**spec, "kind": "choice", "choices": list(main["enum"])}
    if main.get("type") == "array":
        items = main["items"]
        return {
            **spec,
            "kind": "layers",
            "min": items.get("minimum"),
            "max": items.get("maximum"),
            "max_length": main.get("maxItems"),
        }
    spec["kind"] = "integer" if main.get("type") == "integer" else "number"
    for bound, key in (("min", "minimum"), ("max", "maximum")):
        exclusive = f"exclusive{key.capitalize()}"
        if key in main:
            spec[bound] = main[key]
        elif exclusive in main:
            spec[bound], spec[f"{bound}_exclusive"] = main[exclusive], True
    return spec
