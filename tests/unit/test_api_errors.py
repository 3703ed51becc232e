import json

from cachepoint.api.errors import anthropic_error, bedrock_error, stream_exception_payload
from cachepoint.errors import InputTooLongError, ModelError, ProviderValidationError, ThrottlingError


def test_bedrock_shape_carries_the_error_type_header() -> None:
    response = bedrock_error(
        ProviderValidationError("A maximum of 4 blocks with cache_control may be provided. Found 5."), "rid"
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert response.headers["x-amzn-RequestId"] == "rid"
    assert json.loads(bytes(response.body)) == {
        "message": "The model returned the following errors: A maximum of 4 blocks with cache_control may be provided. Found 5."
    }


def test_anthropic_shape_and_statuses() -> None:
    response = anthropic_error(InputTooLongError(9000, 8191), "rid")
    assert response.status_code == 400
    assert json.loads(bytes(response.body))["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 9000 tokens > 8191 maximum",
    }
    assert anthropic_error(ThrottlingError(), "r").status_code == 429


def test_stream_frames_use_lower_camel_codes() -> None:
    assert stream_exception_payload(ThrottlingError()) == (
        "throttlingException",
        {"message": "Too many requests, please wait before trying again."},
    )
    code, payload = stream_exception_payload(ModelError("boom"))
    assert code == "modelStreamErrorException" and payload["originalStatusCode"] == 500
