"""`BatchingHandler`: every record is written, in order, redacted, and nothing queued is lost at close."""

from __future__ import annotations

import io
import json
import logging
import threading

from mcp_gateway.observability.logs import BatchingHandler, json_log_handler, request_id
from mcp_gateway.security import Redactor


class _Stream(io.StringIO):
    """Counts writes, so a test can tell lines were batched."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.written = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        count = super().write(text)
        self.written.set()
        return count


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_every_line_in_order_across_threads_and_flushed_at_close() -> None:
    stream = _Stream()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(logging.Formatter("%(threadName)s %(message)s"))
    handler = BatchingHandler(writer, linger=0.05, max_batch=7)
    log = _logger(handler, "test.batching.order")

    def emit(prefix: str) -> None:
        for i in range(500):
            log.info("%s %d", prefix, i)

    threads = [threading.Thread(target=emit, args=(f"t{n}",), name=f"t{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.close()  # no wait for the linger: close writes what is queued
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2000
    for n in range(4):  # each thread's lines appear in the order it logged them
        mine = [line.split()[-1] for line in lines if line.startswith(f"t{n} ")]
        assert mine == [str(i) for i in range(500)]
    assert stream.writes < 2000  # batched: fewer writes than lines (a batch holds at most 7)


def test_a_batch_is_written_without_close_and_later_records_still_go_out() -> None:
    stream = _Stream()
    writer = logging.StreamHandler(stream)
    handler = BatchingHandler(writer, linger=0.001)
    log = _logger(handler, "test.batching.wake")
    log.info("first")
    assert stream.written.wait(10), "the writer thread never wrote the first record"
    handler.close()
    log.info("after close")  # written at once, on this thread
    assert stream.getvalue().splitlines() == ["first", "after close"]
    handler.close()  # idempotent


def test_json_lines_are_redacted_on_the_writer_thread() -> None:
    stream = _Stream()
    handler = BatchingHandler(json_log_handler(stream, redactor=Redactor(["hunter2-secret"])))
    log = _logger(handler, "test.batching.redact")
    log.info("key %s", "hunter2-secret", extra={"detail": {"password": "pw-1234", "note": "Bearer abc.def"}})
    handler.close()
    text = stream.getvalue()
    assert "hunter2-secret" not in text and "pw-1234" not in text and "abc.def" not in text
    assert '"message":"key [REDACTED]"' in text and text.count("\n") == 1


def test_json_lines_carry_the_request_id_of_the_thread_that_logged() -> None:
    """The id lives in a context variable of the logging thread, not of the writer thread."""
    stream = _Stream()
    handler = BatchingHandler(json_log_handler(stream))
    log = _logger(handler, "test.batching.request_id")
    with request_id("req-42"):
        log.info("inside")
    log.info("outside")
    handler.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["message"], r["request_id"]) for r in lines] == [("inside", "req-42"), ("outside", None)]
