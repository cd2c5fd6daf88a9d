"""Shares sealed for their organism (issue 18, point 4), through a real node: organisms publish
encryption keys in the directory; a share on disk is sealed to its organism's current key, so
neither the node's own key nor a look at the disk reads it; the node streams it as stored; the
sample organism and the command line open it with the organism's private key, and the receipt
they sign over the plaintext is accepted.

The node's pipeline is stopped here: each delivery is stored by hand, its share written with
the node's DepositFiles.share_writer, as the pipeline does for every organism concerned.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from clients.client import Client
from clients.errors import NotFound, PermissionDenied
from clients.sample_organism import SampleOrganism
from registry.dsn.deposit_store import (
    DepositFiles,
    NoEncryptionKey,
    RoutedShare,
    delivery_id,
)
from registry.kernel.blob_store import DatabaseBlobs, FileBlobs
from registry.kernel.clock import now_ms
from registry.kernel.schema import sealed_file_chunks
from registry.kernel.sealing import SealError
from registry.trust.directory_store import DirectoryStore, KeyKind
from tests.blob_layers import layers
from tests.dsn import stored_shares as by_hand
from tests.running_node import RunningNode, provision_encryption_key
from token_suite.chain import Signer
from token_suite.directory import open_directory
from token_suite.encryption_keys import encryption_key_id, public_of, write_encryption_key
from token_suite.errors import TokenError
from token_suite.keys import public_bytes, write_private_key
from token_suite.receipts import receipt_valid
from token_suite.sealed_share import ShareError, ShareFault, open_share

# A share holds NIRs and names: the synthetic DSN's first employee.
PLAIN = by_hand.PLAIN
NIR = next(line for line in PLAIN.split(b"\n") if line.startswith(b"S21.G00.30.001"))[16:29]
NAME = next(line for line in PLAIN.split(b"\n") if line.startswith(b"S21.G00.30.002"))[16:-2]


@pytest.fixture(scope="module")
def quiet(node: RunningNode) -> RunningNode:
    """The module's node with its pipeline stopped: deliveries are stored by the tests."""
    node.run(node.node.pipeline.stop())
    return node


@pytest.fixture(scope="module")
def urssaf(quiet: RunningNode) -> tuple[Signer, bytes]:
    """URSSAF with a signing key (right dsn.deliveries) and an encryption key (private)."""
    signer = quiet.organism("URSSAF", "URSSAF", rights=("dsn.deliveries",))
    return signer, provision_encryption_key(quiet.node.engine, "URSSAF")


def _traces(files: DepositFiles, prefix: str) -> list[str]:
    """What any store holds of the shares whose delivery ids start with `prefix`, whole or
    not: files (NAME.part too) on disk, rows in the database."""
    found: set[str] = set()
    for store in layers(files.blobs):
        if isinstance(store, FileBlobs):
            found |= {f"shares/{p.name}" for p in (store.root / "shares").glob(f"{prefix}*")}
        elif isinstance(store, DatabaseBlobs):
            with store.engine.connect() as connection:
                found |= set(connection.execute(
                    select(sealed_file_chunks.c.name)
                    .where(sealed_file_chunks.c.name.startswith(f"shares/{prefix}"))
                ).scalars())  # fmt: skip
    return sorted(found)


def test_the_directory_publishes_encryption_keys_apart_from_signing_keys(
    quiet: RunningNode,
) -> None:
    store = DirectoryStore(quiet.node.engine)
    quiet.organism("SEALCO", "OC")
    first = provision_encryption_key(quiet.node.engine, "SEALCO")
    first_id = encryption_key_id(public_of(first))
    with Client(quiet.address) as anonymous:
        signed = anonymous.get_directory().SerializeToString()
    trust = quiet.node.trust
    directory = open_directory(signed, {trust.root_key_id: trust.root_key.public_key()})
    entry = directory.encryption_keys[first_id]
    assert (entry.organism, entry.public) == ("SEALCO", public_of(first))
    assert directory.key(first_id) is None  # never a signing key
    assert first_id.startswith("x25519:")
    # The share is sealed to the newest key in use; a retired one, or one not started, is not.
    assert store.current_encryption_key("SEALCO") == entry
    second = os.urandom(32)
    second_id = store.add_key("SEALCO", public_of(second), valid_from=1, kind=KeyKind.ENCRYPTION)
    later = store.add_key("SEALCO", public_of(os.urandom(32)), valid_from=2**40,
                          kind=KeyKind.ENCRYPTION)  # fmt: skip
    assert store.current_encryption_key("SEALCO").key_id == second_id  # type: ignore[union-attr]
    store.retire_key(second_id)
    assert store.current_encryption_key("SEALCO").key_id == first_id  # type: ignore[union-attr]
    assert later != first_id
    with pytest.raises(TokenError) as small:
        store.add_key("SEALCO", bytes(32), kind=KeyKind.ENCRYPTION)
    assert small.value.reason == "BAD_KEY"


def test_a_share_on_disk_is_sealed_to_its_organisms_key_and_the_node_cannot_read_it(
    quiet: RunningNode, urssaf: tuple[Signer, bytes]
) -> None:
    files = by_hand.shares_of(quiet)
    _, private = urssaf
    wanted = "deposit-on-disk.URSSAF"
    writer = files.share_writer(wanted, "URSSAF")
    assert writer.key_id == encryption_key_id(public_of(private))
    writer.write(PLAIN[:1000])
    assert not files.exists(files.share(wanted))  # written aside, put in place whole on close
    writer.write(PLAIN[1000:])
    writer.close()
    assert (writer.size, writer.sha256) == (len(PLAIN), hashlib.sha256(PLAIN).digest())
    stored = files.blobs.read_bytes(files.share(wanted))
    assert _traces(files, wanted) == [files.share(wanted)]  # nothing aside is left
    for clear in (NIR, NAME, b"S21.G00.30.001", b"S10.G00"):
        assert clear not in stored
    with pytest.raises(SealError):  # the node's own data key opens nothing
        b"".join(files.read(files.share(wanted)))
    assert b"".join(open_share([stored], wanted, private)) == PLAIN
    with pytest.raises(ShareError):
        b"".join(open_share([stored], "deposit-elsewhere.URSSAF", private))
    dropped = files.share_writer("deposit-dropped.URSSAF", "URSSAF")
    dropped.write(PLAIN)
    dropped.discard()
    assert not _traces(files, "deposit-dropped")


def test_an_organism_without_an_encryption_key_gets_no_share(quiet: RunningNode) -> None:
    quiet.organism("NOKEY", "OC", rights=("dsn.deliveries",))
    files = by_hand.shares_of(quiet)
    with pytest.raises(NoEncryptionKey) as missing:
        files.share_writer("deposit-x.NOKEY", "NOKEY")
    assert missing.value.organism == "NOKEY"
    assert not _traces(files, "deposit-x.NOKEY")


def test_the_sample_organism_opens_its_share_and_its_receipt_over_the_plaintext_is_accepted(
    quiet: RunningNode, urssaf: tuple[Signer, bytes]
) -> None:
    signer, private = urssaf
    wanted = by_hand.routed(quiet, "URSSAF")
    with by_hand.organism_client(quiet, signer) as system:
        delivery = by_hand.leased(system, wanted)
        assert delivery.sealed_for_key_id == encryption_key_id(public_of(private))
        assert delivery.sha256 == hashlib.sha256(PLAIN).digest() and delivery.size == len(PLAIN)
        # The node streams the share as it stores it: sealed.
        assert system.download_delivery(wanted) == by_hand.stored(quiet, wanted)
        assert system.download_share(wanted, private) == PLAIN
        # An encryption key signs no receipt.
        with pytest.raises(PermissionDenied) as not_signing:
            system.acknowledge_delivery(
                delivery, Signer("URSSAF", delivery.sealed_for_key_id, signer.key)
            )
        assert not_signing.value.reason == "UNKNOWN_RECEIPT_KEY"
        assert SampleOrganism(system, signer, private).handle(delivery)
        done = quiet.node.deposits.delivery(wanted)
        found = quiet.node.deposits.returns_for("declarant:test", 0, 100, delivery.deposit_id)
        returns = [(r.kind, r.code) for r in found]
    assert done is not None and done.state == "ACKNOWLEDGED"
    assert returns == [("CCO", ""), ("CRM", "60")]
    assert done.receipt_key_id == signer.key_id and done.receipt_signature is not None
    assert receipt_valid(public_bytes(signer.key), wanted, hashlib.sha256(PLAIN).digest(),
                         done.receipt_signature)  # fmt: skip


def test_a_share_moved_onto_another_delivery_is_not_acknowledged(
    quiet: RunningNode, urssaf: tuple[Signer, bytes]
) -> None:
    signer, private = urssaf
    files = by_hand.shares_of(quiet)
    first, second = by_hand.routed(quiet, "URSSAF", b"first share"), by_hand.routed(quiet, "URSSAF")
    swap = files.blobs.writer(files.share(second))  # an operator's swap
    swap.write(files.blobs.read_bytes(files.share(first)))
    swap.commit()
    with by_hand.organism_client(quiet, signer) as system:
        delivery = by_hand.leased(system, second)
        with pytest.raises(ShareError) as moved:
            system.download_share(second, private)
        assert moved.value.fault == ShareFault.ALTERED
        assert not SampleOrganism(system, signer, private).handle(delivery)
    assert quiet.node.deposits.delivery(second).state == "SENT"  # type: ignore[union-attr]


def test_a_share_routed_before_sealing_comes_in_clear(
    quiet: RunningNode, urssaf: tuple[Signer, bytes]
) -> None:
    signer, private = urssaf
    store, files = quiet.node.deposits, by_hand.shares_of(quiet)
    deposit_id = by_hand.validated(quiet, PLAIN)
    wanted = delivery_id(deposit_id, "URSSAF")
    with files.writer(files.share(wanted)) as old:  # the node's key, as before
        old.write(PLAIN)
    store.record_routing(deposit_id, [RoutedShare("URSSAF", old.size, old.sha256)])
    with by_hand.organism_client(quiet, signer) as system:
        assert by_hand.leased(system, wanted).sealed_for_key_id == ""
        assert system.download_share(wanted, private) == PLAIN


def _interops(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
    )  # fmt: skip


def test_the_command_line_opens_with_the_key_beside_the_signing_key_and_acknowledges(
    quiet: RunningNode, urssaf: tuple[Signer, bytes], tmp_path: Path
) -> None:
    signer, private = urssaf
    key_file = tmp_path / "keys" / "URSSAF.pem"
    write_private_key(signer.key, key_file)
    write_encryption_key(private, tmp_path / "keys" / "URSSAF.x25519.pem")
    wanted = by_hand.routed(quiet, "URSSAF")
    auth = ("--address", quiet.address, "--organism", "URSSAF", "--key", str(key_file))
    listed = _interops(*auth, "dsn", "deliveries")
    assert listed.returncode == 0, listed.stderr
    assert f"{wanted}  01  {len(PLAIN)} bytes" in listed.stdout
    assert f"sealed for {encryption_key_id(public_of(private))}" in listed.stdout
    out = tmp_path / "share.dsn"
    done = _interops(*auth, "dsn", "download", wanted, "--out", str(out), "--acknowledge")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == PLAIN and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"sha256 {hashlib.sha256(PLAIN).hexdigest()}" in done.stdout
    assert "ACKNOWLEDGED" in done.stdout
    # Another key (given explicitly) does not open it, and says which key it wants.
    other = tmp_path / "other.x25519.pem"
    write_encryption_key(os.urandom(32), other)
    refused = _interops(*auth, "--encryption-key", str(other), "dsn", "download", wanted,
                        "--out", str(tmp_path / "again.dsn"))  # fmt: skip
    assert refused.returncode != 0
    assert encryption_key_id(public_of(private)) in refused.stderr
    assert NIR.decode() not in refused.stderr + refused.stdout


def test_an_operator_publishes_an_organisms_encryption_key(
    quiet: RunningNode, database_url: str, tmp_path: Path
) -> None:
    on_db = {"INTEROPS_DATABASE_URL": database_url, "INTEROPS_DATA_DIR": str(tmp_path)}
    key_file = tmp_path / "acme.x25519.pem"
    made = _interops("keys", "generate", "--kind", "encryption", "--out", str(key_file))
    assert made.returncode == 0 and "key id:     x25519:" in made.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _interops("directory", "add-organism", "ACME-SEALED", "--name", "Acme", "--kind",
                     "OC", **on_db).returncode == 0  # fmt: skip
    added = _interops("directory", "add-key", "ACME-SEALED", "--kind", "encryption",
                      "--key-file", str(key_file), **on_db)  # fmt: skip
    assert added.returncode == 0, added.stderr
    key_id = added.stdout.split()[2]
    assert key_id.startswith("x25519:") and key_id in _interops("directory", "show",
                                                                **on_db).stdout  # fmt: skip
    current = DirectoryStore(quiet.node.engine).current_encryption_key("ACME-SEALED")
    assert current is not None and current.key_id == key_id


# Last: it purges what the module's other tests left acknowledged.
def test_files_past_retention_go_once_nothing_of_them_is_owed(
    quiet: RunningNode, urssaf: tuple[Signer, bytes]
) -> None:
    signer, private = urssaf
    owed, done = by_hand.routed(quiet, "URSSAF"), by_hand.routed(quiet, "URSSAF")
    with by_hand.organism_client(quiet, signer) as system:
        assert SampleOrganism(system, signer, private).handle(by_hand.leased(system, done))
    files, pipeline = by_hand.shares_of(quiet), quiet.node.pipeline
    assert files.exists(files.share(done)) and files.exists(files.share(owed))
    assert pipeline.purge(now_ms() - 3_600_000) == 0  # finished too recently
    assert pipeline.purge(now_ms() + 1) >= 1
    assert not files.exists(files.share(done))
    assert files.exists(files.share(owed))  # not acknowledged: still owed, kept
    assert quiet.node.deposits.purged(done.rsplit(".", 1)[0])
    assert not quiet.node.deposits.purged(owed.rsplit(".", 1)[0])
    with by_hand.organism_client(quiet, signer) as system:
        with pytest.raises(NotFound) as gone:
            system.download_delivery(done)
        assert gone.value.reason == "SHARE_PURGED"
        assert system.download_share(owed, private) == PLAIN
    assert pipeline.purge(now_ms() + 1) == 0  # each deposit purged once
