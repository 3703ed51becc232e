"""cachepoint: a self-hosted Bedrock Runtime / Anthropic Messages server with real prompt caching."""

__version__ = "0.2.0"
__all__ = ["__version__"]
