"""Copy this into your project's tests: with cachepoint installed, pytest provides `cachepoint_server`."""

from cachepoint.testing import assert_cache_hit, assert_cache_written, bedrock_endpoint

MODEL = "us.anthropic.claude-sonnet-4-6"  # caches prefixes of 1,024 tokens and more
SYSTEM = "You are the support agent of a harbour. " + "Always answer with the ledger's exact figures. " * 120


def ask(runtime, question):
    return runtime.converse(
        modelId=MODEL,
        system=[{"text": SYSTEM}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"maxTokens": 16},
    )


def test_the_system_prompt_is_written_once_then_read(cachepoint_server):
    runtime = cachepoint_server.bedrock_runtime()
    first = ask(runtime, "How many crates came in on Monday?")
    assert_cache_written(first)
    second = ask(runtime, "And on Tuesday?")
    assert_cache_hit(second, tokens=first["usage"]["cacheWriteInputTokens"])


def test_code_that_makes_its_own_client(cachepoint_server):
    import boto3

    with bedrock_endpoint(cachepoint_server.url):  # e.g. an application that builds its client itself
        runtime = boto3.client(
            "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        assert_cache_written(ask(runtime, "Who keeps the ledger?"))
