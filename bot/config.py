"""Typed settings from a TOML file, with `GRIDBOT_<SECTION>_<KEY>` environment overrides.

With no file the embedded demo settings apply (SQLite, in-process state, the demo org, plaintext mode).
Every problem becomes one `ConfigError` line that names the key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from handlers.hotspots import HotspotRules
from handlers.rates import Weights
from handlers.workflow import Limits
from storage.toml_files import read_toml

DEMO_TOKEN = "gridbot-demo"
DEMO_OPEN311_KEY = "gridbot-demo-open311-key"  # the embedded demo's one Open311 client, "demo"
DEMO_ORG = Path(__file__).resolve().parent.parent / "examples" / "org.demo.toml"
SECRET_KEYS = frozenset({"app_secret", "secret", "token", "encoding_aes_key", "api_keys"})

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """A bad config file, value or missing secret; the message is one line naming the key."""


def parse_duration(text: str, key: str = "duration") -> int:
    """`90s`, `30m`, `2h`, `3d` → seconds."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"{key}: 时长应写作 90s、30m、2h 或 3d，收到 {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""


def public_base(server: ServerSettings) -> str:
    """Where people reach this server: `[server] public_url`, else its own address."""
    return server.public_url.rstrip("/") or f"http://{server.host}:{server.port}"


@dataclass(frozen=True)
class WeChatSettings:
    token: str = ""
    app_id: str = ""
    app_secret: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://api.weixin.qq.com"
    # notice kind → template id, for residents outside the 48-hour window (verified service accounts)
    template_id: Mapping[str, str] = field(default_factory=dict)

    @property
    def encrypted(self) -> bool:
        return bool(self.encoding_aes_key)


@dataclass(frozen=True)
class WeComSettings:
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"

    @property
    def enabled(self) -> bool:
        return bool(self.corp_id)


@dataclass(frozen=True)
class StorageSettings:
    database_url: str = "sqlite+aiosqlite:///gridbot.db"
    redis_url: str = ""
    redis_prefix: str = "gridbot:"
    media_dir: str = ""  # empty: "media" beside the SQLite file (PostgreSQL: ./media)

    @property
    def media_root(self) -> Path:
        """Where photos and voice messages are kept."""
        if self.media_dir:
            return Path(self.media_dir)
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix) and self.database_url != prefix + ":memory:":
            return Path(self.database_url[len(prefix) :]).parent / "media"
        return Path("media")


@dataclass(frozen=True)
class OrgSettings:
    file: str = ""


@dataclass(frozen=True)
class NlpSettings:
    rules: str = ""


@dataclass(frozen=True)
class TimerSettings:
    max_sleep: int = 60  # seconds: the longest the timers sleep, even with no step due sooner


@dataclass(frozen=True)
class ReportSettings:
    weights: Weights = field(default_factory=Weights)  # 响应率, 解决率, 满意率 in the composite score


@dataclass(frozen=True)
class Open311Settings:
    """Open311 GeoReport v2 at /open311/v2/: a client name → its api_key, for POST (one key per client)."""

    api_keys: Mapping[str, str] = field(default_factory=dict)
    read_key_required: bool = False  # true: GET needs an api_key too (otherwise reads are public)
    contact: str = ""  # discovery.json: who to ask about the API
    key_service: str = ""  # discovery.json: how to ask for a key


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    wechat: WeChatSettings = field(default_factory=WeChatSettings)
    wecom: WeComSettings = field(default_factory=WeComSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    org: OrgSettings = field(default_factory=OrgSettings)
    nlp: NlpSettings = field(default_factory=NlpSettings)
    sla: Limits = field(default_factory=Limits)  # the time limits, as the workflow reads them
    report: ReportSettings = field(default_factory=ReportSettings)
    timers: TimerSettings = field(default_factory=TimerSettings)
    open311: Open311Settings = field(default_factory=Open311Settings)
    hotspots: HotspotRules = field(default_factory=HotspotRules)  # 主动治理
    demo: bool = False


_SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "wechat": WeChatSettings,
    "wecom": WeComSettings,
    "storage": StorageSettings,
    "org": OrgSettings,
    "nlp": NlpSettings,
    "sla": Limits,
    "report": ReportSettings,
    "timers": TimerSettings,
    "open311": Open311Settings,
    "hotspots": HotspotRules,
}
_DURATION_KEYS = frozenset({"accept", "resolve", "rate", "urgent_accept", "urgent_resolve"})
_DURATIONS = {
    "sla": _DURATION_KEYS,
    "timers": frozenset({"max_sleep"}),
    "hotspots": frozenset({"window", "baseline"}),
}
# Tables the environment may give as `name=value,name=value` (secrets that should stay out of the file).
_ENV_TABLES = frozenset({("open311", "api_keys")})


def demo_settings() -> Settings:
    """What `gridbot serve` runs with no config file: everything in one process, no servers."""
    return Settings(
        wechat=WeChatSettings(token=DEMO_TOKEN),
        org=OrgSettings(file=str(DEMO_ORG)),
        open311=Open311Settings(api_keys={"demo": DEMO_OPEN311_KEY}),
        demo=True,
    )


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (None: ./config.toml when present, else the demo) and apply environment overrides."""
    env = os.environ if env is None else env
    if path is None and Path("config.toml").is_file():
        path = "config.toml"
    if path is None:
        raw: dict[str, Any] = {}
        base = demo_settings()
    else:
        raw = read_toml(path, "配置文件", ConfigError)
        base = Settings()
    settings = _build(raw, env, base)
    _check(settings)
    return settings


def _build(raw: dict[str, Any], env: Mapping[str, str], base: Settings) -> Settings:
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"未知的配置节 [{sorted(unknown)[0]}]")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] 应是一个表 (table)")
        sections[name] = _build_section(name, cls, getattr(base, name), table, env)
    return replace(base, **sections)


def _build_section(name: str, cls: type, current: Any, table: dict[str, Any], env: Mapping[str, str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}: 未知的配置项")
        values[key] = value
    for key in known:
        env_value = env.get(f"GRIDBOT_{name.upper()}_{key.upper()}")
        if env_value is not None and (
            not isinstance(getattr(current, key), Mapping) or (name, key) in _ENV_TABLES
        ):
            values[key] = env_value
    converted = {key: _convert(name, key, value, getattr(current, key)) for key, value in values.items()}
    return replace(current, **converted)


def _convert(section: str, key: str, value: Any, default: Any) -> Any:
    full = f"{section}.{key}"
    if section == "sla" and key == "category":
        return _sla_categories(value)
    if key in _DURATIONS.get(section, ()):
        return parse_duration(value, full)
    if (section, key) in _ENV_TABLES and isinstance(value, str):  # from the environment: "a=k1,b=k2"
        pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
        if not all(len(pair) == 2 and pair[0].strip() and pair[1].strip() for pair in pairs):
            raise ConfigError(f"{full}: 环境变量应写作 名称=密钥,名称=密钥")
        value = {name.strip(): secret.strip() for name, secret in pairs}
    if isinstance(default, Weights):
        if isinstance(value, str):  # from the environment: "30,35,35"
            value = [_number(part, full) for part in value.split(",")]
        try:
            return Weights.from_sequence(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if isinstance(default, Mapping):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f'{full}: 应为表，如 {{ resolve = "模板ID" }}')
        return dict(value)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{full}: 应为 true 或 false，收到 {value!r}")
    if isinstance(default, int):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{full}: 应为整数，收到 {value!r}") from None
        if isinstance(value, bool) or number < 0:
            raise ConfigError(f"{full}: 应为非负整数，收到 {value!r}")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{full}: 应为字符串，收到 {value!r}")
    return value


def _number(text: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{key}: 应为逗号分隔的三个数，如 30,35,35") from None


def _sla_categories(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        raise ConfigError('sla.category: 应为表，如 [sla.category."水电燃气"]')
    result: dict[str, dict[str, int]] = {}
    for category, limits in value.items():
        if not isinstance(limits, dict):
            raise ConfigError(f"sla.category.{category}: 应为表")
        for key in limits:
            if key not in _DURATION_KEYS:
                raise ConfigError(f"sla.category.{category}.{key}: 未知的时限")
        result[category] = {
            key: parse_duration(v, f"sla.category.{category}.{key}") for key, v in limits.items()
        }
    return result


def _check(settings: Settings) -> None:
    """Cross-field rules: secrets present where the mode needs them, values in range."""
    if not 0 < settings.server.port < 65536:
        raise ConfigError(f"server.port: 端口应在 1–65535 之间，收到 {settings.server.port}")
    if not settings.wechat.token:
        raise ConfigError("wechat.token: 缺少令牌 (可用环境变量 GRIDBOT_WECHAT_TOKEN 提供)")
    _check_aes_key("wechat.encoding_aes_key", settings.wechat.encoding_aes_key)
    if settings.wechat.encrypted and not settings.wechat.app_id:
        raise ConfigError("wechat.app_id: 安全模式 (encoding_aes_key 已设置) 需要 app_id")
    if settings.wecom.enabled:
        for key in ("token", "encoding_aes_key", "secret"):
            if not getattr(settings.wecom, key):
                raise ConfigError(
                    f"wecom.{key}: 已设置 corp_id，缺少 {key} (可用环境变量 GRIDBOT_WECOM_{key.upper()})"
                )
        _check_aes_key("wecom.encoding_aes_key", settings.wecom.encoding_aes_key)
    url = settings.storage.database_url
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError("storage.database_url: 应以 sqlite+aiosqlite:// 或 postgresql+asyncpg:// 开头")
    for client, key in settings.open311.api_keys.items():
        if len(key) < 16:
            raise ConfigError(f"open311.api_keys.{client}: 密钥至少 16 个字符")
    if len(set(settings.open311.api_keys.values())) < len(settings.open311.api_keys):
        raise ConfigError("open311.api_keys: 每个客户端应有自己的密钥")
    if settings.hotspots.threshold < 1 or settings.hotspots.minimum < 1 or settings.hotspots.factor < 1:
        raise ConfigError("hotspots: threshold、factor、minimum 应至少为 1")
    if settings.storage.redis_url and not settings.storage.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError("storage.redis_url: 应以 redis:// 或 rediss:// 开头，或留空使用进程内状态")


def _check_aes_key(key: str, value: str) -> None:
    if not value:
        return
    try:
        valid = len(value) == 43 and len(base64.b64decode(value + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise ConfigError(f"{key}: 应为 43 个字符的 EncodingAESKey")
