"""Request bodies, as OpenAI's API defines them (fields nichetune does not use are accepted and ignored), plus
``/v1/classify``. The OpenAPI spec the server publishes is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(_Request):
    model: str = Field(min_length=1, max_length=200)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=8)
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> tuple[str, ...]:
        items = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in items if s)[:4]


class Retrieval(BaseModel):
    """Answer from an index the server holds (``--index NAME=DIR``): the last user message is the question."""

    model_config = ConfigDict(extra="forbid")
    index: str = Field(min_length=1, max_length=200)
    k: int = Field(3, ge=1, le=20)


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    retrieval: Retrieval | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for /v1/completions


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1, max_length=200)
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"


SliceValue = str | int | float | bool | None


class ClassifyRequest(_Request):
    model: str = Field(min_length=1, max_length=200)
    input: str | list[str] = Field(description="one text or a batch of texts")
    slices: dict[str, SliceValue] | list[dict[str, SliceValue]] | None = Field(
        None, description="fields monitoring groups by (e.g. condition): one object for all inputs, or one per input")
    user: str | None = Field(None, max_length=200, description="who asks: experiments assign arms by it (sticky)")


class FeedbackRequest(_Request):
    request_id: str = Field(min_length=1, max_length=64, description="the x-request-id of the logged answer")
    index: int = Field(0, ge=0, description="which input of that request")
    label: str | None = Field(None, max_length=200, description="the true label")
    grade: float | None = Field(None, description="or a grade: a rating, a KPI")

    @model_validator(mode="after")
    def _something(self) -> FeedbackRequest:
        if self.label is None and self.grade is None:
            raise ValueError("give a label or a grade")
        return self
