"""One HTTP call to a CAMARA API: token, `x-correlator`, timeout, retries, errors.

- **Token**: OAuth2 client credentials (`httpx_auth.OAuth2ClientCredentials`), fetched
  once and reused until 30 s before it expires, by every thread; a `401` from an API
  drops the cached token and the call is sent once more with a fresh one (a 401 means
  the operator did not act on the call, so even a create may be repeated).
- **`x-correlator`**: a new UUID for every logical call, the same on its retries, and
  kept in every error (`NetworkError.correlator`).
- **Timeouts**: `timeout_s` per read/write, `connect_timeout_s` to connect.
- **Retries** only for idempotent operations (reads, deletes, the `retrieve`
  operations): on a timeout, a refused connection, `5xx` and `429` (honouring
  `Retry-After` up to `MAX_RETRY_AFTER_S`), at most `retries` times with jittered
  exponential back-off: the REST peers' policy (`adapters.rest.retries`). A create or
  an extend is never repeated: a timeout there leaves it unknown whether the operator
  acted, and the error says so.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
from httpx_auth import OAuth2, OAuth2ClientCredentials

from adapters.camara._errors import error_of, transport_error
from adapters.rest.retries import Retries
from pbgm.network import NetworkConfig, NetworkError

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 5
RETRYABLE = frozenset({"network_unavailable", "network_timeout", "network_busy"})


def _retryable(error: BaseException) -> bool:
    if not isinstance(error, NetworkError) or error.code not in RETRYABLE:
        return False
    return error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER_S


def _asked(error: BaseException) -> float | None:
    """The wait the operator asked for (`Retry-After`), carried by its error."""
    if isinstance(error, NetworkError) and error.retry_after is not None:
        return float(error.retry_after)
    return None


class CamaraHttp:
    """The shared HTTP client of one `CamaraNetwork` (thread-safe)."""

    def __init__(self, config: NetworkConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        verify: Any = (
            ssl.create_default_context(cafile=str(config.ca_file))
            if config.ca_file is not None
            else True
        )
        limits = httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        )
        self._token_client = httpx.Client(timeout=timeout, verify=verify, transport=transport)
        self.auth = OAuth2ClientCredentials(
            config.token_url,
            client_id=config.client_id,
            client_secret=config.client_secret(),
            client=self._token_client,
            timeout=max(1, int(config.timeout_s)),
            **({"scope": config.scope} if config.scope else {}),
        )
        self.client = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            auth=self.auth,
            timeout=timeout,
            verify=verify,
            limits=limits,
            transport=transport,
            headers={"Accept": "application/json"},
        )

        self._retries = Retries(config.retries, _retryable, _asked)

    def close(self) -> None:
        self.client.close()
        self._token_client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        ok: Iterable[int] = (200,),
        idempotent: bool,
        assignment: bool = False,
    ) -> httpx.Response:
        """The answer of a successful call (its status in `ok`), else `NetworkError`."""
        correlator = str(uuid.uuid4())
        expected = frozenset(ok)
        return self._retries.run(
            lambda: self._once(method, path, body, expected, correlator, assignment),
            idempotent=idempotent,
        )

    def _once(
        self,
        method: str,
        path: str,
        body: Any,
        ok: frozenset[int],
        correlator: str,
        assignment: bool,
    ) -> httpx.Response:
        response = self._send(method, path, body, correlator)
        if response.status_code == 401:
            OAuth2.token_cache.clear()  # the operator refused the cached token: fetch anew
            response = self._send(method, path, body, correlator)
        if response.status_code in ok:
            return response
        error = error_of(response, correlator, assignment=assignment)
        log.info(
            "CAMARA %s %s answered %s %s [x-correlator %s]",
            method,
            path,
            response.status_code,
            error.details.get("upstream_code"),
            correlator,
        )
        raise error

    def _send(self, method: str, path: str, body: Any, correlator: str) -> httpx.Response:
        headers = {"x-correlator": correlator}
        try:
            return self.client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:  # includes httpx_auth's token errors
            raise transport_error(error, correlator) from None
