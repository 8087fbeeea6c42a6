"""The kombu adapter of :mod:`shared.broker_recovery`, on a real Redis.

A message received on a channel whose connection was then closed (what Celery does on a
broker connection loss while tasks still run) is acknowledged when its task finishes.
With kombu's own Redis transport that raises ``AttributeError`` from ``_connparams``,
which Celery treats as unrecoverable; with the adapter the acknowledgement is left to
redelivery and the message is back on its queue.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from kombu import Connection, Queue

from shared import broker_recovery
from shared.celery_app import create_app

STOCK = "kombu.transport.redis:Transport"


def _received_then_closed(url: str, transport: str) -> tuple[Connection, Queue, object]:
    """Publish one message, receive it unacknowledged, then close its connection the way
    Celery's consumer does after a connection loss (``collect`` then ``close``), after
    the channel's unacked messages were restored once (kombu's ``Finalize`` hook)."""
    connection = Connection(url, transport=transport)
    queue = Queue(f"recovery-{uuid.uuid4().hex[:8]}")
    with connection.Producer() as producer:
        producer.publish({"step": 1}, routing_key=queue.name, declare=[queue],
                         serializer="json")
    channel = connection.default_channel
    message = queue(channel).get(no_ack=False)
    assert message is not None
    channel.qos.restore_unacked_once()
    connection.collect()
    connection.close()
    return connection, queue, message


def test_stock_kombu_still_crashes_on_a_late_ack(services: dict[str, str]) -> None:
    """When this fails, kombu fixed the bug: remove shared/broker_recovery.py."""
    _, _, message = _received_then_closed(services["REDIS_URL"], STOCK)
    with pytest.raises(AttributeError):
        message.ack()


@pytest.mark.parametrize("settle", ["ack", "reject", "requeue"])
def test_a_late_ack_or_reject_leaves_the_message_to_redelivery(
        services: dict[str, str], settle: str) -> None:
    url = services["REDIS_URL"]
    _, queue, message = _received_then_closed(url, broker_recovery.TRANSPORT)
    if settle == "ack":
        message.ack()
    else:
        message.reject(requeue=settle == "requeue")
    # The message is back on its queue exactly once, and can be received and acked on a
    # fresh connection.
    with Connection(url, transport=broker_recovery.TRANSPORT) as fresh:
        again = queue(fresh.default_channel).get(no_ack=False)
        assert again is not None and again.payload == {"step": 1}
        again.ack()
        assert queue(fresh.default_channel).get(no_ack=False) is None
    redis.Redis.from_url(url).delete(queue.name)


def test_a_released_channel_raises_a_connection_error(services: dict[str, str]) -> None:
    connection = Connection(services["REDIS_URL"], transport=broker_recovery.TRANSPORT)
    channel = connection.default_channel
    connection.collect()
    with pytest.raises(redis.exceptions.ConnectionError):
        channel._connparams()


def test_the_app_installs_the_adapter_for_redis_urls() -> None:
    create_app()
    for url in ("redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6379/0"):
        connection = Connection(url)
        assert isinstance(connection.transport, broker_recovery.Transport)
        assert connection.as_uri().startswith(url.split(":")[0] + "://")
