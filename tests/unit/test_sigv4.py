"""Our SigV4 verifier against botocore's signer (the oracle)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cachepoint.auth.sigv4 import ReceivedRequest, Secret, verify
from cachepoint.errors import IncompleteSignatureError, InvalidSignatureError, UnrecognizedClientError

SECRETS = {"AKIDGOOD": Secret("good-secret", "111122223333")}
ARN_PATH = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"


def signed(
    url: str, body: bytes = b'{"a":1}', secret: str = "good-secret", token: str | None = None, method: str = "POST"
) -> ReceivedRequest:
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIDGOOD", secret, token), "bedrock", "us-west-2").add_auth(request)
    parts = urlsplit(url)
    headers = [(k.lower(), v) for k, v in request.headers.items()] + [("host", parts.netloc)]
    return ReceivedRequest(method, parts.path, parts.query, headers, body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8788/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse",
        "http://127.0.0.1:8788" + ARN_PATH,
        "http://localhost/inference-profiles?maxResults=5&type=SYSTEM_DEFINED&nextToken=a%2Fb",
        "http://localhost/model/us.anthropic.claude-3-7-sonnet-20250219-v1:0/invoke",
    ],
)
def test_botocore_signatures_verify(url: str) -> None:
    verified = verify(signed(url), SECRETS.get, time.time())
    assert (verified.access_key, verified.region, verified.account_id) == ("AKIDGOOD", "us-west-2", "111122223333")


def test_session_token_is_signed_like_any_header() -> None:
    request = signed("http://h/model/x.y/converse", token="session-token")
    assert request.header("x-amz-security-token") == "session-token"
    verify(request, SECRETS.get, time.time())


def test_tampering_and_bad_credentials_are_rejected() -> None:
    good = signed("http://h/model/x.y/converse")
    with pytest.raises(InvalidSignatureError, match="does not match"):
        verify(
            ReceivedRequest(good.method, good.raw_path, good.raw_query, good.headers, b'{"a":2}'),
            SECRETS.get,
            time.time(),
        )
    with pytest.raises(InvalidSignatureError):
        verify(
            ReceivedRequest(good.method, "/model/x.z/converse", "", good.headers, good.body), SECRETS.get, time.time()
        )
    with pytest.raises(InvalidSignatureError, match="does not match the signature you provided"):
        verify(signed("http://h/model/x.y/converse", secret="wrong"), SECRETS.get, time.time())
    with pytest.raises(UnrecognizedClientError):
        verify(good, {}.get, time.time())
    with pytest.raises(IncompleteSignatureError):
        verify(
            ReceivedRequest("POST", "/", "", [("authorization", "AWS4-HMAC-SHA256 nonsense")], b""),
            SECRETS.get,
            time.time(),
        )


def test_clock_skew_both_ways() -> None:
    request = signed("http://h/model/x.y/converse")
    with pytest.raises(
        InvalidSignatureError, match=r"^Signature expired: \d{8}T\d{6}Z is now earlier than .* - 5 min\.\)$"
    ):
        verify(request, SECRETS.get, time.time() + 301)
    with pytest.raises(InvalidSignatureError, match=r"^Signature not yet current: .* \+ 5 min\.\)$"):
        verify(request, SECRETS.get, time.time() - 301)
    verify(request, SECRETS.get, time.time() + 200)
