"""Settings: TOML into typed values, environment overrides, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEMO_TOKEN, ConfigError, load_settings, parse_duration

ROOT = Path(__file__).resolve().parents[1]
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_loads_with_the_token_from_the_environment() -> None:
    settings = load_settings(ROOT / "config.example.toml", env={"GRIDBOT_WECHAT_TOKEN": "secret-token"})
    assert settings.wechat.token == "secret-token"
    assert settings.sla.accept == 2 * 3600
    assert settings.sla.category == {"水电燃气": {"resolve": 24 * 3600}}
    assert settings.storage.redis_url == ""
    assert settings.timers.max_sleep == 60
    assert settings.demo is False


def test_timers_max_sleep_is_a_duration(tmp_path: Path) -> None:
    path = write(tmp_path, '[wechat]\ntoken = "t"\n[timers]\nmax_sleep = "5m"\n')
    assert load_settings(path, env={}).timers.max_sleep == 300
    assert load_settings(path, env={"GRIDBOT_TIMERS_MAX_SLEEP": "20s"}).timers.max_sleep == 20
    with pytest.raises(ConfigError, match=r"timers\.max_sleep"):
        load_settings(write(tmp_path, '[wechat]\ntoken = "t"\n[timers]\nmax_sleep = "soon"\n'), env={})


def test_no_file_means_the_embedded_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={})
    assert settings.demo is True
    assert settings.wechat.token == DEMO_TOKEN
    assert settings.storage.database_url == "sqlite+aiosqlite:///gridbot.db"
    assert Path(settings.org.file).name == "org.demo.toml" and Path(settings.org.file).is_file()


def test_config_toml_in_the_working_directory_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[wechat]\ntoken = "from-cwd"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, env={}).wechat.token == "from-cwd"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[wechat]\ntoken = "file"\n[server]\nport = 9000\n')
    env = {
        "GRIDBOT_WECHAT_TOKEN": "env",
        "GRIDBOT_SERVER_PORT": "9100",
        "GRIDBOT_STORAGE_DATABASE_URL": "postgresql+asyncpg://u@h/db",
        "GRIDBOT_SLA_ACCEPT": "45m",
    }
    settings = load_settings(path, env=env)
    assert settings.wechat.token == "env"
    assert settings.server.port == 9100
    assert settings.storage.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.sla.accept == 45 * 60


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[wechat\ntoken=1", {}, "TOML"),
        ('[wechat]\ntoken = "t"\n[nope]\nx = 1\n', {}, "[nope]"),
        ('[wechat]\ntoken = "t"\ncolour = "red"\n', {}, "wechat.colour"),
        ('[wechat]\ntoken = "t"\n[server]\nport = "eighty"\n', {}, "server.port"),
        ('[wechat]\ntoken = "t"\n[server]\nport = 70000\n', {}, "server.port"),
        ('[wechat]\ntoken = "t"\n', {"GRIDBOT_SERVER_PORT": "-1"}, "server.port"),
        ('[wechat]\ntoken = "t"\n[sla]\naccept = "2 hours"\n', {}, "sla.accept"),
        ('[wechat]\ntoken = "t"\n[sla.category."水电燃气"]\nfix = "1d"\n', {}, "sla.category.水电燃气.fix"),
        ("[server]\nport = 8080\n", {}, "wechat.token"),
        (
            '[wechat]\ntoken = "t"\nencoding_aes_key = "short"\napp_id = "wx1"\n',
            {},
            "wechat.encoding_aes_key",
        ),
        (f'[wechat]\ntoken = "t"\nencoding_aes_key = "{AES_KEY}"\n', {}, "wechat.app_id"),
        ('[wechat]\ntoken = "t"\n[wecom]\ncorp_id = "ww1"\n', {}, "wecom.token"),
        ('[wechat]\ntoken = "t"\n[storage]\ndatabase_url = "mysql://x"\n', {}, "storage.database_url"),
        ('[wechat]\ntoken = "t"\n[storage]\nredis_url = "localhost:6379"\n', {}, "storage.redis_url"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), env=env)
    message = str(error.value)
    assert names in message
    assert "\n" not in message


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="不存在"):
        load_settings(tmp_path / "absent.toml", env={})


def test_secret_from_the_environment_completes_a_safe_mode_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[wechat]\napp_id = "wx1"\n')
    settings = load_settings(
        path, env={"GRIDBOT_WECHAT_TOKEN": "t", "GRIDBOT_WECHAT_ENCODING_AES_KEY": AES_KEY}
    )
    assert settings.wechat.encrypted and settings.wechat.encoding_aes_key == AES_KEY


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 259200), (" 1h ", 3600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "2", "h", "1.5h", "2w", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text, "sla.x")


def test_media_dir_defaults_beside_the_sqlite_file() -> None:
    from bot.config import StorageSettings

    assert StorageSettings(database_url="sqlite+aiosqlite:///data/grid.db").media_root == Path("data/media")
    assert StorageSettings(database_url="sqlite+aiosqlite:////var/lib/g/grid.db").media_root == Path(
        "/var/lib/g/media"
    )
    assert StorageSettings(database_url="postgresql+asyncpg://u@h/db").media_root == Path("media")
    assert StorageSettings(media_dir="/srv/media").media_root == Path("/srv/media")
    assert load_settings(env={"GRIDBOT_STORAGE_MEDIA_DIR": "/tmp/m"}).storage.media_root == Path("/tmp/m")
