"""The `gridbot` command line (spec §1). Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.account.menu import MenuError, format_menu, load_menu
from bot.account.qr import make_codes, places_under, write_sheets
from bot.app import StartupError, create_app, demo_wechat, freeze_startup_heap
from bot.config import ConfigError, Settings, load_settings, public_base
from bot.demo.chat import DEFAULT_URL, ChatError, run_chat
from bot.tencent.wechat_api import Retryable, WeChatAPI, WeChatAPIError
from bot.workers.org_watch import POLL_SECONDS
from handlers.directory import REGISTERED_NAME, Directory
from handlers.login_links import admin_of, new_login_link
from handlers.report import render_report
from nlp.classifier import Classifier
from nlp.evaluate import (
    csv_columns,
    evaluate,
    evaluate_gate,
    format_gate_report,
    format_report,
    read_gate_csv,
    read_labelled_csv,
)
from nlp.gate import Gate, Verdict
from nlp.places import PlaceEntry, PlaceIndex
from nlp.train import train, write_rules
from storage.db import create_engine, current_revision, head_revision, session_factory, upgrade
from storage.models import Person, Place, Registration, Unit
from storage.org import LEVEL_NAMES, ROLE_NAMES, OrgError, apply_org, load_org_file
from storage.registrations import open_registrations
from storage.state import open_state

EXIT_ERROR = 2


class CliError(RuntimeError):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_ERROR
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings(getattr(args, "config", None))
        return int(args.run(settings, args) or 0)
    except (ConfigError, OrgError, StartupError, CliError, MenuError) as exc:
        return _fail(str(exc))
    except SQLAlchemyError as exc:
        return _fail(f"数据库错误: {_first_line(exc)}")
    except OSError as exc:
        return _fail(f"无法连接或读写: {exc.strerror or _first_line(exc)}")
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"gridbot: {message}", file=sys.stderr)
    return EXIT_ERROR


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a -c given before the subcommand must not be reset by the subcommand's own default.
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help="配置文件 (默认 ./config.toml，不存在时使用内置演示配置)",
    )
    parser = argparse.ArgumentParser(prog="gridbot", description="社区网格治理微信机器人", parents=[common])
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", parents=[common], help="运行 webhook 服务")
    serve.add_argument(
        "--workers", type=int, default=1, help="服务进程数，共用一个端口 (多于 1 个需要 PostgreSQL + Redis)"
    )
    serve.set_defaults(run=_serve)

    chat = commands.add_parser("chat", parents=[common], help="在终端里扮演微信，与运行中的服务对话")
    chat.add_argument("--as", dest="openid", metavar="OPENID", help="以此 openid 发言 (不填则显示身份菜单)")
    chat.add_argument("--url", default=DEFAULT_URL, help=f"服务器地址 (默认 {DEFAULT_URL})")
    chat.add_argument("--token", help="服务器的 [wechat] token (默认取自配置，演示为 gridbot-demo)")
    chat.set_defaults(run=_chat)

    db = commands.add_parser("db", parents=[common], help="数据库")
    db_commands = db.add_subparsers(title="db commands")
    db_upgrade = db_commands.add_parser("upgrade", parents=[common], help="执行数据库迁移")
    db_upgrade.set_defaults(run=_async(_db_upgrade))

    org = commands.add_parser("org", parents=[common], help="组织架构")
    org_commands = org.add_subparsers(title="org commands")
    org_import = org_commands.add_parser("import", parents=[common], help="导入组织文件 (可重复执行)")
    org_import.add_argument("file")
    org_import.set_defaults(run=_async(_org_import))
    org_show = org_commands.add_parser("show", parents=[common], help="显示组织架构")
    org_show.set_defaults(run=_async(_org_show))
    report = commands.add_parser("report", parents=[common], help="三率统计：响应率、解决率、满意率")
    report.add_argument("--period", help="时段，如 2026-11、2026-W47、2026-11-05、本月、上月 (默认本月)")
    report.add_argument("--unit", help="单位 id (默认全部)")
    report.add_argument("--format", choices=("text", "csv"), default="text")
    report.set_defaults(run=_async(_report))

    dashboard = commands.add_parser("dashboard", parents=[common], help="指挥中心网页")
    dashboard_commands = dashboard.add_subparsers(title="dashboard commands")
    link = dashboard_commands.add_parser(
        "link", parents=[common], help="为管理员生成一次性登录链接 (10 分钟内有效)"
    )
    link.add_argument("--as", dest="openid", metavar="OPENID", required=True, help="管理员的 openid")
    link.set_defaults(run=_async(_dashboard_link))

    qr = commands.add_parser("qr", parents=[common], help="每个地点的永久二维码（扫码报事）与按网格的张贴页")
    qr.add_argument("--unit", help="单位 id：只生成其下网格的地点 (默认全部)")
    qr.add_argument("-o", "--output", required=True, metavar="DIR", help="输出目录：每个网格一个 PDF 和 PNG")
    qr.set_defaults(run=_async(_qr))

    menu = commands.add_parser("menu", parents=[common], help="公众号自定义菜单")
    menu_commands = menu.add_subparsers(title="menu commands")
    menu_set = menu_commands.add_parser("set", parents=[common], help="按 TOML 文件设置菜单")
    menu_set.add_argument("file")
    menu_set.set_defaults(run=_async(_menu_set))
    menu_show = menu_commands.add_parser("show", parents=[common], help="显示当前菜单")
    menu_show.set_defaults(run=_async(_menu_show))
    menu_delete = menu_commands.add_parser("delete", parents=[common], help="删除菜单")
    menu_delete.set_defaults(run=_async(_menu_delete))

    nlp = commands.add_parser("nlp", parents=[common], help="分类器：试分类、评估、训练")
    nlp_commands = nlp.add_subparsers(title="nlp commands")
    classify = nlp_commands.add_parser(
        "classify", parents=[common], help="对每段文字给出类别、置信度、紧急、地点和关键词"
    )
    classify.add_argument("texts", nargs="+", metavar="TEXT")
    classify.add_argument("--rules", help="规则文件 (默认取 [nlp] rules，空则用内置分类)")
    classify.set_defaults(run=_nlp_classify)
    evaluate = nlp_commands.add_parser(
        "eval", parents=[common], help="评估：text,label 评分类器；text,kind 评入口判断"
    )
    evaluate.add_argument("file")
    evaluate.add_argument("--rules", help="规则文件 (默认取 [nlp] rules，空则用内置分类)")
    evaluate.set_defaults(run=_nlp_eval)
    learn = nlp_commands.add_parser(
        "train", parents=[common], help="从带标注的 CSV 学习关键词权重，写出规则文件"
    )
    learn.add_argument("file")
    learn.add_argument("-o", "--output", required=True, help="写出的规则文件")
    learn.add_argument("--merge", action="store_true", help="与手写规则 (--rules 或内置分类) 合并")
    learn.add_argument("--rules", help="合并时使用的手写规则文件")
    learn.set_defaults(run=_nlp_train)
    return parser


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int | None]]


def _async(command: Command) -> Callable[[Settings, argparse.Namespace], int | None]:
    return lambda settings, args: asyncio.run(command(settings, args))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    workers = int(getattr(args, "workers", 1))
    if workers < 1:
        raise CliError("--workers 至少为 1")
    if workers > 1 and (settings.storage.database_url.startswith("sqlite") or not settings.storage.redis_url):
        raise CliError("多个服务进程需要 PostgreSQL 和 Redis (配置 [storage] database_url 与 redis_url)")
    if settings.demo:
        print(
            "演示模式：SQLite ./gridbot.db，进程内状态，演示组织，明文模式令牌 gridbot-demo，"
            f"地址 http://{settings.server.host}:{settings.server.port}/wechat"
        )
    context = multiprocessing.get_context("spawn")
    others = [
        context.Process(target=_run_server, args=(settings, True), daemon=True) for _ in range(workers - 1)
    ]
    for process in others:
        process.start()
    try:
        _run_server(settings, workers > 1)
    finally:
        for process in others:
            process.terminate()
            process.join(10)
    return 0


def _run_server(settings: Settings, reuse_port: bool) -> None:
    """One server process; several share the port through SO_REUSEPORT and the kernel spreads the load."""
    if reuse_port:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
        )
    web.run_app(
        freeze_startup_heap(create_app(settings)),
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        reuse_port=reuse_port or None,
        handler_cancellation=True,  # a client that hangs up (a chat long poll) frees its handler
    )


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    """Play WeChat against a running server; a server that cannot be used is one line and exit 2."""
    token = args.token or settings.wechat.token
    try:
        return asyncio.run(
            run_chat(url=args.url, token=token, org_file=settings.org.file, openid=args.openid)
        )
    except ChatError as exc:
        raise CliError(str(exc)) from None


async def _ready_engine(settings: Settings) -> AsyncEngine:
    """An engine on a schema at head: the embedded SQLite migrates itself, PostgreSQL must be upgraded."""
    engine = create_engine(settings.storage.database_url)
    if settings.storage.database_url.startswith("sqlite"):
        await upgrade(engine)
    elif await current_revision(engine) != head_revision():
        await engine.dispose()
        raise CliError("数据库结构不是最新版本，请先运行 gridbot db upgrade")
    return engine


async def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.storage.database_url)
    try:
        before = await current_revision(engine)
        await upgrade(engine)
        after = await current_revision(engine)
    finally:
        await engine.dispose()
    print(f"数据库已是最新版本 {after}" if before == after else f"数据库已从 {before or '空'} 升级到 {after}")
    return 0


async def _org_import(settings: Settings, args: argparse.Namespace) -> int:
    spec = load_org_file(args.file)  # validated whole before the database is touched
    engine = await _ready_engine(settings)
    try:
        async with session_factory(engine)() as session, session.begin():
            summary = await apply_org(session, spec)
    finally:
        await engine.dispose()
    print(f"已导入 {args.file}: {summary}")
    if summary.changed:
        print(f"运行中的服务将在 {POLL_SECONDS:.0f} 秒内使用新的组织架构，无需重启。")
    return 0


async def _org_show(settings: Settings, args: argparse.Namespace) -> int:
    engine = await _ready_engine(settings)
    try:
        async with session_factory(engine)() as session:
            units = (await session.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.id))).all()
            places = (
                await session.scalars(select(Place).where(Place.active.is_(True)).order_by(Place.id))
            ).all()
            people = (
                await session.scalars(select(Person).where(Person.active.is_(True)).order_by(Person.openid))
            ).all()
            registrations = await open_registrations(session)
    finally:
        await engine.dispose()
    if not units:
        print("尚未导入组织。请运行 gridbot org import FILE")
        return 0
    print(format_org(list(units), list(places), list(people), registrations))
    return 0


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    engine = await _ready_engine(settings)
    try:
        async with session_factory(engine)() as session:
            directory = await Directory.load(session)
            if args.unit and args.unit not in directory.units:
                raise CliError(f"未知的单位: {args.unit}")
            try:
                text = await render_report(
                    session,
                    directory,
                    period=args.period,
                    unit_id=args.unit,
                    fmt=args.format,
                    weights=settings.report.weights,
                )
            except ValueError as exc:
                raise CliError(str(exc)) from None
    finally:
        await engine.dispose()
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


async def _dashboard_link(settings: Settings, args: argparse.Namespace) -> int:
    engine = await _ready_engine(settings)
    try:
        async with session_factory(engine)() as session, session.begin():
            directory = await Directory.load(session)
            if admin_of(directory, args.openid) is None:
                raise CliError(f"{args.openid} 不是社区、街道或区管理员，不能登录指挥中心")
            now = datetime.now(UTC)
            url = await new_login_link(session, args.openid, public_base(settings.server), now)
    finally:
        await engine.dispose()
    print(url)


@contextlib.asynccontextmanager
async def _wechat_api(settings: Settings) -> AsyncIterator[WeChatAPI]:
    """The official account's API as the server uses it (the demo: the demo server's fake), sharing the
    server's access token through its state store; every API failure becomes one CliError line."""
    if settings.demo:
        settings = demo_wechat(settings)
    wechat = settings.wechat
    if not wechat.app_id or not wechat.app_secret:
        raise CliError("需要公众号 [wechat] app_id 与 app_secret (或 GRIDBOT_WECHAT_APP_SECRET)")
    state = open_state(settings.storage.redis_url, prefix=settings.storage.redis_prefix)
    try:
        async with aiohttp.ClientSession() as http:
            api = WeChatAPI(
                http,
                api_base=wechat.api_base,
                app_id=wechat.app_id,
                app_secret=wechat.app_secret,
                state=state,
            )
            try:
                yield api
            except Retryable as exc:
                hint = "；演示模式请先在另一个终端运行 gridbot serve" if settings.demo else ""
                raise CliError(f"无法连接微信接口 ({exc}){hint}") from None
            except WeChatAPIError as exc:
                raise CliError(f"微信接口拒绝了请求: {exc}") from None
    finally:
        await state.close()


async def _qr(settings: Settings, args: argparse.Namespace) -> int:
    engine = await _ready_engine(settings)
    try:
        async with session_factory(engine)() as session:
            directory = await Directory.load(session)
    finally:
        await engine.dispose()
    try:
        places = places_under(directory, args.unit)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not places:
        raise CliError("没有地点可生成二维码。请先运行 gridbot org import FILE")
    async with _wechat_api(settings) as api:
        codes = await make_codes(api, places)
    written = await asyncio.to_thread(write_sheets, directory, codes, Path(args.output))
    for grid, files in written.files.items():
        count = sum(1 for place, _ in codes if place.grid_id == grid)
        print(f"{directory.unit_name(grid)} [{grid}]: {count} 个地点 → {', '.join(str(f) for f in files)}")
    print(f"共 {len(codes)} 个永久二维码，清单见 {Path(args.output) / 'codes.csv'}")
    if written.font is None:
        print(
            "注意：没有找到中文字体，PNG 中的中文会显示为方框（PDF 不受影响）。请安装 fonts-wqy-microhei 或 fonts-noto-cjk。"
        )
    return 0


async def _menu_set(settings: Settings, args: argparse.Namespace) -> int:
    buttons = load_menu(args.file)  # checked whole before anything is sent
    async with _wechat_api(settings) as api:
        await api.create_menu(buttons)
        current = await api.get_menu()
    print(f"菜单已设置（公众号菜单约 5 分钟内在微信中更新）：\n{format_menu(current)}")
    return 0


async def _menu_show(settings: Settings, args: argparse.Namespace) -> int:
    async with _wechat_api(settings) as api:
        print(format_menu(await api.get_menu()))
    return 0


async def _menu_delete(settings: Settings, args: argparse.Namespace) -> int:
    async with _wechat_api(settings) as api:
        await api.delete_menu()
    print("菜单已删除。")
    return 0


def _classifier(settings: Settings, rules: str | None) -> Classifier:
    try:
        return Classifier.load(rules or settings.nlp.rules or None)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _places(settings: Settings, classifier: Classifier) -> PlaceIndex:
    """The place names of `[org] file` (no database needed), taught to the segmenter."""
    if not settings.org.file:
        return PlaceIndex(())
    spec = load_org_file(settings.org.file)
    places = PlaceIndex(
        PlaceEntry(key=name, name=name, aliases=tuple(unit.aliases.get(name, ())), grid=unit.id)
        for unit in spec.units
        for name in unit.places
    )
    classifier.add_words(places.names())
    return places


def _nlp_classify(settings: Settings, args: argparse.Namespace) -> int:
    classifier = _classifier(settings, args.rules)
    places = _places(settings, classifier)
    gate = Gate.load(classifier=classifier)
    for text in args.texts:
        result = classifier.classify(text)
        verdict = gate.check(text, places.spans)
        match = places.find(text)
        place = f"{match.key}{match.detail} ({match.grid})" if match else "—"
        entry = "开工单" if verdict.report else f"不开工单（{verdict.kind}）"
        print(
            f"{text}\n  类别: {result.label}  置信度: {result.confidence:.2f}  紧急: {'是' if result.urgent else '否'}"
            + (f"（{'、'.join(result.urgent_kinds)}）" if result.urgent_kinds else "")
            + f"\n  入口: {entry}  依据: {'、'.join(verdict.reason) or '—'}"
            f"\n  地点: {place}\n  关键词: {'、'.join(result.keywords) or '—'}"
            + (f"  紧急线索: {'、'.join(result.urgent_keywords)}" if result.urgent_keywords else "")
        )
    return 0


def _nlp_eval(settings: Settings, args: argparse.Namespace) -> int:
    classifier = _classifier(settings, args.rules)
    try:
        columns = csv_columns(args.file)
        if "kind" in columns and "label" not in columns:
            places = _places(settings, classifier)
            gate = Gate.load(classifier=classifier)
            report = evaluate_gate(_WithPlaces(gate, places), read_gate_csv(args.file))
            print(format_gate_report(report))
            return 0
        rows = read_labelled_csv(args.file)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(format_report(evaluate(classifier, rows)))
    return 0


class _WithPlaces:
    """The gate with the org's place names, as `evaluate_gate` calls it."""

    def __init__(self, gate: Gate, places: PlaceIndex) -> None:
        self.gate = gate
        self.places = places

    def check(self, text: str) -> Verdict:
        return self.gate.check(text, self.places.spans)


def _nlp_train(settings: Settings, args: argparse.Namespace) -> int:
    try:
        rows = read_labelled_csv(args.file)
        base = _classifier(settings, args.rules) if args.merge else None
        rules = train(rows, base)
        write_rules(rules, args.output)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    labels = [key for key in rules.get("label", {})]
    print(f"已从 {len(rows)} 行学习 {len(labels)} 个类别的关键词，写入 {args.output}")
    return 0


def format_org(
    units: list[Unit], places: list[Place], people: list[Person], registrations: Sequence[Registration] = ()
) -> str:
    """The org as an indented tree: units with their branch, places (aliases) and people, each with its
    source (the org file, or an approved 报到); then the 报到 still waiting for their community."""
    children: dict[str | None, list[Unit]] = {}
    for unit in units:
        children.setdefault(unit.parent_id, []).append(unit)
    places_of: dict[str, list[Place]] = {}
    for place in places:
        places_of.setdefault(place.unit_id, []).append(place)
    people_of: dict[str, list[str]] = {}
    for person in people:
        role = ROLE_NAMES.get(person.role, person.role)
        people_of.setdefault(person.unit_id, []).append(f"{role}: {person.name} ({person.openid}) · 组织文件")
    listed = {person.openid for person in people}
    for r in registrations:
        if r.status == "approved" and r.grid_id and r.openid not in listed:
            role, name = ROLE_NAMES["party_member"], r.name or REGISTERED_NAME
            people_of.setdefault(r.grid_id, []).append(f"{role}: {name} ({r.openid}) · 报到 #{r.id}")
    known = {unit.id for unit in units}
    lines: list[str] = []

    def walk(unit: Unit, depth: int) -> None:
        pad = "  " * depth
        branch = f" · {unit.branch}" if unit.branch else ""
        lines.append(f"{pad}{unit.name} [{unit.id}] ({LEVEL_NAMES.get(unit.level, unit.level)}){branch}")
        for place in places_of.get(unit.id, []):
            aliases = "、".join(a.alias for a in place.aliases)
            lines.append(f"{pad}  地点: {place.name}" + (f" (又称 {aliases})" if aliases else ""))
        for person in people_of.get(unit.id, []):
            lines.append(f"{pad}  {person}")
        for child in children.get(unit.id, []):
            walk(child, depth + 1)

    for root in [u for u in units if u.parent_id is None or u.parent_id not in known]:
        walk(root, 0)
    names = {unit.id: unit.name for unit in units}
    waiting = [r for r in registrations if r.status == "pending"]
    if waiting:
        lines.append("待社区审核的报到:")
    for r in waiting:
        where = names.get(r.grid_id or r.community_id, r.grid_id or r.community_id)
        lines.append(f"  #{r.id} {r.name or REGISTERED_NAME} ({r.openid}) → {where}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
