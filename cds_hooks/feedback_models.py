"""Pydantic models of the CDS Hooks 2.0 feedback request body, with bounds on everything we store.

The spec sets no limits; these are generous for a clinician's click and a short comment and keep one
call from filling the database (before them, 42,000 items and a 5 MB comment were stored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_FEEDBACK_ITEMS = 100  # per call; more is answered 413
MAX_ID_CHARS = 128  # card and suggestion uuids are 36
MAX_SUGGESTIONS = 50
MAX_COMMENT_CHARS = 2000
MAX_CODE_CHARS = 256
MAX_URI_CHARS = 1024


class FeedbackCoding(BaseModel):
    """The override reason's Coding (a bounded copy of the card model's, which checks our own output).
    Stored as sent, so no extra members."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=MAX_CODE_CHARS)
    system: str = Field(min_length=1, max_length=MAX_URI_CHARS)
    display: str | None = Field(None, max_length=MAX_URI_CHARS)


class AcceptedSuggestion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)


class OverrideReasonFeedback(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: FeedbackCoding | None = None
    userComment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    card: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(None, max_length=MAX_SUGGESTIONS)
    overrideReason: OverrideReasonFeedback | None = None
    outcomeTimestamp: datetime

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackItem:
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason is only valid with outcome 'overridden'")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is only valid with outcome 'accepted'")
        if self.outcomeTimestamp.tzinfo is None:
            raise ValueError("outcomeTimestamp must carry a timezone (ISO 8601 instant)")
        return self


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    feedback: list[FeedbackItem] = Field(min_length=1)
