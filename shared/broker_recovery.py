"""Keep a busy worker alive when its Redis connection drops: a small kombu adapter.

The upstream bug (kombu 5.7.0 with celery 5.7.0; the same class of failure as kombu
#582, celery #4652 and celery #9250). When the broker connection is lost, Celery's
consumer closes it (``Consumer.on_connection_error_after_connected`` calls
``Connection.collect()`` then ``close()``): each Redis channel disconnects its
connection pools (``Channel._disconnect_pools``), re-queues the messages it still holds
(``Restoring N unacknowledged message(s)``) and the transport is detached from its
client (``Connection._do_close_transport`` sets ``Transport.client = None``). Tasks
still running in the pool keep their ``Message`` objects, bound to that closed channel.
When one finishes, Celery acknowledges it from the event loop (``hub.call_soon``, run
by the loop or by ``Hub.close``): ``Message.ack`` -> ``QoS.ack`` ->
``QoS._remove_from_indices`` -> ``Channel.conn_or_acquire`` -> ``_create_client`` ->
``Channel.pool`` -> ``_get_pool`` -> ``_connparams``, whose first line reads
``self.connection.client.hostname``: ``AttributeError`` on ``None`` (or on the channel's
``connection`` itself, ``None`` once the transport forgot the channel). An
``AttributeError`` is not one of the transport's ``connection_errors``, so
``Message.ack_log_error`` does not catch it, the consumer does not treat it as a
connection loss to retry, and ``WorkController.start`` logs ``Unrecoverable error`` and
stops the worker.

What this module changes, and why it is safe:

* ``QoS.ack`` and ``QoS.reject`` on a channel that is closed, or whose transport was
  released, do not touch Redis; they drop the local bookkeeping and log it. The message
  is not lost: closing the channel put it back on its queue, or, if Redis was down then,
  Redis redelivers it after the visibility timeout (or it went with a Redis restarted
  empty, and the reconciler re-publishes the step from Postgres). Acknowledging it late
  would be worse than useless: a restored message keeps its delivery tag, so a late
  ``ZREM``/``HDEL`` would delete the unacked record of its redelivered copy on another
  worker. A second delivery of a step is a no-op (see docs/reliability.md).
* ``Channel._connparams`` on a released transport raises ``redis.ConnectionError``,
  which the transport lists among its ``connection_errors``, instead of
  ``AttributeError``: any other call that reaches it after a connection loss is then
  handled by Celery as the connection loss it is (retried), not as a crash.

:func:`install`, called by :func:`shared.celery_app.create_app`, makes kombu resolve
the ``redis`` and ``rediss`` URL schemes to :class:`Transport`, so URLs, logs and Flower
(which picks its broker client by URL scheme) still say ``redis://``; nothing else in
kombu is changed. Applies to kombu 5.7.0 with celery 5.7.0. To remove it, once a kombu
release handles an acknowledgement on a closed Redis channel (the canary
``test_stock_kombu_still_crashes_on_a_late_ack`` in ``tests/test_broker_recovery.py``
then fails, and the fault suite's Redis scenarios keep the same worker PIDs without it),
delete this module and the ``install()`` call.
"""

from __future__ import annotations

import logging

import redis
from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger(__name__)


def _released(channel: kombu_redis.Channel) -> bool:
    """True when ``channel`` can no longer reach Redis: it is closed, or its transport
    was released (kombu sets ``Transport.client`` to None when a connection closes)."""
    transport = channel.connection
    return channel.closed or transport is None or transport.client is None


class QoS(kombu_redis.QoS):
    """Redis ack emulation that leaves messages of a closed channel to redelivery."""

    def ack(self, delivery_tag: str) -> None:
        """Acknowledge ``delivery_tag``; on a closed channel only forget it locally."""
        if _released(self.channel):
            log.warning("message %s not acknowledged: the broker connection it came on "
                        "is closed; Redis delivers it again and the step's lease makes "
                        "that a no-op", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Reject ``delivery_tag``; on a closed channel only forget it locally (the
        message is already back on its queue or comes back after the visibility
        timeout, which is what ``requeue`` asks for)."""
        if _released(self.channel):
            log.warning("message %s not rejected: the broker connection it came on is "
                        "closed; Redis delivers it again", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue=requeue)


class Channel(kombu_redis.Channel):
    """kombu's Redis channel with :class:`QoS` and a connection error, not an
    ``AttributeError``, once its transport is released."""

    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> dict:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError(
                "the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    """kombu's Redis transport using :class:`Channel`."""

    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
"""kombu's name for :class:`Transport`."""
SCHEMES = ("redis", "rediss")


def install() -> None:
    """Make kombu resolve ``redis://`` and ``rediss://`` URLs to :class:`Transport`.

    Idempotent; opens no connection. Transports kombu already resolved for these schemes
    are forgotten, so connections made afterwards use the adapter.
    """
    for scheme in SCHEMES:
        kombu_transport.TRANSPORT_ALIASES[scheme] = TRANSPORT
        kombu_transport._transport_cache.pop(scheme, None)
