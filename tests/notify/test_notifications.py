"""Notifications through a real node and a real SMTP server (aiosmtpd, in the test): every
channel and acknowledgement, retries against a server that fails then recovers, dead letters,
bounces flagged once, single-use links without tokens, idempotent sends, a crash between the
outbox and delivery, and a company seeing only its own notifications."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interops.notify.v1 import notify_pb2 as pb
from sqlalchemy import update

from clients.client import Client
from clients.errors import InvalidArgument, NotFound, PermissionDenied
from registry.notify.schema import notifications
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.declarant_store import DeclarantStore
from server.notify.dispatch import MailSettings
from tests.databases import fresh_database
from tests.mailbox import Mailbox, smtp_server
from tests.running_node import RunningNode

NOTIFY = "interops.notify.v1.NotificationService"
COMPANY_A, COMPANY_B = siren_at(11), siren_at(12)


@pytest.fixture(scope="module")
def mailbox(database_url: str) -> Iterator[tuple[Mailbox, int]]:
    """A fresh SMTP server for each backend's run of the module."""
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
def notifying(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]
) -> Iterator[RunningNode]:
    _, port = mailbox
    running = RunningNode(database_url, tmp_path_factory.mktemp("notify"),
                          mail=MailSettings(port=port, public_url="https://portal.example"),
                          notify_backoff_seconds=0.05, notify_max_attempts=3)  # fmt: skip
    yield running
    running.stop()


def _declarant(node: RunningNode, siren: str, name: str) -> Client:
    siret = siret_of(siren, 1)
    store = DeclarantStore(node.node.engine)
    if not store.exists(siret, name, "Alex"):
        store.create(siret, name, "Alex", "pw", [("notify.read", siren)])
    return Client(node.address, credentials=node.sign_in(siret, name, "Alex", "pw",
                                                         audience=[NOTIFY]))  # fmt: skip


@pytest.fixture(scope="module")
def company_a(notifying: RunningNode) -> Iterator[Client]:
    with _declarant(notifying, COMPANY_A, "Durand") as client:
        yield client


@pytest.fixture(scope="module")
def company_b(notifying: RunningNode) -> Iterator[Client]:
    with _declarant(notifying, COMPANY_B, "Petit") as client:
        yield client


@pytest.fixture(scope="module")
def sender(notifying: RunningNode) -> Iterator[Client]:
    signer = notifying.organism("CARSAT", "OC", rights=("notify.send",))
    with Client(notifying.address, credentials=notifying.credentials(signer, (NOTIFY,))) as c:
        body = "Le taux AT/MP de l'entreprise {siren} pour {year} est de {rate} %."
        c.notify.PublishTemplate(pb.PublishTemplateRequest(template=pb.Template(
            name="atmp-rate", topic=pb.TOPIC_AT_MP_RATE, subject="Votre taux AT/MP {year}",
            body=body)))  # fmt: skip
        yield c


def _subscribe(client: Client, siren: str, email: str, *channels: pb.Channel.ValueType) -> None:
    client.notify.Subscribe(pb.SubscribeRequest(subscription=pb.Subscription(
        siren=siren, topic=pb.TOPIC_AT_MP_RATE, channels=list(channels), email=email)))  # fmt: skip


def _send(sender: Client, request_id: str, *sirens: str, **extra: Any) -> pb.SendResponse:
    return sender.notify.Send(pb.SendRequest(  # type: ignore[no-any-return]
        request_id=request_id, template="atmp-rate", sirens=list(sirens),
        values={"year": "2027", "rate": "2.31"}, **extra))  # fmt: skip


def _settled(client: Client, siren: str, wanted: int = 1) -> list[pb.Notification]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = list(client.notify.ListNotifications(
            pb.ListNotificationsRequest(siren=siren, page_size=100)).notifications)  # fmt: skip
        final = (pb.DELIVERY_STATE_DELIVERED, pb.DELIVERY_STATE_DEAD)
        # A listing reads the notifications, then their deliveries: one delivered between the
        # two reads shows before its notification's state does (the next poll has both).
        done = [
            n
            for n in found
            if all(d.state in final for d in n.deliveries)
            and (n.state or all(d.state != pb.DELIVERY_STATE_DELIVERED for d in n.deliveries))
        ]
        if len(done) >= wanted and len(done) == len(found):
            return found
        time.sleep(0.05)
    raise AssertionError("deliveries did not settle")


def test_every_channel_and_acknowledgement(
    notifying: RunningNode, mailbox: tuple[Mailbox, int], company_a: Client, sender: Client
) -> None:
    box, _ = mailbox
    _subscribe(company_a, COMPANY_A, "paie@a.example", pb.CHANNEL_EMAIL, pb.CHANNEL_API,
               pb.CHANNEL_DASHBOARD)  # fmt: skip
    sent = _send(sender, "atmp-2027", official=True, deadline_days=30)
    assert sent.notifications == 1 and not sent.repeated_request
    (notification,) = _settled(company_a, COMPANY_A)
    assert notification.state == pb.ACK_KIND_DELIVERED and notification.official
    assert {d.state for d in notification.deliveries} == {pb.DELIVERY_STATE_DELIVERED}
    (mail,) = [m for m in box.messages if m["To"] == "paie@a.example"]
    assert mail["Subject"] == "Votre taux AT/MP 2027"
    text = mail.get_content()
    assert f"l'entreprise {COMPANY_A} pour 2027 est de 2.31 %" in text
    reference = re.search(r"https://portal\.example/n/(\S+)", text).group(1)  # type: ignore[union-attr]
    assert "interops-token" not in text and len(reference) >= 40  # an opaque reference only
    # The API channel: handed over under a lease, received when the company acknowledges.
    fetched = company_a.notify.FetchNotifications(pb.FetchNotificationsRequest()).notifications
    assert [n.id for n in fetched] == [notification.id] and fetched[0].handovers == 1
    assert company_a.notify.FetchNotifications(pb.FetchNotificationsRequest()).notifications == []
    assert company_a.acknowledge_notifications([notification.id]) == 1
    assert company_a.acknowledge_notifications([notification.id]) == 0  # once
    # The e-mail link: opened once, it leads to sign-in and shows nothing.
    with Client(notifying.address) as anonymous:
        opened = anonymous.notify.OpenLink(pb.OpenLinkRequest(reference=reference))
        assert opened.notification_id == notification.id and opened.siren == COMPANY_A
        with pytest.raises(NotFound):
            anonymous.notify.OpenLink(pb.OpenLinkRequest(reference=reference))
    # Read through the portal: the authenticated acknowledgement (the AT rate notice's flow).
    read = company_a.notify.ReadNotification(pb.ReadNotificationRequest(id=notification.id))
    assert read.notification.state == pb.ACK_KIND_AUTHENTICATED
    kinds = [(a.kind, a.channel) for a in read.notification.acknowledgements]
    assert (pb.ACK_KIND_RECEIVED, pb.CHANNEL_API) in kinds
    assert (pb.ACK_KIND_RECEIVED, pb.CHANNEL_EMAIL) in kinds
    assert (pb.ACK_KIND_AUTHENTICATED, pb.CHANNEL_DASHBOARD) in kinds
    assert all(a.at.seconds and a.actor for a in read.notification.acknowledgements)
    assert all(len(a.trace_id) == 32 for a in read.notification.acknowledgements)
    authenticated = next(a for a in read.notification.acknowledgements
                         if a.kind == pb.ACK_KIND_AUTHENTICATED)  # fmt: skip
    assert authenticated.actor.startswith("declarant:") and len(authenticated.trace_id) == 32


def test_the_same_request_id_sends_once(
    mailbox: tuple[Mailbox, int], company_a: Client, sender: Client
) -> None:
    box, _ = mailbox
    before = len(box.messages)
    first = _send(sender, "once-only", COMPANY_A)
    again = _send(sender, "once-only", COMPANY_A)
    assert first.notifications == again.notifications == 1 and again.repeated_request
    _settled(company_a, COMPANY_A)
    assert len(box.messages) == before + 1


def test_acknowledgements_out_of_order_keep_the_strongest(
    company_a: Client, sender: Client
) -> None:
    _send(sender, "out-of-order", COMPANY_A)
    newest = _settled(company_a, COMPANY_A)[0]
    company_a.notify.ReadNotification(pb.ReadNotificationRequest(id=newest.id))
    handed = company_a.notify.FetchNotifications(pb.FetchNotificationsRequest()).notifications
    company_a.acknowledge_notifications([n.id for n in handed])  # received, after
    again = company_a.notify.ReadNotification(pb.ReadNotificationRequest(id=newest.id))
    assert again.notification.state == pb.ACK_KIND_AUTHENTICATED
    assert pb.ACK_KIND_RECEIVED in {a.kind for a in again.notification.acknowledgements}


def test_an_smtp_server_that_fails_then_recovers_and_one_that_never_does(
    mailbox: tuple[Mailbox, int], company_a: Client, sender: Client
) -> None:
    box, _ = mailbox
    box.fail_next = 2
    _send(sender, "after-retries", COMPANY_A)
    newest = _settled(company_a, COMPANY_A)[0]
    email = next(d for d in newest.deliveries if d.channel == pb.CHANNEL_EMAIL)
    assert email.state == pb.DELIVERY_STATE_DELIVERED and email.attempts == 3
    box.fail_next = 10
    _send(sender, "never", COMPANY_A)
    newest = _settled(company_a, COMPANY_A)[0]
    email = next(d for d in newest.deliveries if d.channel == pb.CHANNEL_EMAIL)
    assert email.state == pb.DELIVERY_STATE_DEAD and "gave up after 3" in email.last_error
    box.fail_next = 0


def test_a_bouncing_address_is_flagged_and_receives_no_more_mail(
    mailbox: tuple[Mailbox, int], company_b: Client, sender: Client
) -> None:
    box, _ = mailbox
    box.refuse.add("gone@b.example")
    _subscribe(company_b, COMPANY_B, "gone@b.example", pb.CHANNEL_EMAIL, pb.CHANNEL_DASHBOARD)
    _send(sender, "bounce-1", COMPANY_B)
    first = _settled(company_b, COMPANY_B)[0]
    email = next(d for d in first.deliveries if d.channel == pb.CHANNEL_EMAIL)
    assert email.state == pb.DELIVERY_STATE_DEAD and "550" in email.last_error
    (subscription,) = company_b.notify.ListSubscriptions(
        pb.ListSubscriptionsRequest(siren=COMPANY_B)).subscriptions  # fmt: skip
    assert subscription.email_flagged
    box.refuse.clear()  # even if it would work now, the flagged address is not tried
    before = len(box.messages)
    _send(sender, "bounce-2", COMPANY_B)
    second = _settled(company_b, COMPANY_B, wanted=2)[0]
    email = next(d for d in second.deliveries if d.channel == pb.CHANNEL_EMAIL)
    assert email.state == pb.DELIVERY_STATE_DEAD and "flagged" in email.last_error
    assert len(box.messages) == before
    assert second.state == pb.ACK_KIND_DELIVERED  # the dashboard still has it
    # The company confirms the address: the flag is cleared in the one contact record.
    confirmed = company_b.notify.ChangeContact(pb.ChangeContactRequest(
        siren=COMPANY_B, email="gone@b.example", new_email="gone@b.example"))  # fmt: skip
    assert confirmed.subscriptions == 1
    (subscription,) = company_b.notify.ListSubscriptions(
        pb.ListSubscriptionsRequest(siren=COMPANY_B)).subscriptions  # fmt: skip
    assert not subscription.email_flagged
    # Then changes it, once for every subscription: the next notice goes to the new one.
    company_b.notify.ChangeContact(pb.ChangeContactRequest(
        siren=COMPANY_B, email="gone@b.example", new_email="new@b.example"))  # fmt: skip
    _send(sender, "bounce-3", COMPANY_B)
    _settled(company_b, COMPANY_B, wanted=3)
    assert [m["To"] for m in box.messages[before:]] == ["new@b.example"]
    with pytest.raises(NotFound):  # nothing uses the old address any more
        company_b.notify.ChangeContact(pb.ChangeContactRequest(
            siren=COMPANY_B, email="gone@b.example", new_email="x@b.example"))  # fmt: skip


def test_a_company_sees_only_its_own_notifications(
    company_a: Client, company_b: Client, sender: Client
) -> None:
    _send(sender, "private-a", COMPANY_A)
    mine = _settled(company_a, COMPANY_A)[0]
    with pytest.raises(PermissionDenied):
        company_b.notify.ListNotifications(pb.ListNotificationsRequest(siren=COMPANY_A))
    with pytest.raises(NotFound):
        company_b.notify.ReadNotification(pb.ReadNotificationRequest(id=mine.id))
    fetched = company_b.notify.FetchNotifications(pb.FetchNotificationsRequest()).notifications
    assert all(n.siren == COMPANY_B for n in fetched)
    # Nor acknowledge another company's notification (as if received, ending its hand-over).
    assert company_b.acknowledge_notifications([mine.id]) == 0
    with pytest.raises(PermissionDenied):  # only senders send
        _send(company_b, "not-allowed", COMPANY_A)
    with pytest.raises(PermissionDenied):  # nor change another company's contact
        company_b.notify.ChangeContact(pb.ChangeContactRequest(
            siren=COMPANY_A, email="a@a.example", new_email="evil@b.example"))  # fmt: skip


def test_overdue_official_notifications_for_operators(
    notifying: RunningNode, company_a: Client, sender: Client
) -> None:
    _send(sender, "overdue", COMPANY_A, official=True, deadline_days=10)
    late = _settled(company_a, COMPANY_A)[0]
    with notifying.node.engine.begin() as connection:
        connection.execute(update(notifications).where(notifications.c.id == late.id)
                           .values(deadline=1))  # fmt: skip
    overdue = sender.notify.ListOverdue(pb.ListOverdueRequest(page_size=100)).notifications
    assert late.id in {n.id for n in overdue}
    company_a.notify.ReadNotification(pb.ReadNotificationRequest(id=late.id))
    overdue = sender.notify.ListOverdue(pb.ListOverdueRequest(page_size=100)).notifications
    assert late.id not in {n.id for n in overdue}


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database no other node of the module uses: their dispatchers, woken by any node's
    send on PostgreSQL (registry/kernel/change_feed.py), would deliver in a stopped one's
    place."""
    with fresh_database(backend, tmp_path) as url:
        yield url


def test_a_crash_between_the_outbox_and_delivery_loses_and_repeats_nothing(
    own_database: str, tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    database_url = own_database
    box, port = mailbox
    mail = MailSettings(port=port)
    first = RunningNode(database_url, tmp_path / "data", mail=mail, notify_backoff_seconds=0.05)
    first.run(first.node.dispatcher.stop())  # the crash: nothing delivered after the commit
    signer = first.organism("CARSAT2", "OC", rights=("notify.send",))
    siren = siren_at(13)
    first.node.notify_store.subscribe(siren, "AT_MP_RATE", ["EMAIL"], "crash@c.example")
    with Client(first.address, credentials=first.credentials(signer, (NOTIFY,))) as c:
        c.notify.PublishTemplate(pb.PublishTemplateRequest(template=pb.Template(
            name="crash", topic=pb.TOPIC_AT_MP_RATE, subject="s", body="b {siren}")))  # fmt: skip
        c.notify.Send(pb.SendRequest(request_id="crash-1", template="crash", sirens=[siren]))
    first.stop()
    assert not [m for m in box.messages if m["To"] == "crash@c.example"]
    second = RunningNode(database_url, tmp_path / "data", mail=mail, notify_backoff_seconds=0.05)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if [m for m in box.messages if m["To"] == "crash@c.example"]:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # a second delivery would have happened by now
        assert len([m for m in box.messages if m["To"] == "crash@c.example"]) == 1
    finally:
        second.stop()


# -- nomenclatures -------------------------------------------------------------------------------

NOMENCLATURE = "interops.nomenclature.v1.NomenclatureService"


def test_nomenclature_versions_diff_and_notice_to_subscribers(
    notifying: RunningNode, company_a: Client, tmp_path: Path
) -> None:
    from interops.nomenclature.v1 import nomenclature_pb2 as nb

    from token_suite.keys import write_private_key

    signer = notifying.organism("NOMENCLATOR", "PORTAL",
                                rights=("nomenclature.publish", "nomenclature.read"))  # fmt: skip
    company_a.notify.Subscribe(pb.SubscribeRequest(subscription=pb.Subscription(
        siren=COMPANY_A, topic=pb.TOPIC_NOMENCLATURE, channels=[pb.CHANNEL_API])))  # fmt: skip
    company_a.notify.FetchNotifications(pb.FetchNotificationsRequest(max_notifications=100))
    key = tmp_path / "nomenclator.pem"
    write_private_key(signer.key, key)
    auth = ("--address", notifying.address, "--organism", "NOMENCLATOR", "--key", str(key))
    first, second = tmp_path / "v1.txt", tmp_path / "v2.txt"
    first.write_text("01;Envoi normal\n02;Envoi néant\n03;Ancien code\n", "utf-8")
    second.write_text("01;Envoi normal\n02;Envoi néant (sans salarié)\n04;Nouveau\n", "utf-8")
    from tests.dsn.test_dsn_validation import interops

    done = interops(*auth, "nomenclature", "publish", "TYPE-ENVOI", str(first))
    assert done.returncode == 0 and "version 1 published" in done.stdout, done.stderr
    done = interops(*auth, "nomenclature", "publish", "TYPE-ENVOI", str(second))
    assert "version 2 published; 1 companies notified" in done.stdout, done.stdout
    credentials = notifying.credentials(signer, (NOMENCLATURE,))
    with Client(notifying.address, credentials=credentials) as client:
        current = client.nomenclature.GetTable(nb.GetTableRequest(table="TYPE-ENVOI")).table
        assert current.version == 2 and [c.code for c in current.codes] == ["01", "02", "04"]
        old = client.nomenclature.GetTable(nb.GetTableRequest(table="TYPE-ENVOI", version=1))
        assert [c.code for c in old.table.codes] == ["01", "02", "03"]
        diff = client.nomenclature.Diff(
            nb.DiffRequest(table="TYPE-ENVOI", from_version=1, to_version=2))  # fmt: skip
        with pytest.raises(NotFound):
            client.nomenclature.GetTable(nb.GetTableRequest(table="TYPE-ENVOI", version=9))
    assert [c.code for c in diff.added] == ["04"] and [c.code for c in diff.removed] == ["03"]
    assert [(c.code, c.old_label, c.new_label) for c in diff.changed] == [
        ("02", "Envoi néant", "Envoi néant (sans salarié)")]  # fmt: skip
    assert "1 added, 1 removed, 1 changed" in diff.note and "- 03 Ancien code" in diff.note
    shown = interops(*auth, "nomenclature", "diff", "TYPE-ENVOI", "1", "2")
    assert shown.stdout.strip() == diff.note
    listed = interops(*auth, "nomenclature", "get", "TYPE-ENVOI", "--version", "1")
    assert listed.stdout.splitlines() == ["01;Envoi normal", "02;Envoi néant", "03;Ancien code"]
    # The subscribed company heard of both versions on the API channel, with the note.
    deadline = time.monotonic() + 30
    notices: list[pb.Notification] = []
    while time.monotonic() < deadline and len(notices) < 2:
        notices += company_a.notify.FetchNotifications(pb.FetchNotificationsRequest()).notifications
        time.sleep(0.05)
    assert [n.topic for n in notices] == [pb.TOPIC_NOMENCLATURE] * 2
    assert "passe en version 2" in notices[1].body and "+ 04 Nouveau" in notices[1].body
    bad = tmp_path / "bad.txt"
    bad.write_text("no separator here\n", "utf-8")
    refused = interops(*auth, "nomenclature", "publish", "TYPE-ENVOI", str(bad))
    assert refused.returncode == 2 and "line 1" in refused.stderr


def test_the_api_stream_hands_over_each_new_notification_until_acknowledged(
    notifying: RunningNode, company_a: Client, sender: Client
) -> None:
    while company_a.notify.FetchNotifications(
        pb.FetchNotificationsRequest(max_notifications=100)
    ).notifications:
        pass  # drained
    _send(sender, "streamed", COMPANY_A)  # company A takes the API channel
    stream = company_a.stream_notifications(timeout=30)
    try:
        first = next(stream)
    finally:
        stream.close()
    assert first.siren == COMPANY_A and first.handovers == 1
    assert company_a.notify.FetchNotifications(pb.FetchNotificationsRequest()).notifications == []
    assert company_a.acknowledge_notifications([first.id]) == 1
    read = company_a.notify.ReadNotification(pb.ReadNotificationRequest(id=first.id))
    assert (pb.ACK_KIND_RECEIVED, pb.CHANNEL_API) in {
        (a.kind, a.channel) for a in read.notification.acknowledgements
    }


@pytest.mark.parametrize(
    "subject",
    ["{e:{f}}", "{siren.__class__}", "{siren!r}", "{siren[0]}", "{siren:>100000000}", "{"],
)
def test_a_template_is_plain_placeholders_or_refused_before_it_is_stored(
    sender: Client, subject: str
) -> None:
    """Format specs, conversions, attributes and indexes would let a sender reach into objects
    or build huge texts (and a bad version, once stored, broke every later send)."""
    template = pb.Template(name="plain-only", topic=pb.TOPIC_AT_MP_RATE, subject="Taux {siren}",
                           body="Votre taux.")  # fmt: skip
    first = sender.notify.PublishTemplate(pb.PublishTemplateRequest(template=template))
    template.subject = subject
    with pytest.raises(InvalidArgument) as refused:
        sender.notify.PublishTemplate(pb.PublishTemplateRequest(template=template))
    assert refused.value.reason == "BAD_TEMPLATE"
    template.subject = "Taux {{{siren}}}"  # braces written twice are braces
    after = sender.notify.PublishTemplate(pb.PublishTemplateRequest(template=template))
    assert after.template.version == first.template.version + 1  # nothing stored between
