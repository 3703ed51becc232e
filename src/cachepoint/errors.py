"""The one exception tree of cachepoint. `api/errors.py` is the only place that renders it.

    CachepointError                      (any failure a client may see)
    ├── ValidationError                  400 ValidationException     / invalid_request_error
    │   ├── ProviderValidationError      400, Bedrock wraps the text in "The model returned the following errors: "
    │   ├── InputTooLongError            400 "Input is too long for requested model."
    │   ├── RequestTooLargeError         400 / request_too_large (413): the body exceeds the size limit
    │   └── RequestTimeoutError          408 / invalid_request_error: the body was not received in time
    ├── AccessDeniedError                403 AccessDeniedException   / permission_error
    ├── AuthError                        403 (code per subclass)     / authentication_error (401)
    │   ├── MissingTokenError            MissingAuthenticationTokenException
    │   ├── IncompleteSignatureError     IncompleteSignatureException (400)
    │   ├── UnrecognizedClientError      UnrecognizedClientException
    │   └── InvalidSignatureError        InvalidSignatureException
    ├── ResourceNotFoundError            404 ResourceNotFoundException / not_found_error
    ├── ConflictError                    400 ConflictException       / invalid_request_error
    ├── ServiceQuotaExceededError        400 ServiceQuotaExceededException / invalid_request_error
    ├── ThrottlingError                  429 ThrottlingException     / rate_limit_error
    ├── ServiceUnavailableError          503 ServiceUnavailableException / overloaded_error (529)
    ├── ModelTimeoutError                408 ModelTimeoutException   / api_error
    ├── ModelError                       424 ModelErrorException     / api_error (500)
    ├── InternalError                    500 InternalServerException / api_error
    └── ClientDisconnectedError          (logged only) the client left mid-stream

Each class carries its wire facts as class attributes, so translation is a lookup, not a ladder.
User input never raises `AssertionError`/`RuntimeError`; those mean a broken invariant.
"""

from __future__ import annotations

from typing import ClassVar


class CachepointError(Exception):
    bedrock_code: ClassVar[str] = "InternalServerException"
    http_status: ClassVar[int] = 500
    anthropic_type: ClassVar[str] = "api_error"
    anthropic_status: ClassVar[int] = 500
    #: the lowerCamel member name used in event-stream exception frames
    stream_code: ClassVar[str] = "internalServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def bedrock_message(self) -> str:
        return self.message

    @property
    def anthropic_message(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        """Errors cross process boundaries (decoding workers) whatever their constructor takes."""
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[CachepointError], state: dict[str, object]) -> CachepointError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class ValidationError(CachepointError):
    bedrock_code = "ValidationException"
    http_status = 400
    anthropic_type = "invalid_request_error"
    anthropic_status = 400
    stream_code = "validationException"


class ProviderValidationError(ValidationError):
    """A rule the model provider enforces; Bedrock prefixes the provider's own text."""

    @property
    def bedrock_message(self) -> str:
        return f"The model returned the following errors: {self.message}"


class InputTooLongError(ValidationError):
    def __init__(self, num_tokens: int, limit_tokens: int) -> None:
        super().__init__("Input is too long for requested model.")
        self.num_tokens = num_tokens
        self.limit_tokens = limit_tokens

    @property
    def anthropic_message(self) -> str:
        return f"prompt is too long: {self.num_tokens} tokens > {self.limit_tokens} maximum"


class RequestTooLargeError(ValidationError):
    anthropic_type = "request_too_large"
    anthropic_status = 413


class RequestTimeoutError(ValidationError):
    http_status = 408
    anthropic_status = 408


class AccessDeniedError(CachepointError):
    bedrock_code = "AccessDeniedException"
    http_status = 403
    anthropic_type = "permission_error"
    anthropic_status = 403
    stream_code = "accessDeniedException"


class AuthError(CachepointError):
    http_status = 403
    anthropic_type = "authentication_error"
    anthropic_status = 401


class MissingTokenError(AuthError):
    bedrock_code = "MissingAuthenticationTokenException"

    def __init__(self) -> None:
        super().__init__("Missing Authentication Token")


class IncompleteSignatureError(AuthError):
    bedrock_code = "IncompleteSignatureException"
    http_status = 400


class UnrecognizedClientError(AuthError):
    bedrock_code = "UnrecognizedClientException"

    def __init__(self) -> None:
        super().__init__("The security token included in the request is invalid.")


class InvalidSignatureError(AuthError):
    bedrock_code = "InvalidSignatureException"


class ResourceNotFoundError(CachepointError):
    bedrock_code = "ResourceNotFoundException"
    http_status = 404
    anthropic_type = "not_found_error"
    anthropic_status = 404
    stream_code = "resourceNotFoundException"


class ConflictError(CachepointError):
    bedrock_code = "ConflictException"
    http_status = 400
    anthropic_type = "invalid_request_error"
    anthropic_status = 400


class ServiceQuotaExceededError(CachepointError):
    bedrock_code = "ServiceQuotaExceededException"
    http_status = 400
    anthropic_type = "invalid_request_error"
    anthropic_status = 400
    stream_code = "serviceQuotaExceededException"


class ThrottlingError(CachepointError):
    bedrock_code = "ThrottlingException"
    http_status = 429
    anthropic_type = "rate_limit_error"
    anthropic_status = 429
    stream_code = "throttlingException"

    def __init__(self, message: str = "Too many requests, please wait before trying again.") -> None:
        super().__init__(message)


class ServiceUnavailableError(CachepointError):
    bedrock_code = "ServiceUnavailableException"
    http_status = 503
    anthropic_type = "overloaded_error"
    anthropic_status = 529
    stream_code = "serviceUnavailableException"


class ModelTimeoutError(CachepointError):
    bedrock_code = "ModelTimeoutException"
    http_status = 408
    stream_code = "modelTimeoutException"


class ModelError(CachepointError):
    bedrock_code = "ModelErrorException"
    http_status = 424
    stream_code = "modelStreamErrorException"


class InternalError(CachepointError):
    pass


class ClientDisconnectedError(CachepointError):
    """Not sent to anyone: the code an invocation log records when the client left mid-stream."""

    bedrock_code = "ClientDisconnected"
    http_status = 499

    def __init__(self) -> None:
        super().__init__("The client closed the connection before the response was complete.")
