"""A bounded in-memory EventStore, so Streamable HTTP clients can resume a dropped stream.

The SDK ships only the abstract class. Events are kept per stream, oldest dropped first, and
whole streams are forgotten oldest first, so memory stays bounded however long the server runs.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore(EventStore):
    def __init__(self, *, max_events_per_stream: int = 200, max_streams: int = 2_000) -> None:
        self._max_events = max_events_per_stream
        self._max_streams = max_streams
        self._streams: OrderedDict[StreamId, deque[tuple[int, JSONRPCMessage | None]]] = OrderedDict()
        self._stream_of: dict[int, StreamId] = {}
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = next(self._ids)
        events = self._streams.get(stream_id)
        if events is None:
            events = self._streams[stream_id] = deque()
            while len(self._streams) > self._max_streams:
                _, dropped = self._streams.popitem(last=False)
                for old_id, _ in dropped:
                    self._stream_of.pop(old_id, None)
        else:
            self._streams.move_to_end(stream_id)
        if len(events) >= self._max_events:
            old_id, _ = events.popleft()
            self._stream_of.pop(old_id, None)
        events.append((event_id, message))
        self._stream_of[event_id] = stream_id
        return str(event_id)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        try:
            after = int(last_event_id)
        except ValueError:
            return None
        stream_id = self._stream_of.get(after)
        if stream_id is None:
            return None
        for event_id, message in self._streams.get(stream_id, ()):
            if event_id > after and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream_id
