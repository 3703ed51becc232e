"""The vLLM engine's failure path, on the session's managed vLLM process: killed mid-stream, the client
gets a clean stream exception frame, cachepoint restarts vLLM, and a later request succeeds."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from botocore.exceptions import EventStreamError

from cachepoint.engine.vllm import VllmBackend
from tests.e2e.conftest import clients_of
from tests.live import LiveServer

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
LONG = [{"role": "user", "content": [{"text": "Count from one to five hundred in words, one number per line."}]}]


def backend_of(server: LiveServer) -> VllmBackend:
    backend = server.services.inference.pools["default"].backend
    assert isinstance(backend, VllmBackend) and backend.process is not None
    return backend


def test_a_killed_vllm_gives_a_stream_exception_frame_and_comes_back(vllm_live: LiveServer) -> None:
    backend = backend_of(vllm_live)
    process = backend.process
    assert process is not None
    runtime: Any = clients_of(vllm_live)()
    stream = runtime.converse_stream(modelId=SONNET, messages=LONG, inferenceConfig={"maxTokens": 3000})["stream"]
    events = iter(stream)
    seen = [next(events) for _ in range(3)]  # messageStart and the first text: vLLM is generating
    assert "messageStart" in seen[0]
    killed = process.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    with pytest.raises(EventStreamError) as failure:
        for _ in events:
            pass
    assert failure.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert failure.value.response["Error"]["Message"] == "The model failed to process the request."
    deadline = time.monotonic() + 300
    while not (process.ready.is_set() and process.pid != killed) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process.pid != killed and process.ready.is_set() and process.num_restarts >= 1
    answer = runtime.converse(modelId=SONNET, messages=LONG, inferenceConfig={"maxTokens": 4, "temperature": 0})
    assert answer["usage"]["outputTokens"] == 4 and answer["stopReason"] == "max_tokens"
