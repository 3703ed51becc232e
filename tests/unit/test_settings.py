from pathlib import Path

import pytest

from cachepoint.settings import DEFAULT_PORT, load_settings, settings_from_table


def test_defaults() -> None:
    settings = settings_from_table({})
    assert (settings.host, settings.port, settings.region) == ("127.0.0.1", DEFAULT_PORT, "us-east-1")
    assert settings.engines["default"].model_path is None  # the embedded model
    assert settings.cache_max_bytes > 0


def test_config_file_maps_models_to_a_user_gguf(tmp_path: Path) -> None:
    config = tmp_path / "cachepoint.toml"
    config.write_text(
        '[server]\nport = 9000\n[engines.qwen]\nmodel_path = "~/models/qwen.gguf"\ntemplate = "chatml"\n'
        '[catalog.models."anthropic.claude-sonnet-4-5-20250929-v1:0"]\nengine = "qwen"\n'
        '[accounts]\nAKIDX = "111122223333"\n[cache]\nmax_bytes = 1000\n'
    )
    settings = load_settings(None, environ={"CACHEPOINT_CONFIG": str(config)}, port=9100)
    assert settings.port == 9100  # the CLI wins over the file
    assert settings.engines["qwen"].model_path == Path("~/models/qwen.gguf").expanduser()
    assert settings.catalog_overrides["models"]["anthropic.claude-sonnet-4-5-20250929-v1:0"]["engine"] == "qwen"
    assert settings.account_for("AKIDX") == "111122223333"
    assert settings.account_for("OTHER") == settings.account_for("OTHER") != "111122223333"
    assert settings.cache_max_bytes == 1000


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError):
        settings_from_table({"engines": {"x": {"kind": "gpu"}}})
    with pytest.raises(ValueError):
        settings_from_table({"accounts": {"K": "123"}})


FAKE = {"engines": {"default": {"kind": "fake"}}}  # a unit test builds services without loading a model


def test_unknown_engine_reference_is_refused_at_build() -> None:
    from cachepoint.bootstrap import build_services
    from cachepoint.routing.profiles import ProfileStore

    settings = settings_from_table({"catalog": {"models": {"amazon.nova-pro-v1:0": {"engine": "missing"}}}})
    with pytest.raises(ValueError, match="missing"):
        build_services(settings, profiles=ProfileStore(":memory:"))


def test_per_profile_routing_policy() -> None:
    from cachepoint.bootstrap import build_services
    from cachepoint.routing.policy import choose_bedrock, choose_cache_affinity
    from cachepoint.routing.profiles import ProfileStore

    profile = "apac.anthropic.claude-sonnet-4-20250514-v1:0"
    settings = settings_from_table(
        {"routing": {"policy": "cache-affinity", "profiles": {profile: "bedrock"}}} | FAKE
    )
    routing = build_services(settings, profiles=ProfileStore(":memory:")).inference.routing
    assert routing.policy_for(profile) is choose_bedrock
    assert routing.policy_for("us." + profile[5:]) is choose_cache_affinity


def test_dev_mode_is_refused_on_a_network_address() -> None:
    with pytest.raises(ValueError, match="refusing to listen on 0.0.0.0"):
        settings_from_table({"server": {"host": "0.0.0.0"}})
    assert (
        settings_from_table({"server": {"host": "0.0.0.0"}, "auth": {"allow_dev_mode_on_network": True}}).host
        == "0.0.0.0"
    )
    strict = {"mode": "strict", "credentials": {"AKID": {"secret": "s", "account": "111122223333"}}}
    assert (
        settings_from_table({"server": {"host": "0.0.0.0"}, "auth": strict}).auth.credentials["AKID"].account_id
        == "111122223333"
    )


def test_a_zero_cache_budget_runs_without_a_cache() -> None:
    from cachepoint.bootstrap import build_services
    from cachepoint.cache.plan import NullCache
    from cachepoint.routing.profiles import ProfileStore

    settings = settings_from_table({"cache": {"max_bytes": 0}} | FAKE)
    assert isinstance(build_services(settings, profiles=ProfileStore(":memory:")).inference.cache, NullCache)
