"""What the local service accepts: its request bodies as pydantic models, checked before any handler runs.

Scope: the fields of OpenAI's requests that this service uses, with OpenAI's ranges (``temperature``
0 to 2, a positive ``max_tokens``, the roles of a chat). A field OpenAI has and this service does not
use (``n``, ``tools``, ``response_format``...) is accepted and ignored, as before; a field it uses with
a wrong type or out of range is refused with a 400 that names it (``app.py`` turns pydantic's
``RequestValidationError`` into OpenAI's error shape). Values are parsed in pydantic's lax mode, as
JSON clients expect: ``"0.5"`` is a temperature, ``"hot"`` is not.

>>> ChatRequest.model_validate({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).max_new_tokens()
256
>>> ChatRequest.model_validate({"messages": [{"role": "alien", "content": "hi"}]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ChatRequest
...
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: The most tokens a reply may ask for (the local model's context is 8,192 tokens).
MAX_REPLY_TOKENS = 4096


class _Request(BaseModel):
    """OpenAI's request bodies carry many optional fields: the ones this service does not use are ignored."""

    model_config = ConfigDict(extra="ignore")


class TextPart(_Request):
    """One part of a message's content given as a list (only text parts: the local model reads text)."""

    type: Literal["text"]
    text: str


class Message(_Request):
    """One chat message: its role and its text (a string, a list of text parts, or nothing)."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(_Request):
    include_usage: bool = False


class ChatRequest(_Request):
    """``POST /v1/chat/completions`` (and Azure's deployments' chat completions)."""

    model: str = ""
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_REPLY_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_REPLY_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = None
    stop: str | list[str] | None = Field(None)
    stream: bool = False
    stream_options: StreamOptions | None = None

    def max_new_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or 256

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def conversation(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


Auto = Literal["auto"]


class Hyperparameters(_Request):
    """A job's hyperparameters: "auto" (the service sizes it for a small CPU) or a value in OpenAI's range."""

    n_epochs: Auto | int = Field("auto", union_mode="left_to_right")
    batch_size: Auto | int = Field("auto", union_mode="left_to_right")
    learning_rate_multiplier: Auto | float = Field("auto", union_mode="left_to_right")

    @field_validator("n_epochs", "batch_size", "learning_rate_multiplier", mode="wrap")
    @classmethod
    def _in_range(cls, value: Any, handler: Any, info: Any) -> Any:
        low, high = RANGES[info.field_name]
        try:
            value = handler(value)
        except ValidationError:
            value = None
        if value != "auto" and not (isinstance(value, (int, float)) and low <= value <= high):
            raise ValueError(f"{info.field_name} must be 'auto' or a number from {low:g} to {high:g}")
        return value


#: The values a hyperparameter may take besides "auto" (OpenAI's ranges).
RANGES = {"n_epochs": (1, 50), "batch_size": (1, 256), "learning_rate_multiplier": (1e-6, 100)}


class Supervised(_Request):
    hyperparameters: Hyperparameters = Hyperparameters()


class Method(_Request):
    type: Literal["supervised"] = "supervised"
    supervised: Supervised = Supervised()


class JobRequest(_Request):
    """``POST /v1/fine_tuning/jobs``: the base model, the uploaded files and the optional settings."""

    model: str
    training_file: str = Field(min_length=1)
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = None
    metadata: dict[str, str] | None = None

    def settings(self) -> dict[str, Any]:
        """The hyperparameters, from ``hyperparameters`` or else ``method.supervised``, "auto" where not given."""
        chosen = self.hyperparameters or (self.method.supervised.hyperparameters if self.method else Hyperparameters())
        return chosen.model_dump()


class GenerateRequest(_Request):
    """``POST /v1/lessonlib/generate``: lessonlib's own generation for a notebook kernel of this machine."""

    kind: Literal["one", "many"]
    conversations: list[list[dict[str, Any]]] = Field(min_length=1)
    model: str | None = None
    adapter: str | None = None
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_REPLY_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = None
    batch_size: int | None = Field(None, ge=1, le=256)

    def options(self) -> dict[str, Any]:
        """The options given (and allowed for its kind), as keyword arguments of lessonlib's generation."""
        allowed = {"model", "adapter", "max_new_tokens"} | ({"temperature", "seed"} if self.kind == "one" else {"batch_size"})
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k in allowed}


class PlotRequest(_Request):
    """``POST /v1/lessonlib/plot``: a chart's kind and data (:class:`lessonlib.plots.Chart`)."""

    kind: str
    data: dict[str, Any]


class DeployedModel(BaseModel):
    """The model a deployment serves (Azure's ``properties.model``: ``name``, and ``format`` and ``version`` kept as given)."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None


class DeploymentProperties(_Request):
    model: DeployedModel | None = None


class DeploymentRequest(_Request):
    """``PUT …/deployments/{name}`` (Azure Resource Manager): the model to deploy and its SKU."""

    properties: DeploymentProperties | None = None
    sku: dict[str, Any] | None = None

    def model_name(self) -> str | None:
        return self.properties.model.name if self.properties and self.properties.model else None
