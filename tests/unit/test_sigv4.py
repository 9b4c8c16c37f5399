"""The lean transport's SigV4 signer produces botocore's headers, byte for byte."""

from __future__ import annotations

import calendar
import datetime as dt
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from uow._sigv4 import Signer, canonical_host

WHEN = dt.datetime(2026, 12, 3, 13, 45, 7)
BODY = '{"TableName":"users","Key":{"id":{"S":"ü-1"}},"ConsistentRead":true}'.encode()


def botocore_headers(
    url: str, region: str, target: str, body: bytes, credentials: Credentials
) -> dict[str, str]:
    """The headers botocore's SigV4Auth adds to a DynamoDB JSON POST at `WHEN`."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    return {
        name: request.headers[name]
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
        if name in request.headers
    }


class TestSigner:
    """For fixed credentials, time and body, `Signer` equals botocore's `SigV4Auth`."""

    @pytest.mark.parametrize(
        ("url", "region", "token"),
        [
            pytest.param("http://127.0.0.1:8000", "us-east-1", None, id="loopback-static"),
            pytest.param(
                "http://127.0.0.1:8000", "us-east-1", "FwoGZXIvYXdzE//token+/=", id="session-token"
            ),
            pytest.param(
                "https://dynamodb.eu-west-3.amazonaws.com", "eu-west-3", None, id="aws-https"
            ),
            pytest.param(
                "https://dynamodb.eu-west-3.amazonaws.com:443", "eu-west-3", "t", id="default-port"
            ),
            pytest.param("http://LOCALHOST:80/", "ap-south-1", None, id="http-default-port"),
            pytest.param("https://proxy.example:8443/ddb", "us-west-2", "tok", id="path-and-port"),
            pytest.param("http://[::1]:8000", "us-east-1", None, id="ipv6"),
        ],
    )
    @pytest.mark.parametrize("api", ["PutItem", "TransactWriteItems", "Query"])
    def test_headers_equal_botocore(
        self, url: str, region: str, token: str | None, api: str
    ) -> None:
        """Authorization, X-Amz-Date and X-Amz-Security-Token are exactly botocore's."""
        target = f"DynamoDB_20120810.{api}"
        credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
        ours = Signer(url, region).headers(
            target,
            BODY,
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            token=token,
            now=calendar.timegm(WHEN.timetuple()),
        )
        assert ours == botocore_headers(url, region, target, BODY, credentials)

    def test_an_empty_body_and_another_day(self) -> None:
        """The cached signing key follows the date: a second day signs as botocore does."""
        signer = Signer("http://127.0.0.1:9", "us-east-1")
        credentials = Credentials("AKID", "secret")
        for day in (WHEN, WHEN + dt.timedelta(days=1), WHEN):
            ours = signer.headers(
                "DynamoDB_20120810.Scan",
                b"",
                access_key="AKID",
                secret_key="secret",
                token=None,
                now=calendar.timegm(day.timetuple()),
            )
            with mock.patch("botocore.auth.get_current_datetime", return_value=day):
                request = AWSRequest(
                    method="POST",
                    url="http://127.0.0.1:9",
                    data=b"",
                    headers={
                        "Content-Type": "application/x-amz-json-1.0",
                        "X-Amz-Target": "DynamoDB_20120810.Scan",
                    },
                )
                SigV4Auth(credentials, "dynamodb", "us-east-1").add_auth(request)
            assert ours["Authorization"] == request.headers["Authorization"]

    def test_a_changed_body_changes_the_signature(self) -> None:
        """The signature covers the body: one byte more, another signature."""
        signer = Signer("http://127.0.0.1:9", "us-east-1")
        common = {"access_key": "AKID", "secret_key": "secret", "token": None, "now": 0.0}
        first = signer.headers("DynamoDB_20120810.GetItem", b"{}", **common)  # type: ignore[arg-type]  # the kwargs above
        second = signer.headers("DynamoDB_20120810.GetItem", b"{} ", **common)  # type: ignore[arg-type]  # the kwargs above
        assert first["Authorization"] != second["Authorization"]

    @pytest.mark.parametrize(
        ("url", "host"),
        [
            pytest.param("http://127.0.0.1:8000", "127.0.0.1:8000", id="port-kept"),
            pytest.param(
                "https://Dynamodb.US-East-1.amazonaws.com:443",
                "dynamodb.us-east-1.amazonaws.com",
                id="default-port-dropped",
            ),
            pytest.param("https://user:pw@example.com", "example.com", id="userinfo-dropped"),
        ],
    )
    def test_canonical_host(self, url: str, host: str) -> None:
        """The signed host is lowercase, without a default port or user info."""
        assert canonical_host(url) == host
