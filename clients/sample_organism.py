"""A small organism system: `interops --organism URSSAF --key K organism run`.

It leases its deliveries (FetchDeliveries with --once, else the StreamDeliveries stream),
downloads each and opens it with its encryption key (the share is sealed to it: see
token_suite/sealed_share.py; --encryption-key, by default the file beside --key), checks the
plaintext against the announced SHA-256, posts a CRM (idempotent: its request id is derived from
the delivery id) and then acknowledges with a receipt signed with its key over the digest of
what it received. Posting before acknowledging means a crash in between leaves the delivery to
be offered again and the CRM is not posted twice.

The CRM is the kind's usual one (60 Urssaf, 92 DGFiP with each employee's PAS rate taken from
the share, 70 Agirc-Arrco, 50 an OC, 40 France Travail, 30 CNAM); its content counts what was
received and names nobody.

With INTEROPS_TRACING_EXPORTER=interops it sends its spans (each delivery handled, and its calls,
in the deposit's trace) to the node's collector with its own credentials (the trace.write
right), so that the node's operators see the whole exchange; OTEL_SERVICE_NAME names it there.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from clients.dsn_cli import encryption_key_of, write_share
from clients.token_cli import load_signer

if TYPE_CHECKING:  # `interops --help` builds this parser without them; `organism run` imports
    from interops.dsn.v1 import dsn_pb2 as pb
    from opentelemetry import trace

    from clients.client import Client
    from token_suite.chain import Signer

log = logging.getLogger("interops.organism")
Handler = Callable[[argparse.Namespace], int]
# The CRM code the sample posts, by organism code (the demo's) or kind.
DELIVERY_SERVICE = "interops.dsn.v1.DeliveryService"
CRM_CODES = {"URSSAF": "60", "DGFIP": "92", "AGIRC-ARRCO": "70", "PREVOYANCE": "50",
             "MUTUELLE": "50", "FRANCE-TRAVAIL": "40", "CNAM": "30"}  # fmt: skip


def pas_rates(share: bytes) -> list[pb.PasRate]:
    """Each employee's withholding-tax rate as declared in a DGFiP share."""
    from interops.dsn.v1 import dsn_pb2 as pb

    from registry.dsn.reader import read_rubrics

    rates: list[pb.PasRate] = []
    nir = ""
    month = ""
    for line in read_rubrics(io.BytesIO(share)):
        if line.rubric == "S20.G00.05.005":
            month = line.value
        elif line.rubric == "S21.G00.30.001":
            nir = line.value
        elif line.rubric == "S21.G00.50.006" and nir:
            rates.append(pb.PasRate(nir=nir, rate=line.value, applies_from=month))
        elif line.rubric == "S21.G00.50.008" and rates and rates[-1].nir == nir:
            rates[-1].rate_id = line.value
    return rates


class SampleOrganism:
    """Handles deliveries for one organism: `signer` signs its receipts, `encryption_key` (raw
    X25519 private key) opens its shares."""

    def __init__(
        self,
        client: Client,
        signer: Signer,
        encryption_key: bytes,
        out_dir: Path | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.client = client
        self.tracer = tracer
        self.signer = signer
        self.encryption_key = encryption_key
        self.out_dir = out_dir
        self.code = CRM_CODES.get(signer.organism, "")

    def handle(self, delivery: pb.Delivery) -> bool:
        """Processes one delivery in the deposit's trace; False when its share does not open or
        its bytes do not match (left unacknowledged)."""
        from opentelemetry import context as otel_context

        from clients.tracing import context_of

        token = otel_context.attach(context_of(delivery.trace_parent))
        try:
            if self.tracer is None:
                return self._handle(delivery)
            attributes = {"interops.deposit_id": delivery.deposit_id,
                          "interops.delivery_id": delivery.id,
                          "interops.organism": self.signer.organism}  # fmt: skip
            with self.tracer.start_as_current_span("organism.handle_delivery",
                                                   attributes=attributes):  # fmt: skip
                return self._handle(delivery)
        finally:
            otel_context.detach(token)

    def _handle(self, delivery: pb.Delivery) -> bool:
        from interops.dsn.v1 import dsn_pb2 as pb

        from token_suite.sealed_share import ShareError

        try:
            share = self.client.download_share(delivery.id, self.encryption_key)
        except ShareError as error:
            log.warning("delivery %s: %s; not acknowledged", delivery.id, error)
            return False
        digest = hashlib.sha256(share).digest()
        if digest != delivery.sha256:
            log.warning("delivery %s: the bytes do not match their SHA-256; not acknowledged",
                        delivery.id)  # fmt: skip
            return False
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_share(self.out_dir / f"{delivery.id}.dsn", share)
        individuals = share.count(b"S21.G00.30.001,")
        if self.code:
            rates = pas_rates(share) if self.code == "92" else []
            self.client.post_return(
                delivery.deposit_id, self.code, pb.RETURN_STATUS_ACCEPTED,
                content=f"CRM {self.code}: {individuals} employees received".encode(),
                content_type="text/plain", pas_rates=rates, request_id=f"crm-{delivery.id}",
            )  # fmt: skip
        self.client.acknowledge_delivery(delivery, self.signer, digest)
        log.info("delivery %s: %d bytes, %d employees, acknowledged", delivery.id, len(share),
                 individuals)  # fmt: skip
        return True

    def run_once(self, lease_seconds: int = 0) -> int:
        """Handles what is pending now; returns how many deliveries were handled."""
        handled = 0
        while batch := self.client.fetch_deliveries(max_deliveries=20, lease_seconds=lease_seconds):
            handled += sum(self.handle(delivery) for delivery in batch)
        return handled

    def run(self, deliveries: Iterable[pb.Delivery]) -> None:
        """Handles deliveries from a stream until it ends."""
        for delivery in deliveries:
            self.handle(delivery)


def _run(args: argparse.Namespace, client: Client) -> int:
    if not args.organism or not args.key:
        print("error: interops organism run needs --organism and --key", file=sys.stderr)
        return 2
    from clients.tracing import exporter_from_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signer = load_signer(args.organism, args.key)
    if exporter_from_env() == "interops":
        return _run_traced(args, signer)
    return _serve(args, SampleOrganism(client, signer, encryption_key_of(args), args.out))


def _run_traced(args: argparse.Namespace, signer: Signer) -> int:
    """`_serve` with the organism's spans sent to the node's collector with its credentials."""
    from clients.client import Client
    from clients.tls import channel_credentials
    from clients.token_credentials import OrganismCredentials
    from clients.tracing import COLLECTOR_SERVICE, InteropsSpanExporter, provider_from_env

    tls = channel_credentials(args)
    exporter = InteropsSpanExporter(
        args.address,
        OrganismCredentials(args.address, signer, (COLLECTOR_SERVICE,), tls=tls),
        tls=tls,
    )
    provider = provider_from_env(f"{signer.organism.lower()}-system", exporter)
    credentials = OrganismCredentials(args.address, signer, (DELIVERY_SERVICE,), tls=tls)
    try:
        with Client(args.address, credentials=credentials, tls=tls,
                    tracer_provider=provider) as client:  # fmt: skip
            tracer = provider.get_tracer("interops.organism") if provider else None
            organism = SampleOrganism(client, signer, encryption_key_of(args), args.out, tracer)
            return _serve(args, organism)
    finally:
        if provider is not None:
            provider.shutdown()  # sends what is left


def _serve(args: argparse.Namespace, organism: SampleOrganism) -> int:
    if args.once:
        print(f"{organism.run_once(args.lease_seconds)} deliveries handled")
        return 0
    while True:  # the stream ends when the node goes away: reconnect
        try:
            organism.run(organism.client.stream_deliveries(lease_seconds=args.lease_seconds))
        except Exception as error:  # a sample keeps running; it says why
            log.warning("stream interrupted (%s); reconnecting", error)
        time.sleep(1.0)


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `organism run`."""
    organism = commands.add_parser("organism", help="a sample organism system")
    sub = organism.add_subparsers(dest="organism_command", required=True)
    run = sub.add_parser("run", help="fetch deliveries, open them (--encryption-key), post "
                         "CRMs, acknowledge with receipts (as --organism with --key)")  # fmt: skip
    run.add_argument("--once", action="store_true", help="handle what is pending, then stop")
    run.add_argument("--out", type=Path, help="keep each share received in this directory")
    run.add_argument("--lease-seconds", type=int, default=0)
    run.set_defaults(handler=with_client(_run))
