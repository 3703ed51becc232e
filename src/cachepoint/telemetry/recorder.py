"""Telemetry: every finished invocation goes to the log sinks, the metrics, the dashboard history and, when
configured, OpenTelemetry (`otlp.py`).

Bedrock operations are logged in Bedrock's schema; the Anthropic API's calls count in the metrics and
the history only (Bedrock's logs know nothing of them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from cachepoint.telemetry.history import History
from cachepoint.telemetry.metrics import Metrics
from cachepoint.telemetry.otlp import OtlpExporter
from cachepoint.telemetry.records import Invocation, build_record
from cachepoint.telemetry.sinks import LogSink, hour_prefix

log = logging.getLogger(__name__)
AccountConfig = Callable[[str], tuple[bool, dict[str, Any] | None]]
BEDROCK_OPERATIONS = {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"}


@dataclass(frozen=True)
class LogPolicy:
    enabled: bool = True
    text_delivery: bool = True
    s3_uri: str = ""  # where offloaded bodies are said to live, e.g. s3://bucket/prefix/


class Telemetry:
    def __init__(
        self,
        sinks: list[LogSink],
        metrics: Metrics,
        history: History,
        policy: LogPolicy,
        registry: CollectorRegistry,
        account_config: AccountConfig = lambda account: (False, None),
        otlp: OtlpExporter | None = None,
    ) -> None:
        self.account_config = account_config
        self.otlp = otlp
        self.sinks = sinks
        self.metrics = metrics
        self.registry = registry
        self.history = history
        self.policy = policy
        self.num_records = 0

    def record(self, inv: Invocation) -> None:
        """Never fails the request it describes: a telemetry fault is logged and the answer still goes out."""
        try:
            self.metrics.observe(inv)
            self.history.add(inv)
            if self.otlp is not None:
                self.otlp.export(inv)
            if inv.operation in BEDROCK_OPERATIONS:
                self._log_if_enabled(inv)
        except Exception:  # the telemetry boundary
            log.exception("recording request %s failed", inv.request_id)

    def count_throttle(self, region: str, account_id: str) -> None:
        """A request refused at admission: counted, never logged (it was not an invocation). Its model is
        unknown (the body was not read), so the ModelId label is empty."""
        self.metrics.count_throttle(region, account_id)

    def _log_if_enabled(self, inv: Invocation) -> None:
        """The account's own PutModelInvocationLoggingConfiguration wins over the server's [logging] settings."""
        configured, config = self.account_config(inv.account_id)
        if configured:
            if config is None:  # the account deleted its configuration: no logs for it
                return
            self._log(inv, bool(config.get("textDataDeliveryEnabled", True)))
        elif self.policy.enabled:
            self._log(inv, self.policy.text_delivery)

    def _log(self, inv: Invocation, text_delivery: bool) -> None:
        prefix = self.policy.s3_uri + hour_prefix(inv.account_id, inv.region, inv.timestamp_s)
        entry = build_record(inv, text_delivery=text_delivery, data_prefix=prefix)
        for sink in self.sinks:
            sink.write(entry, inv.timestamp_s)
        self.num_records += 1

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Waits until the sinks have stored every record logged so far (they write on their own threads)."""
        return all([sink.flush(timeout_s) for sink in self.sinks])  # a list: every sink gets its wait

    def close(self) -> None:
        """Drains and closes the sinks, in order (the local files before their S3 mirror)."""
        for sink in self.sinks:
            sink.close()
        if self.otlp is not None:
            self.otlp.close()  # sends what is batched
