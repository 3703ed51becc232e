"""The service layer: the only thing the API calls (see inference.py for the flow)."""

from cachepoint.service.calls import (
    Completed,
    Decoded,
    InvocationRequest,
    Operation,
    PreparedCall,
    Result,
    ServiceEvent,
    Started,
    Surface,
    Target,
    TextDelta,
)
from cachepoint.service.inference import InferenceService
from cachepoint.service.router import Routing

__all__ = [
    "Completed",
    "Decoded",
    "InferenceService",
    "InvocationRequest",
    "Operation",
    "PreparedCall",
    "Result",
    "Routing",
    "ServiceEvent",
    "Started",
    "Surface",
    "Target",
    "TextDelta",
]
