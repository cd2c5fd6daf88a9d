"""Making chains: a root block signed by an identity provider, then hops appended by each
holder in turn, offline. Every block names its holder's key: a directory key, or a session key
(a key pair a portal makes for a signed-in person, held in its memory, never listed). Also the
holder's proof of possession for each use, and a look inside a token without verifying it."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from interops.token.v1 import token_pb2

from token_suite import profiles
from token_suite.errors import Reason, TokenError
from token_suite.grants import Grants, grants_from, grants_to_messages
from token_suite.keys import generate, key_id_of, public_bytes
from token_suite.verify import ID_BYTES, NONCE_BYTES, Party
from token_suite.wire import VERSION, block_input, encode, parse_canonical, proof_input


@dataclass(frozen=True)
class Signer:
    """An organism's private key and its id in the directory."""

    organism: str
    key_id: str
    key: Ed25519PrivateKey

    def as_holder(self) -> Party:
        """The Party naming this directory key as holder."""
        return Party(self.organism, self.key_id)


def session_signer(organism: str) -> Signer:
    """A new session key for a signed-in person, held by `organism` (the portal): no directory
    entry; its key id is `key_id_of` its public key, which a proof by it names."""
    key = generate()
    return Signer(organism, key_id_of(public_bytes(key)), key)


def session_holder(session: Signer) -> Party:
    """The Party naming a session key as holder (its raw public key)."""
    return Party(session.organism, public_key=public_bytes(session.key))


@dataclass(frozen=True)
class Terms:
    """What a block says beyond its signer. Empty fields of a hop take the previous block's
    terms; lifetime 0 means the profile's longest. The holder names exactly one key."""

    holder: Party
    profile: int = 0
    audience: tuple[str, ...] = ()
    grants: Grants = field(default_factory=dict)
    lifetime: int = 0
    max_hops: int | None = None
    purpose: str = ""

    def __post_init__(self) -> None:
        if bool(self.holder.key_id) == bool(self.holder.public_key):
            raise TokenError(
                Reason.HOLDER_KEY_REQUIRED, "the holder names one key: key_id or public_key"
            )


def _block(
    signer: Signer, terms: Terms, previous: token_pb2.Block | None, subject: str, now: float
) -> token_pb2.Block:
    profile = terms.profile or (previous.profile if previous else profiles.APPLICATION)
    longest = profiles.MAX_LIFETIME[profile]
    not_before = int(now)
    expires = not_before + min(terms.lifetime or longest, longest)
    if previous is not None:
        expires = min(expires, previous.expires)
    if terms.max_hops is not None:
        max_hops = terms.max_hops
    else:
        max_hops = max(previous.max_hops - 1, 0) if previous else 0
    grants = terms.grants or (grants_from(previous.grants) if previous else {})
    return token_pb2.Block(
        chain_id=previous.chain_id if previous else os.urandom(ID_BYTES),
        subject=subject,
        profile=profile,  # type: ignore[arg-type]
        delegator=token_pb2.Party(organism=signer.organism, key_id=signer.key_id),
        holder=token_pb2.Party(
            organism=terms.holder.organism,
            key_id=terms.holder.key_id,
            public_key=terms.holder.public_key,
        ),
        audience=sorted(terms.audience or (previous.audience if previous else ())),
        grants=grants_to_messages(grants),
        not_before=not_before,
        expires=expires,
        max_hops=max_hops,
        purpose=terms.purpose,
        token_id=os.urandom(ID_BYTES),
    )


def _append(chain: token_pb2.TokenChain, signer: Signer, block: token_pb2.Block) -> bytes:
    index = len(chain.blocks)
    payload = encode(block)
    previous_signature = chain.blocks[-1].signature if index else b""
    signature = signer.key.sign(block_input(index, signer.key_id, payload, previous_signature))
    chain.blocks.add(payload=payload, key_id=signer.key_id, signature=signature)
    return encode(chain)


def issue_root(signer: Signer, subject: str, terms: Terms, now: float | None = None) -> bytes:
    """A one-block token signed by an identity provider."""
    now = time.time() if now is None else now
    block = _block(signer, terms, None, subject, now)
    return _append(token_pb2.TokenChain(version=VERSION), signer, block)


def delegate(token: bytes, signer: Signer, terms: Terms, now: float | None = None) -> bytes:
    """The token with one more hop, signed by its current holder. Nothing is verified here: a
    holder verifies what it received before handing it on."""
    now = time.time() if now is None else now
    chain = parse_canonical(token_pb2.TokenChain(), token, "the token")
    if not chain.blocks:
        raise TokenError("MALFORMED", "the token has no block")
    previous = last_block(chain)
    block = _block(signer, terms, previous, previous.subject, now)
    return _append(chain, signer, block)


def last_block(chain: token_pb2.TokenChain) -> token_pb2.Block:
    """The last block's content, unverified."""
    return parse_canonical(token_pb2.Block(), chain.blocks[-1].payload, "the last block")


def inspect(token: bytes) -> list[token_pb2.Block]:
    """The blocks of a token, parsed but NOT verified: for display only."""
    chain = parse_canonical(token_pb2.TokenChain(), token, "the token")
    return [
        parse_canonical(token_pb2.Block(), signed.payload, "a block", index)
        for index, signed in enumerate(chain.blocks)
    ]


def sign_proof(
    signer: Signer, method: str, audience: str, token: bytes, now: float | None = None
) -> bytes:
    """A proof of possession of the signer's key (a directory key or a session key) for one use:
    a call of `method` on `audience` with `token` (SPEC.md lists each use's inputs)."""
    moment = int(time.time() if now is None else now)
    nonce = os.urandom(NONCE_BYTES)
    token_hash = hashlib.sha256(token).digest()
    signature = signer.key.sign(
        proof_input(signer.key_id, method, audience, moment, nonce, token_hash)
    )
    return encode(
        token_pb2.CallProof(key_id=signer.key_id, time=moment, nonce=nonce, signature=signature)
    )


def grant(right: str, *, sirens: Iterable[str] = (), sirets: Iterable[str] = ()) -> Grants:
    """A grant over the given perimeter, or over everything when none is given."""
    sirens, sirets = tuple(sirens), tuple(sirets)
    message = token_pb2.Grant(
        right=right, all_establishments=not (sirens or sirets), sirens=sirens, sirets=sirets
    )
    return grants_from([message])
