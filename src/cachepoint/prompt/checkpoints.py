"""Pure validation of a prompt's cache checkpoints against a model's rules (caching-semantics §5).

Order matters: the first failing rule decides the error, as on Bedrock. Syntax (`type`, `ttl` enum)
and per-container position rules are checked by the wire translators, which see the raw shapes.
"""

from __future__ import annotations

from cachepoint.errors import AccessDeniedError, ProviderValidationError, ValidationError
from cachepoint.models.spec import CachingRules
from cachepoint.types import Checkpoint, Prompt, Section, Ttl

UNSUPPORTED_MODEL = "You invoked an unsupported model or your request did not allow prompt caching."


def validate_checkpoints(prompt: Prompt, rules: CachingRules | None) -> None:
    marked = prompt.checkpoints()
    if not marked:
        return
    if rules is None:
        raise AccessDeniedError(UNSUPPORTED_MODEL)
    _check_fields(marked, rules)
    if len(marked) > rules.max_checkpoints:
        raise ProviderValidationError(
            f"A maximum of {rules.max_checkpoints} blocks with cache_control may be provided. Found {len(marked)}."
        )
    _check_ttl_order([c for _, c in marked])
    if rules.reject_unsupported_ttl:
        _check_ttls_offered([c for _, c in marked], rules)


def effective_ttl(requested: Ttl, rules: CachingRules) -> Ttl:
    """A TTL the model does not offer is downgraded to 5m (what Bedrock is reported to do)."""
    return requested if requested in rules.ttls else Ttl.FIVE_MINUTES


def _check_ttls_offered(checkpoints: list[Checkpoint], rules: CachingRules) -> None:
    """Policy `on_unsupported_ttl = "reject"` (Bedrock's own answer is undocumented: the default downgrades)."""
    offered = sorted(t.value for t in rules.ttls)
    for checkpoint in checkpoints:
        if checkpoint.ttl not in rules.ttls:
            where = checkpoint.wire_path or checkpoint.path
            raise ValidationError(
                f"The cache TTL {checkpoint.ttl.value} at {where} is not supported by this model. "
                f"Supported TTLs: {', '.join(offered)}."
            )


def _check_fields(marked: list[tuple[Section, Checkpoint]], rules: CachingRules) -> None:
    for section, checkpoint in marked:
        if section not in rules.fields:
            where = checkpoint.wire_path or checkpoint.path
            raise ValidationError(
                f"Malformed input request: #/{where}: extraneous key [cachePoint] is not permitted, "
                "please reformat your input"
            )


def _check_ttl_order(checkpoints: list[Checkpoint]) -> None:
    seen_short = False
    for checkpoint in checkpoints:
        if checkpoint.ttl is Ttl.ONE_HOUR and seen_short:
            raise ProviderValidationError(
                f"{checkpoint.path}.cache_control.ttl: a ttl='1h' cache_control block must not come after "
                "a ttl='5m' cache_control block. Note that blocks are processed in the following order: "
                "`tools`, `system`, `messages`."
            )
        seen_short = seen_short or checkpoint.ttl is Ttl.FIVE_MINUTES
