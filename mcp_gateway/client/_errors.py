"""Errors of the client library: one flat set instead of the SDK's nested exception groups."""

from __future__ import annotations

from .._errors import ClientError

__all__ = ["ClientError", "ClientTimeoutError", "ConnectError", "HttpStatusError", "RemoteError"]


class ConnectError(ClientError):
    """The server could not be started or reached, or the connection dropped."""


class HttpStatusError(ConnectError):
    """An HTTP server refused the request with an error status (401, 403, 404, ...)."""

    def __init__(self, status: int, reason: str, url: str) -> None:
        self.status = status
        self.reason = reason
        self.url = url
        super().__init__(f"{status} {reason} from {url}")


class RemoteError(ClientError):
    """The server answered a request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{message} (error {code})")


class ClientTimeoutError(ClientError):
    """The server did not answer in time."""
