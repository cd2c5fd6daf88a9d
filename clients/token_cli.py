"""`interops keys ...` and `interops token ...`: keys and token chains from the command line.

Tokens are shown and read as base64url text; `@FILE` reads one from a file. A chain is of use
only with a proof by the key its last block names: a declarant's chain names the holder key of
`--holder-key FILE` (made at `token issue --declarant`, readable by its owner only), and every
later call with `--token` signs its proof with that key; `token proof` prints the proof header
a REST caller sends (curl -H "interops-proof: ...").
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from clients.text import utc_seconds

if TYPE_CHECKING:  # the parsers are built without them; a handler imports what it calls
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from interops.token.v1 import token_pb2

    from clients.client import Client
    from token_suite.chain import Signer

# --profile: the names of the token.v1 Profile values without PROFILE_ (checked against the enum
# by tests/clients/test_cli_startup.py).
PROFILES = ("portal", "application", "navigation")


def profile_value(name: str) -> int:
    """The Profile value of a --profile name."""
    from interops.token.v1 import token_pb2

    return token_pb2.Profile.Value(f"PROFILE_{name.upper()}")


def read_token(value: str) -> bytes:
    """A token given as base64url text, or as @FILE holding that text."""
    from token_suite.wire import from_text

    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise ValueError(f"{value}: no such file: give a chain as base64url text, or as "
                             "@FILE naming a file that holds that text")  # fmt: skip
        value = path.read_text()
    return from_text(value)


def _private_key(key_file: Path | str, what: str) -> Ed25519PrivateKey:
    """The Ed25519 key of a PEM file; a missing or wrong file is a ValueError that says which
    key to give and where."""
    from token_suite import keys

    path = Path(key_file)
    if not path.is_file():
        raise ValueError(f"{path}: no such key file: give {what}")
    try:
        return keys.read_private_key(path)
    except ValueError:
        raise ValueError(f"{path} holds no Ed25519 private key (PEM): give {what} "
                         "(interops keys generate makes one)") from None  # fmt: skip


def load_signer(organism: str, key_file: Path | str) -> Signer:
    """The organism's signer from its PEM private key file."""
    from token_suite import keys
    from token_suite.chain import Signer

    key = _private_key(key_file, "the organism's private key with --key or $INTEROPS_KEY_FILE")
    return Signer(organism, keys.key_id_of(keys.public_bytes(key)), key)


def holder_signer(key_file: Path | str, create: bool = False) -> Signer:
    """The signer of a holder key file (a declarant's own key, named by its chain); `create`
    makes the file (0600) when it does not exist."""
    from token_suite import keys
    from token_suite.chain import Signer

    path = Path(key_file)
    if create and not path.exists():
        keys.write_private_key(keys.generate(), path)
    key = _private_key(path, "the holder key the chain names with --holder-key or "
                       "$INTEROPS_HOLDER_KEY (token issue --declarant makes it)")  # fmt: skip
    return Signer("", keys.key_id_of(keys.public_bytes(key)), key)


def prover_of(args: argparse.Namespace) -> Signer | None:
    """Who signs the proofs of a command's chain: the holder key (--holder-key), else the
    organism's key (--organism with --key), else nobody."""
    if getattr(args, "holder_key", None):
        return holder_signer(args.holder_key)
    if getattr(args, "organism", "") and getattr(args, "key", None):
        return load_signer(args.organism, args.key)
    return None


def next_holder(client: Client, organism: str, key_id: str = "") -> token_pb2.Party:
    """The next holder of a hop: the organism with the given key, else with its key in use in
    the directory (read unverified: the node or the verifier checks the hop)."""
    from interops.token.v1 import token_pb2

    from clients.token_calls import current_key

    if not key_id:
        directory = token_pb2.Directory.FromString(client.get_directory().payload)
        key_id = current_key(directory, organism, time.time())
        if not key_id:
            raise ValueError(f"{organism} has no key in use in the directory")
    return token_pb2.Party(organism=organism, key_id=key_id)


def parse_grant(text: str) -> token_pb2.Grant:
    """ "right" (everything) or "right:SIREN,SIRET,..." (a perimeter)."""
    from interops.token.v1 import token_pb2

    right, _, perimeter = text.partition(":")
    ids = [part.strip() for part in perimeter.split(",") if part.strip()]
    return token_pb2.Grant(
        right=right, all_establishments=not ids,
        sirens=[i for i in ids if len(i) == 9], sirets=[i for i in ids if len(i) != 9],
    )  # fmt: skip


def _keys_generate(args: argparse.Namespace) -> int:
    from token_suite import keys
    from token_suite.encryption_keys import (
        encryption_key_id,
        generate_encryption_key,
        public_of,
        write_encryption_key,
    )

    if args.out.exists():
        print(f"error: {args.out} exists; not overwriting a key", file=sys.stderr)
        return 2
    if args.kind == "encryption":
        private = generate_encryption_key()
        write_encryption_key(private, args.out)
        public, key_id = public_of(private), encryption_key_id(public_of(private))
    else:
        key = keys.generate()
        keys.write_private_key(key, args.out)
        public, key_id = keys.public_bytes(key), keys.key_id_of(keys.public_bytes(key))
    print(f"private key written to {args.out} (keep it secret)")
    print(f"key id:     {key_id}")
    print(f"public key: {public.hex()}")
    return 0


def _keys_id(args: argparse.Namespace) -> int:
    from token_suite import keys
    from token_suite.encryption_keys import encryption_key_id, public_of, read_encryption_key

    if args.kind == "encryption":
        if not args.file.is_file():
            raise ValueError(f"{args.file}: no such key file")
        print(encryption_key_id(public_of(read_encryption_key(args.file))))
    else:
        print(keys.key_id_of(keys.public_bytes(_private_key(args.file, "a private key (PEM)"))))
    return 0


def _print_blocks(token: bytes) -> None:
    from token_suite import profiles
    from token_suite.chain import inspect

    for index, block in enumerate(inspect(token)):
        print(
            f"block {index}: {block.delegator.organism} -> {block.holder.organism} "
            f"[{profiles.name(block.profile)}] subject={block.subject} "
            f"audience={','.join(block.audience)} "
            f"not_before={utc_seconds(block.not_before)} expires={utc_seconds(block.expires)} "
            f"max_hops={block.max_hops} purpose={block.purpose!r}"
        )
        for grant in block.grants:
            scope = (
                "everything"
                if grant.all_establishments
                else ",".join([*grant.sirens, *grant.sirets])
            )
            print(f"    grant {grant.right}: {scope}")  # fmt: skip


def _token_issue(args: argparse.Namespace, client: Client) -> int:
    from interops.token.v1 import token_pb2

    from token_suite import keys
    from token_suite.wire import to_text

    terms = {
        "audience": args.audience, "grants": [parse_grant(g) for g in args.grant],
        "lifetime_seconds": args.lifetime, "max_hops": args.max_hops, "purpose": args.purpose,
    }  # fmt: skip
    if args.declarant:
        if not args.holder_key:
            print("error: a declarant's chain names its holder key: give --holder-key FILE "
                  "(made when absent)", file=sys.stderr)  # fmt: skip
            return 2
        holder = holder_signer(args.holder_key, create=True)
        terms["holder"] = token_pb2.Party(public_key=keys.public_bytes(holder.key))
        password = os.environ.get("INTEROPS_PASSWORD") or getpass.getpass("password: ")
        profile = profile_value(args.profile or "portal")
        answer = client.sign_in(args.declarant, args.last_name, args.first_name, password,
                                profile=profile, **terms)  # fmt: skip
    else:
        if not (args.organism and args.key):
            print("error: give --declarant SIRET or --organism CODE --key FILE", file=sys.stderr)
            return 2
        if args.holder:
            terms["holder"] = token_pb2.Party(organism=args.holder)
        answer = client.issue_organism_token(load_signer(args.organism, args.key), **terms)
    print(to_text(answer.token))
    return 0


def _token_delegate(args: argparse.Namespace, client: Client) -> int:
    from token_suite.chain import Terms, delegate
    from token_suite.grants import grants_from
    from token_suite.verify import Party
    from token_suite.wire import to_text

    token = read_token(args.token)
    profile = profile_value(args.profile) if args.profile else 0
    holder = next_holder(client, args.to, args.to_key)
    if args.key:  # offline, signed by the current holder
        grants = grants_from(parse_grant(g) for g in args.grant)
        terms = Terms(
            holder=Party(holder.organism, holder.key_id), profile=profile,
            audience=tuple(args.audience),
            grants=grants, lifetime=args.lifetime, max_hops=args.max_hops or None,
            purpose=args.purpose,
        )  # fmt: skip
        print(to_text(delegate(token, load_signer(args.organism, args.key), terms)))
        return 0
    answer = client.delegate_token(
        token, prover_of(args), holder=holder, profile=profile,
        audience=args.audience, grants=[parse_grant(g) for g in args.grant],
        lifetime_seconds=args.lifetime, max_hops=args.max_hops, purpose=args.purpose,
    )  # fmt: skip
    print(to_text(answer.token))
    return 0


def _token_verify(args: argparse.Namespace, client: Client) -> int:
    from token_suite import profiles

    principal = client.verify_token(read_token(args.token), args.audience, prover_of(args))
    expires = utc_seconds(principal.expires)
    print(f"valid for {args.audience}: subject {principal.subject}, "
          f"{profiles.name(principal.profile)}, expires {expires}")  # fmt: skip
    print("chain of responsibility, from the root:")
    for hop in principal.hops:
        purpose = f" for {hop.purpose!r}" if hop.purpose else ""
        print(f"  {hop.index}: {hop.delegator.organism} ({hop.delegator.key_id}) handed it "
              f"to {hop.holder.organism}{purpose}")  # fmt: skip
    for grant in principal.grants:
        scope = (
            "everything" if grant.all_establishments else ",".join([*grant.sirens, *grant.sirets])
        )
        print(f"grant {grant.right}: {scope}")  # fmt: skip
    return 0


def _token_proof(args: argparse.Namespace) -> int:
    from token_suite.chain import sign_proof
    from token_suite.wire import service_of, to_text

    if not args.token:
        print("error: give the chain: --token T (base64url or @FILE)", file=sys.stderr)
        return 2
    prover = prover_of(args)
    if prover is None:
        print("error: give the key the chain names: --holder-key FILE, or --organism CODE "
              "--key FILE", file=sys.stderr)  # fmt: skip
        return 2
    method = "/" + args.method.strip("/")
    if method.count("/") != 2:
        print("error: --method is a gRPC path: /package.Service/Method", file=sys.stderr)
        return 2
    print(to_text(sign_proof(prover, method, service_of(method), read_token(args.token))))
    return 0


def _token_inspect(args: argparse.Namespace) -> int:
    print("NOT VERIFIED: the blocks as they claim to be")
    _print_blocks(read_token(args.token))
    return 0


def _terms_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audience",
        action="append",
        default=[],
        help="service or site the chain is for (repeatable)",
    )
    parser.add_argument(
        "--grant", action="append", default=[], help="RIGHT or RIGHT:SIREN,SIRET,... (repeatable)"
    )
    parser.add_argument("--profile", choices=PROFILES)
    parser.add_argument("--lifetime", type=int, default=0, help="seconds (0: the longest)")
    parser.add_argument("--max-hops", type=int, default=0)
    parser.add_argument("--purpose", default="")  # fmt: skip


def _holder_key_option(parser: argparse.ArgumentParser) -> None:
    """--holder-key after the command too; SUPPRESS: given before it (or from
    $INTEROPS_HOLDER_KEY), the interops option keeps its value."""
    parser.add_argument("--holder-key", type=Path, default=argparse.SUPPRESS,
                        help="the holder key (PEM) a declarant's chain names")  # fmt: skip


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: object,
) -> None:
    """Adds `keys` and `token`; `with_client` wraps a handler that needs a client."""
    keys_parser = commands.add_parser("keys", help="Ed25519 keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    generate = keys_commands.add_parser("generate", help="a new private key in a PEM file")
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--kind", choices=("signing", "encryption"), default="signing",
                          help="signing (Ed25519, the default) or encryption (X25519: what "
                          "your DSN shares are sealed to)")  # fmt: skip
    generate.set_defaults(handler=_keys_generate)
    key_id = keys_commands.add_parser("id", help="the key id of a private key (PEM)")
    key_id.add_argument("file", type=Path)
    key_id.add_argument("--kind", choices=("signing", "encryption"), default="signing")
    key_id.set_defaults(handler=_keys_id)

    token = commands.add_parser("token", help="token chains: issue, delegate, verify, inspect")
    sub = token.add_subparsers(dest="token_command", required=True)
    issue = sub.add_parser("issue", help="a root token after sign-in (password from "
                           "$INTEROPS_PASSWORD or a prompt) or an organism's key")  # fmt: skip
    issue.add_argument("--declarant", metavar="SIRET")
    issue.add_argument("--last-name", default="")
    issue.add_argument("--first-name", default="")
    _holder_key_option(issue)
    issue.add_argument("--holder", help="an organism's chain: the first holder (default: the "
                       "organism itself)")  # fmt: skip
    _terms_options(issue)
    issue.set_defaults(handler=with_client(_token_issue), anonymous=True)  # type: ignore[operator]
    hop = sub.add_parser("delegate", help="append a hop: offline with --organism/--key (the "
                         "holder's), else by the backbone")  # fmt: skip
    hop.add_argument("token", help="base64url text or @FILE")
    hop.add_argument("--to", required=True, help="the next holder's organism code")
    hop.add_argument("--to-key", default="", help="the next holder's key id (default: its key "
                     "in use in the directory)")  # fmt: skip
    _terms_options(hop)
    hop.set_defaults(handler=with_client(_token_delegate))  # type: ignore[operator]
    verify = sub.add_parser("verify", help="verify with the node; show the chain of "
                            "responsibility")  # fmt: skip
    verify.add_argument("token")
    verify.add_argument("--audience", required=True)
    verify.set_defaults(handler=with_client(_token_verify))  # type: ignore[operator]
    proof = sub.add_parser("proof", help="print a proof of possession for one call (the "
                           "interops-proof header of a REST call)")  # fmt: skip
    # SUPPRESS: given before `token proof`, the interops option keeps its value.
    proof.add_argument("--token", default=argparse.SUPPRESS, help="base64url text or @FILE")
    _holder_key_option(proof)
    proof.add_argument("--method", required=True, help="the gRPC path: /package.Service/Method "
                       "(REST /v1/package.Service/Method)")  # fmt: skip
    proof.set_defaults(handler=_token_proof)
    look = sub.add_parser("inspect", help="show the blocks without verifying them")
    look.add_argument("token")
    look.set_defaults(handler=_token_inspect)
