"""AWS Signature Version 4 for DynamoDB's JSON POSTs, the lean transport's signer.

The same algorithm as botocore's `SigV4Auth` (tests/unit/test_sigv4.py proves
the headers equal for fixed credentials, time and body), specialised for the
one request shape the lean transport sends: `POST` to the endpoint's path, no
query string, and a fixed set of signed headers. It skips what makes
botocore's signer cost ~100 µs per request: the `AWSRequest` object, header
maps, URL re-parsing, and the four HMACs deriving the signing key, which
change once a day per secret and region and are cached here.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlsplit

__all__ = ["Signer", "canonical_host"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_host(url: str) -> str:
    """The `Host` header botocore signs for `url`: lowercase, default port dropped, no userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class Signer:
    """Signs DynamoDB JSON requests for one endpoint, region and service.

    Args:
        url: the endpoint URL the requests are POSTed to.
        region: the signing region.
        service: the signing name (`dynamodb`).
    """

    def __init__(self, url: str, region: str, service: str = "dynamodb") -> None:
        self.host = canonical_host(url)
        self.region = region
        self.service = service
        # botocore normalises the path the same way (`SigV4Auth._normalize_url_path`).
        path = urlsplit(url).path or "/"
        self.path = quote(path, safe="/~")
        self._keys: dict[tuple[str, str], bytes] = {}

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._keys.get((secret, day))
        if cached is None:
            key = hmac.digest(f"AWS4{secret}".encode(), day.encode(), "sha256")
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            if len(self._keys) > 8:  # rotating credentials: keep the cache small
                self._keys.clear()
            self._keys[(secret, day)] = cached = key
        return cached

    def headers(
        self,
        target: str,
        body: bytes,
        *,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: float | None = None,
    ) -> dict[str, str]:
        """The headers of a signed request: `X-Amz-Date`, the token if any, `Authorization`.

        Signed headers are `content-type` (always `application/x-amz-json-1.0`),
        `host`, `x-amz-date`, `x-amz-security-token` (with session
        credentials) and `x-amz-target`; the caller sends exactly these
        (plus unsigned ones such as `User-Agent`).

        Args:
            target: the `X-Amz-Target` value, e.g. `DynamoDB_20120810.PutItem`.
            body: the exact bytes sent.
            access_key, secret_key, token: frozen credentials.
            now: the signing time (seconds since the epoch); default the clock.
        """
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = stamp[:8]
        if token:
            canonical_headers = (
                "content-type:application/x-amz-json-1.0\n"
                f"host:{self.host}\nx-amz-date:{stamp}\n"
                f"x-amz-security-token:{' '.join(token.split())}\n"
                f"x-amz-target:{target}\n"
            )
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            canonical_headers = (
                "content-type:application/x-amz-json-1.0\n"
                f"host:{self.host}\nx-amz-date:{stamp}\nx-amz-target:{target}\n"
            )
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical = (
            f"POST\n{self.path}\n\n{canonical_headers}\n{signed}\n"
            + hashlib.sha256(body).hexdigest()
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = (
            f"{_ALGORITHM}\n{stamp}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
        )
        signature = hmac.new(
            self._signing_key(secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "X-Amz-Date": stamp,
            "Authorization": (
                f"{_ALGORITHM} Credential={access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers
