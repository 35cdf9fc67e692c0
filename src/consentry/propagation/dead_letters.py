"""How many dead letters wait: the messages of the dead-letter topic that `consentry dlq replay`
has not replayed yet (after the replay group's committed offsets), for the console's overview.

Read from the broker's watermarks and the replay group's committed offsets: nothing is consumed,
nothing committed. None when the broker does not answer in time (the overview says so).
"""

from __future__ import annotations

from typing import Any

REPLAY_GROUP = "consentry-dlq-replay"  # replay_dead_letters' default group (consumer.py)


def dead_letters_waiting(
    config: dict[str, Any],
    dead_letter_topic: str,
    *,
    group: str = REPLAY_GROUP,
    timeout: float = 2.0,
) -> int | None:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(dead_letter_topic, timeout=timeout)
        topic = metadata.topics.get(dead_letter_topic)
        if topic is None or topic.error is not None or not topic.partitions:
            return 0
        partitions = [TopicPartition(dead_letter_topic, p) for p in sorted(topic.partitions)]
        committed = consumer.committed(partitions, timeout=timeout)
        waiting = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(dead_letter_topic, tp.partition), timeout=timeout
            )
            start = max(tp.offset, low) if tp.offset >= 0 else low
            waiting += max(high - start, 0)
        return waiting
    except KafkaException:
        return None
    finally:
        consumer.close()
