"""Classes of failed requests and bad answers: what an httpx exception says about whether a request reached the
server, the words that explain each class once to the user, and the answers that stop a whole run."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Mapping

import httpx

from stressor.http.wire import HEAD_TOO_LARGE
from stressor.limits import TransportFailure

# What each class of bad answer means, for the one line logged the first time it happens.
ANOMALIES: Mapping[str, str] = {
    "bad_response": "answered a body that is not JSON, or not decodable",
    "bad_shape": "answered JSON of an unexpected shape",
    "missing_field": "answered an object without a field the API documents; the field reads as null",
    "bad_field": "answered a field of the wrong type; the field reads as null",
    "unknown_status": "answered a status the API does not define; such runs are still followed",
    "run_ids_changed": "answered run_ids that differ from the batch's own; only its counters are used",
    "unknown_batch": "answered 404 for a batch stressor created; its runs are looked for in the run list instead",
    "unknown_run": "left out of its run list, 3 scans in a row, a run it created; it is counted unknown",
    "too_large": "answered a body (or a head) over the size limit; it was not used",
    "cut_off": "sent an answer whose body was cut off before its end",
    "timeout": "gave no complete answer within the request timeout",
    "reset": "reset the connection",
    "protocol": "closed the connection without a complete answer, or answered something that is not HTTP",
    "write": "closed the connection while the request was being sent",
    "connect": "could not be connected to (refused or unreachable)",
    "dns": "could not be found: its host name did not resolve (DNS)",
    "tls": "failed the TLS handshake, or its certificate was not accepted",
    "invalid_url": "could not be asked: the URL is not valid",
}
# Answers that mean no later request can succeed either: the run stops and says why.
FATAL_STATUSES = {
    400: "the server refused the run request as invalid",
    401: "the API key was refused (401 Unauthorized); check THUNDERPHONE_API_KEY",
    402: "the org's balance is at zero (402 Payment Required)",
    403: "the API key may not create test calls for this target (403 Forbidden)",
    404: "the endpoint does not exist (404); check the base URL",
}


def transport_failure(exc: httpx.TransportError) -> TransportFailure:
    """What an httpx exception says about whether the request reached the server."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"  # no connection was ever given to this request: nothing was sent
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.ProxyError):
        return "connect_error"
    if isinstance(exc, httpx.TimeoutException):
        return "read_timeout"
    if isinstance(exc, httpx.WriteError):
        return "write_error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "remote_protocol"
    return "reset"  # ReadError and the rest: the connection broke after the request may have gone


_CUT_OFF_WORDS = ("complete message body", "payload is not completed")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it was raised from (or while handling), innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def body_cut_off(exc: httpx.TransportError) -> bool:
    """Whether the answer's head arrived and its body ended early (httpx: "peer closed connection without
    sending complete message body"; over aiohttp: "Response payload is not completed")."""
    if not isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return False
    return any(word in str(cause) for cause in _causes(exc) for word in _CUT_OFF_WORDS)


def failure_label(exc: httpx.TransportError) -> str | None:
    """The class a transport failure is counted under when it is more precise than the governor's cause:
    ``cut_off`` (the body ended early), ``dns`` (the name did not resolve), ``tls`` (the handshake or the
    certificate failed); None for the rest."""
    if body_cut_off(exc):
        return "cut_off"
    if isinstance(exc, httpx.RemoteProtocolError) and HEAD_TOO_LARGE in str(exc):
        return "too_large"  # an answer head over WireTransport's limit: dropped, not read to the deadline
    if isinstance(exc, httpx.ConnectError):
        for cause in _causes(exc):
            if isinstance(cause, socket.gaierror):
                return "dns"
            if isinstance(cause, ssl.SSLError):
                return "tls"
    return None


def why_unreachable(exc: BaseException | None, timeout_s: float) -> str:
    """The reason a target could not be reached, in words a user can act on (no trailing period)."""
    if exc is None or isinstance(exc, httpx.TimeoutException):
        return f"no complete answer within the request timeout ({timeout_s:g} s)"
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"its host name does not resolve (DNS: {cause.strerror or cause})"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"its TLS certificate was not accepted ({cause.verify_message or cause.reason or cause})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or cause}); does this port speak HTTPS?"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused (is anything listening on that port?)"
    return str(exc) or type(exc).__name__
