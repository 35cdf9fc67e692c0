"""What the relay needs from a message broker: publish a batch, and say exactly what was stored.

The relay saves its position only after the broker acknowledged every message of a round, so the
protocol returns only when each message has a delivery report (or raises, saying which ones made
it). Kafka implements it (kafka.py); another broker would implement the same two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable


class Message(NamedTuple):
    """One message to publish (a tuple: the relay makes thousands a second)."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker stored a message: its partition and offset."""

    partition: int
    offset: int


@dataclass
class PublishError(RuntimeError):
    """Not every message of a batch was acknowledged.

    `delivered[i]` is the delivery of message i, or None if it was not acknowledged; the relay
    keeps the acknowledged prefix and publishes the rest again (duplicates are allowed, losses
    are not).
    """

    reason: str
    delivered: list[Delivery | None] = field(default_factory=list)

    def __str__(self) -> str:
        done = sum(d is not None for d in self.delivered)
        return f"{self.reason} ({done} of {len(self.delivered)} messages acknowledged)"


class PendingBatch(Protocol):
    """A batch handed to the broker whose delivery reports are still to come."""

    def wait(self) -> list[Delivery]:
        """The deliveries in message order once all are acknowledged, or PublishError."""
        ...


@runtime_checkable
class PipelinedPublisher(Protocol):
    """A publisher that can have a batch in flight while the next one is prepared."""

    def send(self, messages: Sequence[Message]) -> PendingBatch:
        """Start publishing and return at once."""
        ...


class Publisher(Protocol):
    """A broker connection that publishes batches with delivery reports.

    Publishing must not reorder messages of one key (Kafka: the idempotent producer), and must
    return only once every message is acknowledged by the broker's durability rule (acks=all),
    because the relay treats a returned batch as safe to forget.
    """

    def publish(self, messages: Sequence[Message]) -> list[Delivery]:
        """Publish and wait; the deliveries in message order, or PublishError."""
        ...

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """The end offset (next offset) of each partition; a missing topic gives {}.

        The relay asks after a failure, to find out whether the broker lost messages it had
        acknowledged (a partition now shorter than what was delivered to it).
        """
        ...

    def close(self) -> None:
        """Release the connection; messages not yet acknowledged are abandoned."""
        ...
