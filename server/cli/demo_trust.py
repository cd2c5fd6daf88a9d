"""Demo identities for a newcomer's first run: the organisms with keys on disk (a signing key,
and beside it the encryption key their DSN shares are sealed to), a declarant of
the accounting firm whose sign-in the README gives, managing three client companies, and the
firm's first administrator (Primo AD) with a client portfolio."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine

from registry.habilitation.store import HabilitationRefused, HabilitationStore
from registry.kernel.rights import (
    ACCOUNT_SUPPORT,
    AUDIT_READ,
    DSN_DELIVERIES,
    DSN_DEPOSIT,
    NOMENCLATURE_PUBLISH,
    NOMENCLATURE_READ,
    NOTIFY_READ,
    REGISTRY_IMPORT,
    REGISTRY_READ,
    TRACE_WRITE,
)
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.declarant_store import DeclarantStore
from registry.trust.directory_store import DirectoryError, DirectoryStore, KeyKind
from server.cli.demo_data import FIRM_SIREN, FIRM_SIRET
from token_suite.encryption_keys import beside, load_or_create_encryption_key, public_of
from token_suite.keys import load_or_create_private_key, public_bytes

# The README quotes these.
DECLARANT = (FIRM_SIRET, "Martin", "Camille")
ADMINISTRATOR = (FIRM_SIRET, "Durand", "Claire")
# The backbone's own operating team: follows exchanges (audit.read) and helps locked-out users
# (account.support), over every company.
OPERATOR = (siret_of(siren_at(5), 1), "Petit", "Sophie")
# Each demo client company's administrator (SIRET: the company's head office).
CLIENT_ADMINISTRATOR = ("Bernard", "Louis")
PARTNER = ("PARTNER-DEMO", "Site partenaire de démonstration", "http://127.0.0.1:8090")
DECLARANT_PASSWORD = "interops-demo"  # noqa: S105 -- demo data, printed in the README
CLIENT_SIRENS = tuple(siren_at(index) for index in (1, 2, 4))
# The routing rules in registry/dsn/routing_rules/ name the same codes.
# Those that run a system (the sample one) send its spans to the node (trace.write).
ORGANISMS = {
    # Urssaf also publishes reference tables (nomenclatures) in the demo.
    "URSSAF": (
        "Urssaf Île-de-France",
        "URSSAF",
        (
            REGISTRY_READ,
            REGISTRY_IMPORT,
            DSN_DELIVERIES,
            NOMENCLATURE_PUBLISH,
            NOMENCLATURE_READ,
            TRACE_WRITE,
        ),
    ),
    "CNAV": ("Caisse nationale d'assurance vieillesse", "CNAV", (REGISTRY_READ,)),
    "DGFIP": ("Direction générale des finances publiques", "DGFIP", (DSN_DELIVERIES, TRACE_WRITE)),
    "AGIRC-ARRCO": ("Agirc-Arrco", "AGIRC_ARRCO", (DSN_DELIVERIES, TRACE_WRITE)),
    "PREVOYANCE": (
        "Prévoyance exemple (organisme complémentaire)",
        "OC",
        (DSN_DELIVERIES, TRACE_WRITE),
    ),
    "MUTUELLE": (
        "Mutuelle santé exemple (organisme complémentaire)",
        "OC",
        (DSN_DELIVERIES, TRACE_WRITE),
    ),
    "FRANCE-TRAVAIL": ("France Travail", "FRANCE_TRAVAIL", (DSN_DELIVERIES, TRACE_WRITE)),
    "CNAM": ("Caisse nationale de l'assurance maladie", "CNAM", (DSN_DELIVERIES, TRACE_WRITE)),
}

log = logging.getLogger("interops.demo")


def load_demo_trust(engine: Engine, keys_dir: Path, sealer: AESGCM | None = None) -> bool:
    """Adds the demo organisms (keys in `keys_dir`), their rights and the declarant, each unless
    present; True if anything was added."""
    directory = DirectoryStore(engine)
    declarants = DeclarantStore(engine)
    added = False
    for code, (name, kind, rights) in ORGANISMS.items():
        key_file = keys_dir / f"{code}.pem"
        key = load_or_create_private_key(key_file)
        encryption_key = load_or_create_encryption_key(beside(key_file))
        with contextlib.suppress(DirectoryError):
            directory.add_organism(code, name, kind, [f"grpc://{code.lower()}.example:443"])
            added = True
        held = directory.grants_of(code)
        for right in rights:
            if right not in held:
                directory.grant(code, right)
                added = True
        with contextlib.suppress(DirectoryError):
            directory.add_key(code, public_bytes(key), valid_from=0)
        with contextlib.suppress(DirectoryError):
            directory.add_key(code, public_of(encryption_key), valid_from=0,
                              kind=KeyKind.ENCRYPTION)  # fmt: skip
    if not declarants.exists(*DECLARANT):
        perimeter = [(right, siren) for siren in (FIRM_SIREN, *CLIENT_SIRENS)
                     for right in (REGISTRY_READ, DSN_DEPOSIT, NOTIFY_READ)]  # fmt: skip
        declarants.create(*DECLARANT, DECLARANT_PASSWORD, perimeter, sealer=sealer)
        added = True
    with contextlib.suppress(DirectoryError):  # `interops partner-demo` is this site
        directory.add_organism(PARTNER[0], PARTNER[1], "PARTNER_SITE", [PARTNER[2]])
        added = True
    added = _demo_administrator(engine, sealer) or added
    if not declarants.exists(*OPERATOR):  # after the firm's accounts: theirs are ids 1 to 5
        declarants.create(*OPERATOR, DECLARANT_PASSWORD,
                          [(AUDIT_READ, None), (ACCOUNT_SUPPORT, None)], sealer=sealer)  # fmt: skip
        added = True
    if added:
        log.debug("demo identities: organisms %s (keys in %s), declarant of SIRET %s",
                 ", ".join(ORGANISMS), keys_dir, FIRM_SIRET)  # fmt: skip
    return added


def _demo_administrator(engine: Engine, sealer: AESGCM | None) -> bool:
    """The firm's Primo AD, with a portfolio of the client companies' head offices offering
    ATMP, which their administrators gave the firm a mandate for; True if it was added."""
    store = HabilitationStore(engine, sealer=sealer)
    try:
        admin = store.register_company(
            FIRM_SIRET, ADMINISTRATOR[1:], DECLARANT_PASSWORD, request_id="demo-admin"
        )
    except HabilitationRefused:  # registered already, or the firm is not in the registry
        return False
    heads = tuple(siret_of(siren, 1) for siren in CLIENT_SIRENS)
    for head in heads:  # each client company's administrator gives the firm its mandate
        with contextlib.suppress(HabilitationRefused):
            client = store.register_company(head, CLIENT_ADMINISTRATOR, DECLARANT_PASSWORD)
            store.grant_mandate(client, head, FIRM_SIRET[:9])
    with contextlib.suppress(HabilitationRefused):
        store.create_portfolio(admin, "Clients", request_id="demo-portfolio")
        store.change_portfolio(admin, "Clients", add=True, sirets=heads,
                               services=("ATMP", "DUCS"))  # fmt: skip
    return True


def demo_identities(keys_dir: Path) -> list[str]:
    """What `interops serve --demo-data` prints: who to sign in as, and the organisms' keys."""

    def who(identity: tuple[str, str, str]) -> str:
        return f"SIRET {identity[0]}, {identity[1]} {identity[2]}"

    return [
        f"demo identities (password {DECLARANT_PASSWORD}):",
        f"  declarant      {who(DECLARANT)}: deposits DSNs for the firm and 3 client companies",
        f"  administrator  {who(ADMINISTRATOR)}: the firm's accounts and habilitations",
        f"  operator       {who(OPERATOR)}: follows exchanges (/operator, interops audit list)",
        f"  organisms      {', '.join(ORGANISMS)}: keys in {keys_dir}, e.g.",
        f"                 INTEROPS_ORGANISM=URSSAF INTEROPS_KEY_FILE={keys_dir}/URSSAF.pem",
    ]
