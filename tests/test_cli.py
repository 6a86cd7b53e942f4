"""The `gridbot` command line: org import/show, db upgrade, and one-line errors with a non-zero exit."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from pathlib import Path

import asyncpg
import pytest

from bot.cli import main
from storage.db import head_revision
from tests.conftest import DEMO_ORG, PG_URL, require_servers


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[wechat]\ntoken = "t"\n[storage]\ndatabase_url = "{database_url}"\n[org]\nfile = ""\n',
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("backend", "engine")
class TestOrgCommands:
    def test_import_twice_then_show(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "org", "import", str(DEMO_ORG), "-c", str(config))
        assert code == 0 and "人员 40 人" in out and "无需重启" in out
        code, out, _ = run(capsys, "-c", str(config), "org", "import", str(DEMO_ORG))
        assert code == 0 and "本次变更 0 项" in out and "无需重启" not in out
        code, out, _ = run(capsys, "org", "show", "-c", str(config))
        assert code == 0
        assert "筱塘社区第一网格 [xiaotang-1] (网格) · 筱塘社区第一网格党支部" in out
        assert "地点: 筱塘新村 (又称 小塘新村、筱塘小区)" in out
        assert "网格长:" in out and "部门联系人:" in out

    def test_a_bad_file_changes_nothing(
        self, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run(capsys, "org", "import", str(DEMO_ORG), "-c", str(config))[0] == 0
        _, before, _ = run(capsys, "org", "show", "-c", str(config))
        bad = tmp_path / "bad.toml"
        text = DEMO_ORG.read_text(encoding="utf-8").replace('parent = "xiaotang"', 'parent = "xiaotangg"', 1)
        bad.write_text(text.replace('name = "林文"', 'name = "改名"'), encoding="utf-8")
        code, out, err = run(capsys, "org", "import", str(bad), "-c", str(config))
        assert code != 0 and out == ""
        assert err.strip() == "gridbot: unit xiaotang-1: 上级单位 'xiaotangg' 不存在"
        assert run(capsys, "org", "show", "-c", str(config))[1] == before

    def test_db_upgrade_reports_the_revision(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "db", "upgrade", "-c", str(config))
        assert code == 0 and head_revision() in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["org", "import", "/nonexistent/org.toml"], "组织文件不存在"),
        (["-c", "/nonexistent/config.toml", "org", "show"], "配置文件不存在"),
    ],
)
def test_errors_are_one_line_without_traceback(
    argv: list[str],
    fragment: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unreachable_database_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[wechat]\ntoken = "t"\n[storage]\ndatabase_url = "postgresql+asyncpg://postgres@127.0.0.1:1/x"\n',
        encoding="utf-8",
    )
    code, _, err = run(capsys, "org", "show", "-c", str(config))
    assert code == 2
    assert err.startswith("gridbot: ") and len(err.strip().splitlines()) == 1


async def test_postgres_not_upgraded_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_servers()
    name = f"gridbot_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        config = tmp_path / "c.toml"
        url = PG_URL.rsplit("/", 1)[0] + "/" + name
        config.write_text(f'[wechat]\ntoken = "t"\n[storage]\ndatabase_url = "{url}"\n', encoding="utf-8")
        code, _, err = await asyncio.to_thread(run, capsys, "org", "show", "-c", str(config))
        assert code == 2 and "gridbot db upgrade" in err
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def test_nlp_classify_eval_and_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import shared_data

    config = tmp_path / "c.toml"
    config.write_text(f'[wechat]\ntoken = "t"\n[org]\nfile = "{DEMO_ORG}"\n', encoding="utf-8")
    code, out, _ = run(capsys, "nlp", "classify", "筱塘小区3号楼楼道着火了", "-c", str(config))
    assert code == 0
    assert "类别: 消防应急" in out and "紧急: 是" in out and "地点: 筱塘新村3号楼 (xiaotang-1)" in out
    data = shared_data("community_dev.csv")
    code, out, _ = run(capsys, "nlp", "eval", str(data), "-c", str(config))
    assert code == 0 and re.fullmatch(
        r"accuracy=\d\.\d{4} macro_f1=\d\.\d{4} n=78", out.strip().splitlines()[-1]
    )
    rules = tmp_path / "learned.toml"
    code, out, _ = run(capsys, "nlp", "train", str(data), "-o", str(rules), "-c", str(config))
    assert code == 0 and rules.exists()
    code, out, _ = run(capsys, "nlp", "eval", str(data), "--rules", str(rules), "-c", str(config))
    assert code == 0 and out.strip().splitlines()[-1].endswith("n=78")
    bad = tmp_path / "bad.csv"
    bad.write_text("words,kind\nx,y\n", encoding="utf-8")
    code, _, err = run(capsys, "nlp", "eval", str(bad), "-c", str(config))
    assert code == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("backend", "engine")
def test_report_prints_text_and_csv(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "org", "import", str(DEMO_ORG), "-c", str(config))[0] == 0
    code, out, _ = run(capsys, "report", "--period", "2026-11", "-c", str(config))
    assert code == 0 and "城厢区" in out and "响应率" in out
    code, out, _ = run(
        capsys, "report", "--period", "2026-11", "--format", "csv", "--unit", "xiaotang", "-c", str(config)
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["unit_id"] for r in rows][:2] == ["xiaotang", "xiaotang-1"]
    for word in ("上月", "上周"):  # relative periods, as in chat
        code, out, _ = run(capsys, "report", "--period", word, "-c", str(config))
        assert code == 0 and out.startswith(f"三率统计 {word}（"), out
    code, _, err = run(capsys, "report", "--period", "2026-13", "-c", str(config))
    assert code == 2 and "2026-13" in err
    code, _, err = run(capsys, "report", "--unit", "atlantis", "-c", str(config))
    assert code == 2 and "atlantis" in err


def test_serve_refuses_a_bad_rules_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[wechat]\ntoken = "t"\n[nlp]\nrules = "{tmp_path / "none.toml"}"\n'
        f'[storage]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path / "g.db"}"\n[server]\nport = 1\n',
        encoding="utf-8",
    )
    code, _, err = run(capsys, "serve", "-c", str(config))
    assert code == 2 and "none.toml" in err and len(err.strip().splitlines()) == 1


def test_several_workers_need_the_server_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[wechat]\ntoken = "t"\n', encoding="utf-8")
    code, _, err = run(capsys, "serve", "--workers", "2", "-c", str(config))
    assert code == 2 and "PostgreSQL 和 Redis" in err
