"""`interops serve` (the node, its web adapter, the demo data of a first run) and `interops db
upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pythonjsonlogger.json import JsonFormatter

from registry.kernel.database import current_revision, open_engine, upgrade
from server.cli.demo_data import load_demo_data
from server.cli.demo_trust import demo_identities, load_demo_trust
from server.config import ConfigError, Settings
from server.node import Node
from server.web.app import WebServer


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level",
                                                          "name": "logger"}))  # fmt: skip
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    # A line per migration step with its whole docstring is not for operators: the node says
    # in one line what it migrated (server/node.py).
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def _serve(args: argparse.Namespace) -> int:
    asyncio.run(_run(_settings(), demo_data=args.demo_data))
    return 0


async def _run(settings: Settings, *, demo_data: bool) -> None:
    node = Node(settings)
    await node.start()
    if demo_data:
        keys_dir = settings.data_dir / "demo-keys"
        await asyncio.to_thread(load_demo_data, node.engine)
        await asyncio.to_thread(load_demo_trust, node.engine, keys_dir,
                                node.habilitations.sealer)  # fmt: skip
    print(f"interops: serving on {settings.grpc_address.rsplit(':', 1)[0]}:{node.port}", flush=True)
    web = None
    if settings.http_address:
        web = WebServer(settings, node.internal_port, node.rights, door_secret=node.door_secret,
                        tracer_provider=node.tracer_provider,
                        session_rows=node.web_sessions)  # fmt: skip
        try:
            web_port = await web.start()
        except OSError:
            await node.stop()
            raise
        scheme = "https" if settings.http_tls_cert else "http"
        host = settings.http_address.rpartition(":")[0]
        site = f"{scheme}://{host}:{web_port}"
        print(f"interops: web adapter on {site}", flush=True)
        print(
            f"  sign in: {site}/signin   operator: {site}/operator   REST: {site}/v1/openapi.json"
        )
    if demo_data:
        print("\n".join(demo_identities(settings.data_dir / "demo-keys")), flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    print("interops: draining in-flight calls", flush=True)
    # Both drain at once, within the one grace period (the adapter's calls are the node's).
    await asyncio.gather(*([web.stop()] if web is not None else []), node.stop())


def _db_upgrade(args: argparse.Namespace) -> int:
    engine = open_engine(_settings().effective_database_url)
    upgrade(engine)
    print(f"database at revision {current_revision(engine)}")
    engine.dispose()
    return 0


HANDLERS = {"serve": _serve, "db-upgrade": _db_upgrade}
