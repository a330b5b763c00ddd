"""Kafka topics: one per producing service, one dead-letter topic per consuming group."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Every topic Fangpin reads or writes."""

    INTAKE_EVENTS = "intake.events"
    SCREENING_EVENTS = "screening.events"
    CASEWORK_EVENTS = "casework.events"
    INTAKE_DLQ = "intake.dlq"
    SCREENING_DLQ = "screening.dlq"
    CASEWORK_DLQ = "casework.dlq"
    # Screening's second group, which reads casework.events (inclusions) back.
    SCREENING_OUTCOMES_DLQ = "screening-outcomes.dlq"


def dead_letter_topic(group: str) -> str:
    """Return the dead-letter topic of a consumer group."""
    return f"{group}.dlq"
