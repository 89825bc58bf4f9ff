"""Settings: read once at start-up into one ``Settings`` object and handed down.

Every setting is declared once in ``SETTINGS`` (name, type, default, help). That declaration drives
the ``GEMINI_GATEWAY_*`` environment variables, the optional TOML config file
(``GEMINI_GATEWAY_CONFIG`` or ``--config``), the ``serve`` command's flags and the table in
``docs/configuration.md`` (a test keeps the docs in step). Precedence, highest first: command-line
flag, environment variable, config file, default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "GEMINI_GATEWAY_"


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    # Serving
    Setting("host", str, "0.0.0.0", "Address to listen on."),
    Setting("port", int, 8000, "Port to listen on."),
    Setting("data_dir", str, "./data", "Folder for the SQLite database and generated files."),
    Setting("max_body_bytes", int, 128 * 1024 * 1024, "Request bodies above this get 413."),
    Setting("shutdown_grace", float, 30.0, "Seconds open streams may finish after SIGTERM."),
    Setting("log_level", str, "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Setting("log_format", str, "json", "Request log lines as `json` or `text`."),
    Setting(
        "public_base_url",
        str,
        "",
        "Base URL clients reach us at, for links we hand out (default: taken from each request).",
    ),
    # Upstream
    Setting("upstream_keys", str, "", "Comma-separated Gemini API keys.", secret=True),
    Setting(
        "upstream_base_url",
        str,
        "https://generativelanguage.googleapis.com",
        "Root URL of the Gemini API.",
    ),
    Setting("upstream_api_version", str, "v1beta", "Gemini API version path."),
    Setting("upstream_proxy", str, "", "Outbound HTTP(S) proxy for upstream calls."),
    Setting("upstream_connect_timeout", float, 10.0, "Seconds to connect upstream."),
    Setting(
        "upstream_timeout",
        float,
        600.0,
        "Seconds to wait for upstream's first byte (and between stream events).",
    ),
    Setting("upstream_max_attempts", int, 4, "Upstream keys tried per request, at most."),
    Setting("upstream_max_connections", int, 512, "Open connections to upstream, at most."),
    Setting("models_cache_ttl", float, 600.0, "Seconds to cache upstream's model list."),
    Setting(
        "simulator",
        bool,
        False,
        "Serve against a built-in Gemini simulator "
        "(on automatically when no upstream key is configured).",
    ),
    # Behaviour
    Setting(
        "safety_threshold",
        str,
        "OFF",
        "Gemini harm-block threshold sent for every category "
        "unless a request overrides it: OFF, BLOCK_NONE, BLOCK_ONLY_HIGH, "
        "BLOCK_MEDIUM_AND_ABOVE, BLOCK_LOW_AND_ABOVE.",
    ),
    Setting(
        "thinking_output",
        str,
        "reasoning_content",
        "Where thought summaries go: "
        "`reasoning_content` or `think_tags` (wrapped in <think>…</think> inside content).",
    ),
    # Storage and limits
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL; default SQLite in the data dir. postgresql://… for PostgreSQL.",
        secret=True,
    ),
    Setting(
        "redis_url", str, "", "Redis URL for limits and key state shared by replicas.", secret=True
    ),
    Setting(
        "admin_token",
        str,
        "",
        "Bearer token for /admin/v1; unset turns the admin API off.",
        secret=True,
    ),
    Setting(
        "key_encryption_secret",
        str,
        "",
        "Encrypts upstream keys stored in the database (a long random string, the same on every "
        "replica; keys stored with it cannot be read without it). Unset: stored as given.",
        secret=True,
    ),
    Setting("ledger_retention_days", int, 90, "Days usage rows are kept; 0 keeps them forever."),
    # Media in
    Setting(
        "media_allow_private", bool, False, "Let media URLs reach private and loopback addresses."
    ),
    Setting(
        "media_allowed_networks",
        str,
        "",
        "Comma-separated CIDRs media URLs may reach even though private.",
    ),
    Setting("media_max_bytes", int, 100 * 1024 * 1024, "Largest media item accepted, in bytes."),
    Setting("media_fetch_timeout", float, 30.0, "Seconds to fetch one media URL."),
    Setting("media_max_redirects", int, 3, "Redirects followed when fetching media."),
    Setting(
        "inline_limit_bytes",
        int,
        100 * 1024 * 1024,
        "Gemini's inline request limit; larger media goes through the File API.",
    ),
    # Media out
    Setting(
        "generated_media",
        str,
        "link",
        "How generated images and audio reach clients: "
        "`link` (served by the gateway) or `data` (data: URLs).",
    ),
    Setting("generated_media_ttl", float, 86400.0, "Seconds generated files are served."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _parse(setting: Setting, raw: Any) -> Any:
    if setting.type is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{setting.env}: expected a boolean, got {raw!r}")
    try:
        return setting.type(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{setting.env}: expected {setting.type.__name__}, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """The resolved settings. Attribute names are ``SETTINGS`` names."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name in _BY_NAME:
            return self.values.get(name, _BY_NAME[name].default)
        raise AttributeError(name)

    def __repr__(self) -> str:
        shown = {
            k: ("***" if _BY_NAME[k].secret and v else v) for k, v in sorted(self.values.items())
        }
        return f"Settings({shown})"

    def replace(self, **changes: Any) -> Settings:
        return Settings({**self.values, **changes})

    @property
    def upstream_key_list(self) -> list[str]:
        return [k.strip() for k in str(self.upstream_keys).split(",") if k.strip()]

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return str(self.database_url)
        return f"sqlite:///{(self.data_path / 'gateway.db').resolve()}"


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve settings: overrides (CLI flags) > environment > config file > defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    path = config_file or env.get(PREFIX + "CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        for key, raw in data.items():
            name = key.lower().removeprefix(PREFIX.lower())
            if name not in _BY_NAME:
                raise ValueError(f"{path}: unknown setting {key!r}")
            values[name] = _parse(_BY_NAME[name], raw)
    for s in SETTINGS:
        if s.env in env:
            values[s.name] = _parse(s, env[s.env])
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _parse(_BY_NAME[name], raw)
    return Settings(values)


def settings_markdown() -> str:
    """The configuration table in docs/configuration.md (a test keeps the two equal)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = "(unset)" if s.default in ("", None) else f"`{s.default}`"
        rows.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(rows) + "\n"
