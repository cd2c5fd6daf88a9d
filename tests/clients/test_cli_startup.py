"""The command line starts light: its parsers, `interops --help` and every command's --help load
neither gRPC nor protobuf's generated modules, OpenTelemetry, SQLAlchemy, cryptography, tqdm
nor the node; its handlers import what they need when they run. Choices written as plain
strings for that reason are checked here against the enums and tables they name."""

from __future__ import annotations

import json
import subprocess
import sys
import time

HEAVY = ("grpc", "google.protobuf", "opentelemetry", "sqlalchemy", "cryptography", "tqdm",
         "server.node")  # fmt: skip

# Runs `interops --help`, then every command's --help (its path of subcommands), in one fresh
# interpreter, and says which heavy modules were loaded after each.
_PROBE = """
import argparse, contextlib, io, json, sys
from clients import cli

HEAVY = tuple(sys.argv[1].split(","))

def loaded():
    return [h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in sys.modules)]

def paths(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from paths(sub, (*prefix, name))

def helped(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main([*argv, "--help"])
    return out.getvalue()

report = {"root": (helped([]), loaded()), "commands": []}
for path in paths(cli.parser()):
    text = helped(list(path))
    report["commands"].append((" ".join(path), bool(text.strip()), loaded()))
print(json.dumps(report))
"""


def test_help_and_every_command_s_help_load_no_heavy_module() -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HEAVY)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    text, loaded = report["root"]
    assert "usage: interops" in text
    assert loaded == [], f"`interops --help` loaded {loaded}"
    commands = report["commands"]
    assert {"registry get", "dsn returns", "token issue", "serve", "audit list"} <= {
        path for path, _, _ in commands
    }
    for path, printed, loaded in commands:
        assert printed, f"`interops {path} --help` printed nothing"
        assert loaded == [], f"`interops {path} --help` loaded {loaded}"
    print(f"{len(commands)} commands' --help in {time.perf_counter() - started:.2f} s")


def test_interops_help_as_a_user_runs_it() -> None:
    """The installed script's --help, timed for the record (machines are noisy: no bound)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from clients.cli import main; sys.exit(main())",
         "--help"], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert done.returncode == 0 and "usage: interops" in done.stdout, done.stderr
    print(f"interops --help: {elapsed:.3f} s wall")


def test_the_plain_choices_name_what_the_handlers_look_up() -> None:
    """--kind, --profile and dsn generate's choices are plain strings at parse time; each is
    a value of the enum or a key of the table its handler reads."""
    from interops.registry.v1 import registry_pb2
    from interops.token.v1 import token_pb2

    from clients import cli, dsn_cli, token_cli
    from registry.dsn import synth, synth_scenario

    assert set(cli.KINDS.values()) <= set(registry_pb2.StockKind.keys())
    assert cli.KINDS["auto"] == "STOCK_KIND_UNSPECIFIED"
    named = {f"PROFILE_{name.upper()}" for name in token_cli.PROFILES}
    assert named | {"PROFILE_UNSPECIFIED"} == set(token_pb2.Profile.keys())
    assert token_cli.profile_value("portal") == token_pb2.PROFILE_PORTAL
    assert tuple(synth.NATURES) == dsn_cli.NATURES
    assert tuple(synth.BROKEN) == dsn_cli.BROKEN
    assert tuple(synth_scenario.NATURES) == dsn_cli.SCENARIO_NATURES
