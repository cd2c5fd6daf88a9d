"""Nodes started at once on one fresh data volume each create the keys they find missing (the
root and issuer signing keys, the data key, the NIR keyring, an organism's keys): one of them
creates each file, whole, and every node uses that one. Before, a second node failed to start
(the file existed by the time it created it: "file exists"), read a file half written, or
overwrote a signing key the first node already used (its tokens then verified nowhere else)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry.kernel.nir_keyring import NirKeyring
from registry.kernel.sealing import load_or_create_key
from token_suite.encryption_keys import load_or_create_encryption_key
from token_suite.keys import load_or_create_private_key, public_bytes

STARTING = 8


def _signing(path: Path) -> bytes:
    return public_bytes(load_or_create_private_key(path).public_key())


def _keyring(path: Path) -> bytes:
    ring = NirKeyring.load_or_create(path)
    return ring.current.id.encode() + ring.current.hash("1800175123456")


LOADERS: dict[str, Callable[[Path], bytes]] = {
    "signing key": _signing,
    "encryption key": load_or_create_encryption_key,
    "data key": load_or_create_key,
    "NIR keyring": _keyring,
}


ROUNDS = 3  # the race is the operating system's to lose: a few rounds of each


def _path(directory: Path, name: str, round_: int) -> Path:
    return directory / "keys" / f"{name.replace(' ', '-')}-{round_}"


def _start(directory: Path, barrier: Any, results: Any) -> None:
    """One node starting: each key in turn, all nodes at the same point (none finds it yet)."""
    for name in sorted(LOADERS):
        for round_ in range(ROUNDS):
            barrier.wait()
            try:
                results.put((name, round_, LOADERS[name](_path(directory, name, round_)).hex()))
            except Exception as error:  # what the node would have died of
                results.put((name, round_, f"failed: {error!r}"))


def test_nodes_starting_at_once_share_each_key_and_all_start(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(STARTING), context.Queue()
    starting = [context.Process(target=_start, args=(tmp_path, barrier, results))
                for _ in range(STARTING)]  # fmt: skip
    for process in starting:
        process.start()
    found: dict[tuple[str, int], list[str]] = {}
    for _ in range(STARTING * len(LOADERS) * ROUNDS):
        name, round_, outcome = results.get(timeout=120)
        found.setdefault((name, round_), []).append(outcome)
    for process in starting:
        process.join(timeout=60)
    for (name, round_), outcomes in sorted(found.items()):
        assert not [o for o in outcomes if o.startswith("failed")], (name, round_, outcomes[:2])
        assert len(set(outcomes)) == 1, f"{name}: {len(set(outcomes))} keys in round {round_}"
        # The file holds the key they all use; nothing is left half written beside it.
        assert outcomes[0] == LOADERS[name](_path(tmp_path, name, round_)).hex()
        assert _path(tmp_path, name, round_).stat().st_mode & 0o777 == 0o600  # owner's only
    expected = {_path(tmp_path, name, r).name for name in LOADERS for r in range(ROUNDS)}
    assert {path.name for path in (tmp_path / "keys").iterdir()} == expected
