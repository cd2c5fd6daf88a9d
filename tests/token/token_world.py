"""A small trust world for token tests and vectors: a portal (the identity provider), two
organisms, a partner site, each with a key derived from a fixed seed, a session key of a
signed-in person held by the portal, and a fixed clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from interops.token.v1 import token_pb2 as t

from token_suite import keys
from token_suite.chain import Signer, Terms, delegate, grant, issue_root, session_holder
from token_suite.directory import TrustDirectory
from token_suite.verify import Party, Verifier

NOW = 1_800_000_000
READ = "registry.read"
ORGANISMS = {
    "PORTAL": t.ORGANISM_KIND_PORTAL,
    "URSSAF": t.ORGANISM_KIND_URSSAF,
    "CNAV": t.ORGANISM_KIND_CNAV,
    "SITE": t.ORGANISM_KIND_PARTNER_SITE,
}


def seeded_key(name: str) -> Ed25519PrivateKey:
    """A private key derived from a name, the same on every run."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


def signer(organism: str, generation: int = 1) -> Signer:
    """The organism's key of that generation."""
    key = seeded_key(f"{organism}-{generation}")
    return Signer(organism, keys.key_id_of(keys.public_bytes(key)), key)


def session() -> Signer:
    """The portal's session key for declarant 42 (fixed seed; no directory entry)."""
    key = seeded_key("session-42")
    return Signer("PORTAL", keys.key_id_of(keys.public_bytes(key)), key)


def holder_of(organism: str) -> Party:
    """`organism` as holder, naming its directory key (generation 1)."""
    return signer(organism).as_holder()


def public_key(s: Signer, valid_from: int = 1, valid_until: int = 0) -> t.PublicKey:
    """The directory entry of a signer's key."""
    return t.PublicKey(
        key_id=s.key_id, organism=s.organism, public_key=keys.public_bytes(s.key),
        valid_from=valid_from, valid_until=valid_until,
    )  # fmt: skip


@dataclass
class World:
    """The organisms, their keys in a directory, and a verifier on a fixed clock."""

    extra_keys: list[t.PublicKey] = field(default_factory=list)

    def directory(self) -> TrustDirectory:
        """The directory: one key per organism, plus the extra ones."""
        organisms = [
            t.Organism(code=code, name=code, kind=kind) for code, kind in ORGANISMS.items()
        ]
        listed = [public_key(signer(code)) for code in ORGANISMS] + self.extra_keys
        return TrustDirectory.build(organisms, listed, expires=NOW + 86400)

    def verifier(self, **options: object) -> Verifier:
        """A verifier of this world at NOW."""
        return Verifier(self.directory(), clock=lambda: NOW, **options)  # type: ignore[arg-type]


def portal_root(
    holder: str = "URSSAF",
    *,
    max_hops: int = 5,
    audience: tuple[str, ...] = ("svc.a", "svc.b"),
    sirens: tuple[str, ...] = ("123456782", "732829320"),
    profile: int = t.PROFILE_PORTAL,
    now: float = NOW,
) -> bytes:
    """A root block issued by the portal to `holder` for declarant 42 (holder "PORTAL": the
    person's session key)."""
    party = session_holder(session()) if holder == "PORTAL" else holder_of(holder)
    terms = Terms(
        holder=party, profile=profile, audience=audience,
        grants=grant(READ, sirens=sirens), max_hops=max_hops, purpose="sign-in",
    )  # fmt: skip
    return issue_root(signer("PORTAL"), "declarant:42", terms, now)


def hop(token: bytes, by: str, to: str, now: float = NOW, **terms: object) -> bytes:
    """The token with one more hop from `by` to `to`."""
    return delegate(token, signer(by), Terms(holder=holder_of(to), **terms), now)  # type: ignore[arg-type]


def five_hops() -> bytes:
    """Five hops, each a signed block: PORTAL → URSSAF → CNAV → SITE → URSSAF → CNAV."""
    token = portal_root()
    for by, to in (("URSSAF", "CNAV"), ("CNAV", "SITE"), ("SITE", "URSSAF"), ("URSSAF", "CNAV")):
        token = hop(token, by, to, purpose=f"{by} to {to}")
    return token
