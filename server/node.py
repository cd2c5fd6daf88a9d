"""The backbone node: one grpc.aio server hosting every service, health and reflection.

Interceptors run in this order: OpenTelemetry tracing (W3C context from metadata), then
authentication of token chains, then validation of requests against the contracts, then mapping
of errors to rich statuses.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from interops.audit.v1 import audit_pb2, audit_pb2_grpc
from interops.dsn.v1 import dsn_pb2, dsn_pb2_grpc
from interops.habilitation.v1 import (
    account_pb2,
    account_pb2_grpc,
    habilitation_pb2,
    habilitation_pb2_grpc,
)
from interops.mandate.v1 import mandate_pb2, mandate_pb2_grpc
from interops.nomenclature.v1 import nomenclature_pb2, nomenclature_pb2_grpc
from interops.notify.v1 import notify_pb2, notify_pb2_grpc
from interops.operation.v1 import operation_pb2, operation_pb2_grpc
from interops.registry.v1 import registry_pb2, registry_pb2_grpc
from interops.relations.v1 import relations_pb2, relations_pb2_grpc
from interops.token.v1 import token_service_pb2, token_service_pb2_grpc
from interops.trace.v1 import trace_pb2, trace_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc

from registry.audit.store import AuditStore
from registry.dsn.deposit_store import DepositFiles, DepositStore
from registry.dsn.routing import load_rules
from registry.habilitation.bulk import BulkQueue
from registry.habilitation.recovery import AccountRecovery, decoy_key
from registry.habilitation.store import HabilitationStore
from registry.kernel.blob_store import open_blob_store
from registry.kernel.change_feed import BULK_FILE, DSN_WORK, NOTIFY_SEND, ChangeFeed
from registry.kernel.database import current_revision, open_engine, upgrade
from registry.kernel.nir_keyring import NirKeyring
from registry.kernel.rights import TRACE_WRITE
from registry.kernel.sealing import load_or_create_key
from registry.mandate.bank_reference import BankReference
from registry.mandate.store import MandateStore
from registry.nomenclature.store import NomenclatureStore
from registry.notify.store import NotifyStore
from registry.operation.store import OperationStore
from registry.rcd.store import RcdStore
from registry.relations.store import RelationsStore
from registry.trace.store import TraceStore
from registry.trust.declarant_store import DeclarantStore
from registry.trust.sign_in_limits import SignInLimits
from registry.trust.web_session_store import WebSessionStore
from server.audit.journal import AuditInterceptor, AuditJournal, digest_key
from server.audit.service import AuditService
from server.config import Settings
from server.dsn.delivery_service import DeliveryService
from server.dsn.deposit_service import DepositService
from server.dsn.pipeline import DsnPipeline
from server.habilitation.account_service import AccountService
from server.habilitation.bulk_worker import BulkWorker
from server.habilitation.service import HabilitationService
from server.mandate.service import MandateService
from server.nomenclature.service import NomenclatureService
from server.notify.dispatch import NotifyDispatcher
from server.notify.service import NotificationService
from server.notify.smtp import mail_text
from server.notify.topic_notices import TopicNotices
from server.operation.service import OperationService
from server.rcd.establishment_cache import EstablishmentCache
from server.rcd.import_jobs import ImportJobs
from server.rcd.service import RegistryService
from server.relations.service import RelationsService
from server.rpc.auth_interceptor import AuthInterceptor, method_rights
from server.rpc.client_address import new_door_secret
from server.rpc.error_interceptor import ErrorInterceptor
from server.rpc.health import NodeHealth
from server.rpc.telemetry import instrument_engine, tracer_provider, tracing_interceptor
from server.rpc.validation_interceptor import ValidationInterceptor
from server.token.service import TokenService
from server.token.trust import NodeTrust
from server.trace import otlp_service
from server.trace.keeper import SpanKeeper, TraceKeeper
from server.trace.service import TraceQueryService

log = logging.getLogger("interops.node")

SERVICES = (
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
    operation_pb2.DESCRIPTOR.services_by_name["OperationService"].full_name,
    token_service_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name,
    dsn_pb2.DESCRIPTOR.services_by_name["DepositService"].full_name,
    dsn_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
    notify_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name,
    nomenclature_pb2.DESCRIPTOR.services_by_name["NomenclatureService"].full_name,
    relations_pb2.DESCRIPTOR.services_by_name["RelationsService"].full_name,
    habilitation_pb2.DESCRIPTOR.services_by_name["HabilitationService"].full_name,
    account_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    trace_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
    mandate_pb2.DESCRIPTOR.services_by_name["MandateService"].full_name,
)
# Methods of third-party contracts, which cannot carry our access option: their right here.
THIRD_PARTY_RIGHTS = {
    # The standard OTLP collector: organisms' systems send their spans, so that an operator
    # sees an exchange whole; only holders of trace.write (organisms), each span marked as
    # theirs.
    otlp_service.EXPORT: TRACE_WRITE,
}
# Services whose calls the audit journal does not record (no exchange between parties).
UNAUDITED = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
    # Spans arriving: telemetry, not an exchange (and as frequent as organisms export).
    otlp_service.SERVICE,
)
# Room for a 1 MiB upload chunk and a 1,000-establishment batch answer.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# Threads for blocking work (database, files): with the pipeline's own (server/dsn/pipeline.py
# PARALLEL, 6) and the mandate extractions' (2), fewer than the connections the pool lends (24:
# registry/kernel/database.py), so none waits long for one.
IO_THREADS = 12


class Node:
    """A running backbone node; `start` migrates the database and opens the port."""

    def __init__(
        self,
        settings: Settings,
        extra_handlers: Sequence[Any] = (),
        extra_rights: Mapping[str, str] | None = None,
        extra_unaudited: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        # The right each method needs, as its contract declares it: a method that declares
        # none stops the node here (fail closed). `extra_rights` covers handlers outside the
        # contracts (tests, benchmarks), by service or method.
        self.rights = method_rights(SERVICES)
        self.engine = open_engine(settings.effective_database_url)
        # What changed in the database, whichever node wrote it: followed streams and the
        # workers wait for it rather than polling (registry/kernel/change_feed.py).
        self.changes = ChangeFeed(self.engine)
        # What the web adapter this process starts (server/web/app.py) sends with the address of
        # each client it calls for; nobody else knows it (server/rpc/client_address.py).
        self.door_secret = new_door_secret()
        # Every sign-in door counts its attempts here (in the database: shared by every node).
        self.sign_in_limits = SignInLimits(self.engine, settings.sign_in_attempts_a_minute)
        self.trust = NodeTrust(self.engine, settings)
        self.tracer_provider = tracer_provider(settings.service_name, settings.tracing_exporter)
        if settings.trace_statements:
            instrument_engine(self.engine, self.tracer_provider)
        self.health = NodeHealth()
        self.operations = OperationStore(self.engine)
        # This process among the nodes sharing the database (whose work it claims).
        self.instance = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Seals deposited files, routed shares, returns, IBANs and sessions at rest.
        data_key = load_or_create_key(settings.data_dir / "keys" / "data.key")
        self.server = self._grpc_server(
            {**self.rights, **THIRD_PARTY_RIGHTS, **(extra_rights or {})}, extra_unaudited,
            digest_key(data_key),
        )  # fmt: skip
        # The browser sessions of the web adapter `interops serve` runs beside this node, in the
        # database every node shares: a browser may reach any node.
        self.web_sessions = WebSessionStore(self.engine, AESGCM(data_key))
        rcd = self._serve_registry(settings)
        notices = self._serve_notifications(settings)
        self._serve_dsn(settings, data_key, notices)
        nomenclature_pb2_grpc.add_NomenclatureServiceServicer_to_server(
            NomenclatureService(NomenclatureStore(self.engine), notices), self.server
        )
        self._serve_habilitations(settings, data_key)
        self._serve_mandates(settings, rcd, data_key)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(
            AuditService(self.audit_store, self.journal), self.server
        )
        self.trace_keeper = self._serve_traces(settings)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME],
            self.server,
        )  # fmt: skip
        self.server.add_generic_rpc_handlers(tuple(extra_handlers))
        self.port = self.internal_port = 0

    def _grpc_server(
        self, rights: Mapping[str, str | None], unaudited: Sequence[str], digests: bytes
    ) -> grpc.aio.Server:
        """The server and its interceptors, with this process's audit journal (a hash chain per
        node process)."""
        journal = f"{self.trust.root_key_id}/{int(time.time())}/{uuid.uuid4().hex[:8]}"
        self.audit_store = AuditStore(self.engine, journal)
        self.journal = AuditJournal(
            self.audit_store, self.trust.root_key, self.trust.root_key_id, digest_key=digests,
            checkpoint_records=self.settings.audit_checkpoint_records,
            checkpoint_seconds=self.settings.audit_checkpoint_seconds,
        )  # fmt: skip
        return grpc.aio.server(
            interceptors=[
                tracing_interceptor(self.tracer_provider),
                AuditInterceptor(self.journal, (*UNAUDITED, *unaudited)),
                AuthInterceptor(self.trust, rights),
                ValidationInterceptor(),
                ErrorInterceptor(),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )

    def _serve_registry(self, settings: Settings) -> RcdStore:
        """The RCD (its imports, its establishment cache), operations and token issuance."""
        store = RcdStore(self.engine)
        self.imports = ImportJobs(
            self.engine, self.operations, settings.data_dir / "uploads", settings.max_import_bytes
        )
        self.cache = EstablishmentCache(store, settings.cache_entries, settings.feed_poll_seconds,
                                        changes=self.changes)  # fmt: skip
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryService(store, self.imports, self.cache, settings.feed_poll_seconds,
                            changes=self.changes),
            self.server,
        )  # fmt: skip
        operation_pb2_grpc.add_OperationServiceServicer_to_server(
            OperationService(self.operations, settings.feed_poll_seconds, changes=self.changes),
            self.server,
        )
        token_service_pb2_grpc.add_TokenServiceServicer_to_server(
            TokenService(self.trust, DeclarantStore(self.engine, self.sign_in_limits),
                         self.door_secret, settings.link_idle_months),
            self.server,
        )  # fmt: skip
        return store

    def _serve_notifications(self, settings: Settings) -> TopicNotices:
        """Notifications and their dispatcher; the notices other services send through it."""
        self.notify_store = NotifyStore(self.engine)
        self.dispatcher = NotifyDispatcher(
            self.notify_store, settings.mail, settings.feed_poll_seconds,
            backoff_seconds=settings.notify_backoff_seconds,
            max_attempts=settings.notify_max_attempts,
            tracer=self.tracer_provider.get_tracer("interops.notify"),
            claim_seconds=settings.claim_seconds,
        )  # fmt: skip
        notify_pb2_grpc.add_NotificationServiceServicer_to_server(
            NotificationService(
                self.notify_store, self.dispatcher, settings.feed_poll_seconds, changes=self.changes
            ),
            self.server,
        )
        return TopicNotices(self.notify_store, self.dispatcher)

    def _serve_dsn(self, settings: Settings, data_key: bytes, notices: TopicNotices) -> None:
        """Deposits, their pipeline and deliveries; the relations the deposits reveal."""
        self.deposits = DepositStore(self.engine, data_key)
        # Shares are sealed to their organism's current encryption key in the directory.
        # Kept in the database every node shares when it is PostgreSQL (INTEROPS_SEALED_FILES).
        files = DepositFiles(
            open_blob_store(self.engine, settings.data_dir / "dsn", settings.sealed_files),
            data_key, self.trust.directory.current_encryption_key,
        )  # fmt: skip
        rules_dir = Path(settings.routing_rules_dir) if settings.routing_rules_dir else None
        tracer = self.tracer_provider.get_tracer("interops.dsn")
        self.relations = RelationsStore(
            self.engine, NirKeyring.load_or_create(settings.nir_keyring_path),
            settings.link_idle_months,
        )  # fmt: skip
        relations_pb2_grpc.add_RelationsServiceServicer_to_server(
            RelationsService(self.relations), self.server
        )
        self.pipeline = DsnPipeline(
            self.deposits, files, load_rules(rules_dir), settings.feed_poll_seconds, tracer,
            relations=self.relations, node=self.instance,
            retention_days=settings.dsn_retention_days, claim_seconds=settings.claim_seconds,
        )  # fmt: skip
        dsn_pb2_grpc.add_DepositServiceServicer_to_server(
            DepositService(self.deposits, files, self.pipeline, settings.max_deposit_bytes,
                           settings.feed_poll_seconds, declarants=DeclarantStore(self.engine),
                           changes=self.changes),
            self.server,
        )  # fmt: skip
        delivery = DeliveryService(
            self.deposits, files, self.trust, settings.feed_poll_seconds, tracer, notices=notices,
            changes=self.changes,
        )  # fmt: skip
        dsn_pb2_grpc.add_DeliveryServiceServicer_to_server(delivery, self.server)

    def _serve_habilitations(self, settings: Settings, data_key: bytes) -> None:
        """Habilitations (and their bulk files), accounts and their recovery."""
        self.habilitations = habilitations = HabilitationStore(
            self.engine, settings.link_idle_months, AESGCM(data_key)
        )
        self.bulk_worker = BulkWorker(
            BulkQueue(self.engine), habilitations, self.operations, settings.feed_poll_seconds,
            node=self.instance,
        )  # fmt: skip
        habilitation_pb2_grpc.add_HabilitationServiceServicer_to_server(
            HabilitationService(habilitations, self.relations, self.operations,
                                self.bulk_worker, limits=self.sign_in_limits,
                                door_secret=self.door_secret,
                                mailer=functools.partial(mail_text, settings.mail),
                                revocations_changed=self.trust.refresh),
            self.server,
        )  # fmt: skip
        # Lost passwords: secret questions, and codes by e-mail, administrator or letter.
        recovery = AccountRecovery(self.engine, self.sign_in_limits, sealer=AESGCM(data_key),
                                   decoys=decoy_key(data_key))  # fmt: skip
        self.accounts = AccountService(recovery, functools.partial(mail_text, settings.mail),
                                       self.door_secret,
                                       revocations_changed=self.trust.refresh)  # fmt: skip
        account_pb2_grpc.add_AccountServiceServicer_to_server(self.accounts, self.server)

    def _serve_mandates(self, settings: Settings, rcd: RcdStore, data_key: bytes) -> None:
        """SEPA mandates: IBANs sealed with the data key, the creditors' extraction files
        sealed in the blobs (the database's on PostgreSQL), French bank codes checked against
        the bank reference nomenclature once published."""
        banks = BankReference(NomenclatureStore(self.engine))
        blobs = open_blob_store(self.engine, settings.data_dir / "mandates", settings.sealed_files)
        self.mandates = MandateService(MandateStore(self.engine, data_key, banks), rcd,
                                       self.operations, blobs, data_key)  # fmt: skip
        mandate_pb2_grpc.add_MandateServiceServicer_to_server(self.mandates, self.server)

    def _serve_traces(self, settings: Settings) -> TraceKeeper | None:
        """The OTLP collector and the trace queries. The node keeps its own spans (those worth
        it), and those organisms send, for the retention period: the keeper that writes them,
        None when it keeps none."""
        self.traces = TraceStore(self.engine)
        keeper = None
        if settings.trace_retention_hours > 0:
            spans = SpanKeeper(settings.service_name)
            self.tracer_provider.add_span_processor(spans)
            keeper = TraceKeeper(self.traces, spans, settings.trace_retention_hours)
        trace_pb2_grpc.add_TraceServiceServicer_to_server(
            TraceQueryService(self.traces, keeper, self.audit_store, self.journal), self.server
        )
        otlp_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            otlp_service.TraceCollector(self.traces, settings.trace_retention_hours), self.server
        )
        return keeper

    async def start(self) -> int:
        """Migrates the schema, binds the address and starts serving; returns the bound port."""
        # The threads every call's and worker's database work runs on (asyncio.to_thread):
        # asyncio's default, the cores plus four, is six here; calls waiting for a thread are
        # not using a core. The DSN pipeline has threads of its own.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(IO_THREADS, thread_name_prefix="interops-io")
        )
        before = await asyncio.to_thread(current_revision, self.engine)
        await asyncio.to_thread(upgrade, self.engine)
        after = await asyncio.to_thread(current_revision, self.engine)
        if after != before:  # one line for the whole migration (Alembic's own are quieted)
            log.info("database schema migrated from %s to %s", before or "nothing", after)
        await self.changes.start()
        # Work arriving through any node wakes the workers of every node.
        self.changes.on_change(DSN_WORK, self.pipeline.wake)
        self.changes.on_change(NOTIFY_SEND, self.dispatcher.wake)
        self.changes.on_change(BULK_FILE, self.bulk_worker.wake)
        self.imports.start()
        await self.trust.start()
        await self.journal.start()
        await self.cache.start()
        await self.pipeline.start()
        await self.dispatcher.start()
        await self.bulk_worker.start()
        await self.mandates.extractions.start()
        if self.trace_keeper is not None:
            await self.trace_keeper.start()
        if self.settings.grpc_tls_cert:
            self.port = self.server.add_secure_port(self.settings.grpc_address,
                                                    server_credentials(self.settings))  # fmt: skip
            # The node's own web adapter calls it in this process's loopback, in plaintext: it
            # carries no organism's chain (mutual TLS refuses those there).
            self.internal_port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self.internal_port = self.server.add_insecure_port(
                self.settings.grpc_address
            )
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.grpc_address}")
        await self.server.start()
        for service in ("", *SERVICES):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        tls = " over TLS" + (" (mutual)" if self.settings.grpc_tls_client_ca else "")
        log.info("serving gRPC%s on %s (port %d)", tls if self.settings.grpc_tls_cert else "",
                 self.settings.grpc_address, self.port)  # fmt: skip
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stops taking calls, lets in-flight ones finish within the grace period, then closes."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.shutdown_grace_seconds if grace is None else grace)
        await self.imports.close()
        await self.pipeline.stop()
        await self.bulk_worker.stop()
        await self.mandates.extractions.stop()
        await self.dispatcher.stop()
        await self.journal.stop(patience_seconds=self.settings.shutdown_grace_seconds)
        await self.cache.stop()
        await self.changes.stop()
        await self.trust.stop()
        if self.trace_keeper is not None:
            await self.trace_keeper.stop()
        self.engine.dispose()
        self.tracer_provider.shutdown()
        log.info("stopped")

    async def wait(self) -> None:
        """Returns when the server has stopped."""
        await self.server.wait_for_termination()


def server_credentials(settings: Settings) -> grpc.ServerCredentials:
    """The gRPC door's TLS: its certificate chain and key; with a client CA, every caller must
    present a certificate that CA signed (mutual TLS)."""
    pair = (Path(settings.grpc_tls_key).read_bytes(), Path(settings.grpc_tls_cert).read_bytes())
    client_ca = (
        Path(settings.grpc_tls_client_ca).read_bytes() if settings.grpc_tls_client_ca else None
    )
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)  # fmt: skip
