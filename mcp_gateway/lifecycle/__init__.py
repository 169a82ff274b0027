"""A prompt tool's life after it is written: tests, record/replay, compatibility gates, disposal."""

from ._recording import RecordingProvider, ReplayEnviron, ReplayingProvider, request_key
from ._runner import TestOutcome, run_tests, select_versions, untested

__all__ = [
    "RecordingProvider",
    "ReplayEnviron",
    "ReplayingProvider",
    "TestOutcome",
    "request_key",
    "run_tests",
    "select_versions",
    "untested",
]
