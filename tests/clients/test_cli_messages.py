"""What the command line says when it cannot do what was asked: each reason once, the options
checked before any call with a message that says what to give, never a Python traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.running_node import RunningNode

ANY_SIRET = "73282932000074"


def interops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _told(done: subprocess.CompletedProcess[str], status: int, *says: str) -> None:
    """The command failed with `status`, one `error:` message holding each of `says`."""
    assert done.returncode == status, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("error: ") == 1, done.stderr
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr, done.stderr
    for text in says:
        assert text in done.stderr, done.stderr


def test_an_address_that_names_no_node_is_refused_before_any_call() -> None:
    for address in ("not an address", "127.0.0.1", "127.0.0.1:http", "host:99999"):
        done = interops("--address", address, "registry", "get", ANY_SIRET)
        _told(done, 2, f"--address {address!r}", "$INTEROPS_GRPC_ADDRESS")
        assert "errors resolving" not in done.stderr


def test_an_unreachable_node_is_told_with_what_to_check() -> None:
    done = interops("--address", "127.0.0.1:9", "registry", "get", ANY_SIRET)
    _told(done, 2, "cannot reach the node at 127.0.0.1:9", "--address or $INTEROPS_GRPC_ADDRESS")


def test_a_missing_token_file_says_what_a_token_is(tmp_path: Path) -> None:
    missing = tmp_path / "none.token"
    done = interops("--address", "127.0.0.1:9", "--token", f"@{missing}", "registry", "get",
                    ANY_SIRET)  # fmt: skip
    _told(done, 2, f"@{missing}: no such file", "base64url text, or as @FILE")
    inspected = interops("token", "inspect", f"@{missing}")
    _told(inspected, 2, f"@{missing}: no such file")


def test_a_missing_or_wrong_key_file_says_which_key_to_give(tmp_path: Path) -> None:
    missing = tmp_path / "none.pem"
    done = interops("--address", "127.0.0.1:9", "--organism", "URSSAF", "--key", str(missing),
                    "registry", "get", ANY_SIRET)  # fmt: skip
    _told(done, 2, f"{missing}: no such key file", "--key or $INTEROPS_KEY_FILE")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    wrong = interops("--address", "127.0.0.1:9", "--organism", "URSSAF", "--key", str(garbage),
                     "registry", "get", ANY_SIRET)  # fmt: skip
    _told(wrong, 2, f"{garbage} holds no Ed25519 private key", "interops keys generate")
    holder = interops("--address", "127.0.0.1:9", "--token", "AAAA", "--holder-key",
                      str(missing), "registry", "get", ANY_SIRET)  # fmt: skip
    _told(holder, 2, f"{missing}: no such key file", "--holder-key or $INTEROPS_HOLDER_KEY")
    sealed = interops("--address", "127.0.0.1:9", "--encryption-key", str(missing), "dsn",
                      "download", "X.URSSAF", "--out", str(tmp_path / "share"))  # fmt: skip
    _told(sealed, 2, f"{missing}: no such key file", "--encryption-key")


def test_the_node_s_refusals_say_their_reason_once_and_what_to_give(node: RunningNode) -> None:
    bad = interops("--address", node.address, *node.cli_auth, "registry", "get", "1234567890123X")
    _told(bad, 1, "INVALID_ARGUMENT: ", "siret")
    assert bad.stderr.count("INVALID_ARGUMENT") == 1
    assert bad.stderr.count("does not match") == 1  # the violation, not again below it
    anonymous = interops("--address", node.address, "registry", "get", ANY_SIRET)
    _told(anonymous, 1, "UNAUTHENTICATED TOKEN_MISSING", "--token", "--organism CODE --key FILE")
    malformed = interops("--address", node.address, "--token", "AAAA", "registry", "get",
                         ANY_SIRET)  # fmt: skip
    _told(malformed, 1, "MALFORMED", "`interops token issue` prints")
