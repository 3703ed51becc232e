"""Bounded state at the connection level, against a real `cachepoint serve` process:

- made-up Regions are refused before anything is recorded (no file, no folder, no descriptor);
- many accounts never hold more than a bounded number of open log files, even under a 200-descriptor limit;
- a stranger's body is never read (refused on its headers, connection closed): 40 connections announcing
  25 MB bodies add no memory;
- a request head trickled byte by byte, and a body that stalls, are cut off by their timeouts.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.process import FAKE_ENGINE, ServerProcess, open_file_limit, serving

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
STRICT = FAKE_ENGINE + """
[limits]
header_timeout_s = 1.0
body_timeout_s = 1.0

[auth]
mode = "strict"
[auth.credentials.AKIDALICE]
secret = "alice-secret"
account = "111111111111"
[auth.tokens]
"sk-bob" = "222222222222"
"""
MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]


def sigv4_header(access_key: str, region: str = "us-east-1") -> dict[str, str]:
    """A well-formed, current SigV4 header (dev mode checks nothing more; strict mode checks the key first)."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    scope = f"Credential={access_key}/{now[:8]}/{region}/bedrock/aws4_request"
    return {"authorization": f"AWS4-HMAC-SHA256 {scope}, SignedHeaders=host;x-amz-date, Signature={'0' * 64}",
            "x-amz-date": now}  # fmt: skip


def runtime(url: str, region: str, key: str = "AKIDCONN") -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=url, region_name=region, aws_access_key_id=key,
                        aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip


def test_made_up_regions_are_refused_and_leave_nothing_behind(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        runtime(server.url, "us-east-1").converse(modelId=SONNET, messages=MESSAGES)  # warm: the real Region's files
        before = server.open_files()
        for i in range(300):
            client = runtime(server.url, f"xx-fake-{i}")
            with pytest.raises(client.exceptions.ClientError) as refused:
                client.converse(modelId=SONNET, messages=MESSAGES)
            error = refused.value.response["Error"]
            assert error["Code"] == "InvalidSignatureException"
            assert error["Message"] == f"Credential should be scoped to a valid region, not 'xx-fake-{i}'. "
        assert server.open_files() <= before + 2
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    logs = server.state_dir / "logs" / "AWSLogs"
    regions = {p.name for p in logs.glob("*/BedrockModelInvocationLogs/*")}
    assert regions == {"us-east-1"}


def test_many_accounts_under_a_200_descriptor_limit_keep_the_server_answering(tmp_path: Path) -> None:
    with serving(tmp_path, preexec=open_file_limit(200)) as server:
        body = {"messages": MESSAGES, "inferenceConfig": {"maxTokens": 2}}
        with httpx.Client(timeout=30) as client:
            for i in range(300):  # dev mode: every access key is its own account, with its own log file
                answer = client.post(f"{server.url}/model/{SONNET}/converse", json=body,
                                     headers=sigv4_header(f"AKIDMANY{i:04d}"))  # fmt: skip
                assert answer.status_code == 200, answer.text
            assert server.open_files() < 120  # the log writer keeps at most 64 hour files open
            assert client.get(f"{server.url}/health").status_code == 200
    assert "Traceback" not in server.stderr()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with serving(tmp_path_factory.mktemp("strict"), STRICT) as server:
        yield server


def raw_request(server: ServerProcess, head: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        (dict, "MissingAuthenticationTokenException"),
        (lambda: sigv4_header("AKIDSTRANGER"), "UnrecognizedClientException"),  # dated when the test runs
        (lambda: {"authorization": "Bearer sk-unknown"}, "UnrecognizedClientException"),
    ],
)
def test_a_strangers_body_is_never_read(
    strict: ServerProcess, credentials: Callable[[], dict[str, str]], code: str
) -> None:
    header = "".join(f"{name}: {value}\r\n" for name, value in credentials().items())
    head = (f"POST /model/{SONNET}/converse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 25000000\r\n{header}\r\n")  # fmt: skip
    for sock in [raw_request(strict, head) for _ in range(40)]:  # answered on the headers alone, then closed
        response = read_all(sock)
        assert response.startswith(b"HTTP/1.1 403"), response[:200]
        assert f"x-amzn-errortype: {code}".lower().encode() in response.lower()
        assert b"connection: close" in response.lower()
        sock.close()
    before = strict.rss_bytes()
    sockets = [raw_request(strict, head) for _ in range(40)]
    for sock in sockets:  # now push body bytes regardless: none of them may land in the server's memory
        try:
            for _ in range(16):
                sock.sendall(b" " * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed before the client finished sending: the point
        sock.close()
    assert strict.rss_bytes() - before < 20 * 2**20
    assert httpx.get(f"{strict.url}/health").status_code == 200


def test_a_trickled_request_head_is_cut_off(strict: ServerProcess) -> None:
    sock = raw_request(strict, f"POST /model/{SONNET}/converse HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    try:
        for _ in range(40):  # a header byte every 100 ms would hold the connection forever without a head timeout
            sock.sendall(b"X")
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert read_all(sock) == b""
    assert time.monotonic() - started < 3.5


def test_a_stalled_body_times_out(strict: ServerProcess) -> None:
    head = (f"POST /model/{SONNET}/converse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\nAuthorization: Bearer sk-bob\r\n\r\n")  # fmt: skip
    sock = raw_request(strict, head)
    sock.sendall(b'{"messages": ')
    started = time.monotonic()
    response = read_all(sock)
    assert response.startswith(b"HTTP/1.1 408"), response[:200]
    assert b'"message":"The request body was not received within 1 seconds."' in response
    assert time.monotonic() - started < 3


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_decoding_processes_die_with_a_killed_server(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        big = {"messages": [{"role": "user", "content": [{"text": "x" * 200_000}]}], "inferenceConfig": {"maxTokens": 1}}
        answer = httpx.post(f"{server.url}/model/{SONNET}/converse", json=big, headers=sigv4_header("AKIDBIG"), timeout=60)
        assert answer.status_code == 400  # too long for the model; decoded in a worker process all the same
        workers = children_of(server.pid)
        assert workers, "a body over 64 KiB is decoded in a worker process"
        server.process.kill()
        server.process.wait()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
