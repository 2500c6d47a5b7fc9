"""Pydantic models of the CDS Hooks 2.0 response, following the spec's Card section to the letter."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_Strict):
    code: str = Field(min_length=1)
    system: str = Field(min_length=1)
    display: str | None = None


class OverrideReason(Coding):
    display: str = Field(min_length=1)  # the spec requires a display for override reasons


class Source(_Strict):
    label: str = Field(min_length=1)
    url: AbsoluteUrl | None = None
    icon: AbsoluteUrl | None = None
    topic: Coding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _shape_per_type(self) -> Action:
        if self.type == "delete":
            if not self.resourceId:
                raise ValueError("a delete action needs resourceId")
            if self.resource is not None:
                raise ValueError("a delete action names the resource with resourceId, not resource")
        elif not isinstance(self.resource, dict) or "resourceType" not in self.resource:
            raise ValueError(f"a {self.type} action needs the complete FHIR resource")
        return self


class Suggestion(_Strict):
    label: str = Field(min_length=1)
    uuid: str = Field(min_length=1)
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Strict):
    label: str = Field(min_length=1)
    url: AbsoluteUrl  # smart links too: the spec's SMART launch URL is absolute
    type: Literal["absolute", "smart"]
    appContext: str | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only valid for smart links")
        return self


class Card(_Strict):
    uuid: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=139)  # spec: "<140 characters"
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _selection_behavior_with_suggestions(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        if (
            self.selectionBehavior == "at-most-one"
            and self.suggestions
            and sum(1 for s in self.suggestions if s.isRecommended) > 1
        ):
            raise ValueError("at most one suggestion may be recommended with selectionBehavior at-most-one")
        return self
