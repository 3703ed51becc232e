from cachepoint.accounting.usage import Usage, anthropic_usage, converse_usage, invocation_metrics, invoke_headers


def test_smartsheet_arithmetic() -> None:
    usage = Usage(
        input_tokens=4, output_tokens=774, cache_read_tokens=19892, cache_write_5m_tokens=2083, had_checkpoint=True
    )
    assert converse_usage(usage) == {
        "inputTokens": 4,
        "outputTokens": 774,
        "totalTokens": 22753,
        "cacheReadInputTokens": 19892,
        "cacheWriteInputTokens": 2083,
        "cacheDetails": [{"ttl": "5m", "inputTokens": 2083}],
    }


def test_mixed_ttl_details_list_1h_first_and_sum_to_the_write() -> None:
    usage = Usage(30, 5, 0, cache_write_5m_tokens=3000, cache_write_1h_tokens=5000, had_checkpoint=True)
    view = converse_usage(usage)
    assert view["cacheWriteInputTokens"] == 8000
    assert view["cacheDetails"] == [{"ttl": "1h", "inputTokens": 5000}, {"ttl": "5m", "inputTokens": 3000}]
    assert anthropic_usage(usage, with_cache_creation=True)["cache_creation"] == {
        "ephemeral_5m_input_tokens": 3000,
        "ephemeral_1h_input_tokens": 5000,
    }


def test_cache_fields_only_with_a_checkpoint_in_converse_but_always_in_anthropic() -> None:
    plain = Usage(10, 2)
    assert converse_usage(plain) == {"inputTokens": 10, "outputTokens": 2, "totalTokens": 12}
    assert converse_usage(Usage(10, 2, had_checkpoint=True))["cacheReadInputTokens"] == 0
    assert anthropic_usage(plain, with_cache_creation=False) == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
    }


def test_headers_and_stream_metrics_carry_the_same_numbers() -> None:
    usage = Usage(9, 357, 0, 37209, had_checkpoint=True)
    assert invoke_headers(usage, 4210)["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] == "37209"
    assert invocation_metrics(usage, 4210, 380) == {
        "inputTokenCount": 9,
        "outputTokenCount": 357,
        "invocationLatency": 4210,
        "firstByteLatency": 380,
        "cacheReadInputTokenCount": 0,
        "cacheWriteInputTokenCount": 37209,
    }
