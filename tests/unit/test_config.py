"""Settings: precedence, parsing, secrets kept out of repr, docs in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemini_gateway.config import SETTINGS, load_settings, settings_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s.port == 8000
    assert s.upstream_base_url == "https://generativelanguage.googleapis.com"
    assert s.safety_threshold == "OFF"
    assert s.upstream_key_list == []


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('port = 7000\nhost = "127.0.0.2"\nlog_level = "DEBUG"\n')
    env = {"GEMINI_GATEWAY_PORT": "7001", "GEMINI_GATEWAY_CONFIG": str(cfg)}
    s = load_settings({"port": None}, environ=env)
    assert (s.port, s.host, s.log_level) == (7001, "127.0.0.2", "DEBUG")
    assert load_settings({"port": 7002}, environ=env).port == 7002


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ValueError, match="GEMINI_GATEWAY_PORT"):
        load_settings(environ={"GEMINI_GATEWAY_PORT": "eighty"})
    with pytest.raises(ValueError, match="GEMINI_GATEWAY_MEDIA_ALLOW_PRIVATE"):
        load_settings(environ={"GEMINI_GATEWAY_MEDIA_ALLOW_PRIVATE": "perhaps"})


def test_unknown_setting_in_file_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        load_settings(environ={}, config_file=cfg)


def test_keys_split_and_hidden_from_repr() -> None:
    s = load_settings(environ={"GEMINI_GATEWAY_UPSTREAM_KEYS": " AIzaA , AIzaB ,"})
    assert s.upstream_key_list == ["AIzaA", "AIzaB"]
    assert "AIzaA" not in repr(s)


def test_docs_table_matches_settings() -> None:
    assert settings_markdown() in DOCS.read_text(), "regenerate docs/configuration.md's table"
    for s in SETTINGS:
        assert s.env in DOCS.read_text()
