"""Request and response bodies, for the OpenAPI page (validation itself is in ``validation``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Value = float | int | str | bool | None


class PredictRequest(BaseModel):
    instances: list[dict[str, Value]] = Field(..., min_length=1, description="One object per instance: feature → value.",
                                              examples=[[{"salary": 52000.0, "commission": 20000.0, "age": 35,
                                                          "elevel": "level_2", "car": "make_4", "zipcode": "zip_3",
                                                          "hvalue": 300000.0, "hyears": 10, "loan": 150000.0}]])


class ModelRef(BaseModel):
    name: str
    version: str


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(None, description="Classifiers: one row per instance, columns in `classes` order.")
    classes: list[Any] | None = None
    request_ids: list[str] = Field(..., description="One fresh id per instance; send it back with /feedback.")
    model: ModelRef


class Label(BaseModel):
    request_id: str
    label: float | int | str | bool


class FeedbackRequest(BaseModel):
    labels: list[Label] = Field(..., min_length=1)


class FeedbackResponse(BaseModel):
    accepted: int
    unknown: list[str] = Field(..., description="Request ids the store does not know.")
    conflicts: list[str] = Field(..., description="Ids whose new label disagrees with an earlier one (both kept).")


class ProblemOut(BaseModel):
    loc: str
    reason: str
    message: str


class ErrorResponse(BaseModel):
    error: str
    detail: str
    problems: list[ProblemOut] = []


def body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that the handler parses itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema(
        ref_template="#/components/schemas/{model}")}}}}
