"""What a Pipeline's notification targets can ask to hear about."""

from __future__ import annotations

import enum


class NotificationEvent(enum.StrEnum):
    """A run's transitions that send notifications (the state-machine table names them)."""

    RUN_SUCCEEDED = "RunSucceeded"
    RUN_FAILED = "RunFailed"
    AWAITING_REVIEW = "AwaitingReview"
    REVIEW_PASSED = "ReviewPassed"
    REVIEW_FAILED = "ReviewFailed"
    PUBLISH_FAILED = "PublishFailed"
