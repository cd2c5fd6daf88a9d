"""`interops partner-demo`: a small partner site that sends its users to the portal's sign-in
page (MAG) and takes them back carried by a single-use NAVIGATION chain whose last block names
the site's own key as holder. The site accepts it offline as that holder (Verifier.accept)
against the signed trust directory and the signed revocation list (both pinned to the root key;
the list fetched again every --revocations-seconds, at most 60): it shows who the user is and
the chain of responsibility, and refuses a chain presented twice, a chain held by someone else
(a prefix of its chain: WRONG_HOLDER) and a revoked one (after a sign-out: REVOKED).

    interops partner-demo --root-key <hex> [--listen 127.0.0.1:8090] [--portal URL]
"""

from __future__ import annotations

import argparse
import html
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:  # the parser is built without them; the site imports what it runs
    import grpc
    from google.protobuf.message import Message
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response

    from clients.client import Client
    from token_suite.verify import VerifiedChain, Verifier

Handler = Callable[[argparse.Namespace], int]
CODE = "PARTNER-DEMO"
_PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1f}}h1{{color:#6a1b9a}}.bad{{color:#b00020;font-weight:600}}th,td{{text-align:left;
padding:.3rem .6rem;border-bottom:1px solid #ddd}}a.button{{display:inline-block;padding:.5rem 1rem;
background:#6a1b9a;color:#fff;border-radius:4px;text-decoration:none}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    from starlette.responses import HTMLResponse

    response = HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _chain_table(chain: VerifiedChain) -> str:
    from token_suite.profiles import name as profile_name

    rows = "".join(
        f"<tr><td>{hop.position}</td><td>{html.escape(hop.delegator.organism)}</td>"
        f"<td>{html.escape(hop.holder.organism)}</td><td>{profile_name(hop.profile)}</td>"
        f"<td>{html.escape(hop.purpose)}</td></tr>"
        for hop in chain.hops
    )
    head = ("<tr><th>Bloc</th><th>Signé par</th><th>Remis à</th><th>Profil</th>"
            "<th>Motif</th></tr>")  # fmt: skip
    return f"<table><caption>Chaîne de responsabilité</caption>{head}{rows}</table>"


def partner_app(verifier: Verifier, code: str, portal: str, own_url: str) -> Starlette:
    """The partner site: its home page and the callback the portal posts to."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from token_suite.errors import TokenError
    from token_suite.profiles import name as profile_name
    from token_suite.replay import MemoryReplayCache
    from token_suite.wire import from_text

    replays = MemoryReplayCache()
    query = urlencode({"partner": code, "return_to": f"{own_url}/callback"})
    sign_in = html.escape(f"{portal}/signin?{query}")

    async def home(request: Request) -> Response:
        link = f'<a class="button" href="{sign_in}">Se connecter avec le portail</a>'
        return _page("Site partenaire de démonstration",
                     f"<p>Ce site délègue la connexion au portail.</p><p>{link}</p>")  # fmt: skip

    async def callback(request: Request) -> Response:
        form = await request.form()
        try:
            chain = verifier.accept(from_text(str(form.get("token", ""))), code, replays=replays)
        except TokenError as error:
            return _page("Connexion refusée",
                         f'<p class="bad" id="reason">{html.escape(str(error))}</p>',
                         401)  # fmt: skip
        valid_until = datetime.fromtimestamp(chain.expires, UTC).strftime("%H:%M:%S UTC")
        body = (f'<p>Bienvenue, <strong id="subject">{html.escape(chain.subject)}</strong>.</p>'
                f"<p>Jeton {profile_name(chain.profile)}, valable jusqu'à {valid_until}, "
                "vérifié hors ligne contre l'annuaire signé.</p>" + _chain_table(chain) +
                f'<p><a class="button" href="{html.escape(portal)}/dashboard">Retour au portail'
                "</a></p>")  # fmt: skip
        return _page("Site partenaire de démonstration", body)

    return Starlette(routes=[Route("/", home), Route("/callback", callback, methods=["POST"])])


def verifier_for(
    node_address: str,
    root_key_hex: str,
    revocations_seconds: float = 30.0,
    tls: grpc.ChannelCredentials | None = None,
) -> Verifier:
    """A verifier of chains against the node's directory and revocation list, both pinned to
    the root key; the list is fetched again when older than `revocations_seconds`; over TLS
    with `tls`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from clients.client import Client
    from token_suite.directory import DirectoryCache
    from token_suite.keys import key_id_of
    from token_suite.revocations import RevocationCache
    from token_suite.verify import Verifier

    public = bytes.fromhex(root_key_hex)
    root = {key_id_of(public): Ed25519PublicKey.from_public_bytes(public)}

    def fetch(call: Callable[[Client], Message]) -> Callable[[], bytes]:
        def signed() -> bytes:
            with Client(node_address, timeout=10, tls=tls) as client:
                return call(client).SerializeToString()

        return signed

    directory = DirectoryCache(fetch(lambda client: client.get_directory()), root)
    directory.current()  # fails now if the node or the root key is wrong
    revocations = RevocationCache(
        fetch(lambda client: client.get_revocations()), {key_id_of(public): public},
        refresh_seconds=revocations_seconds,
    )  # fmt: skip
    revocations.current()
    return Verifier(directory, revocations=revocations.current)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from clients.tls import channel_credentials

    if not args.root_key:
        raise ValueError("give --root-key (interops directory root-key prints it)")
    host, _, port = args.listen.rpartition(":")
    own = args.public_url or f"http://{args.listen}"
    verifier = verifier_for(args.address, args.root_key, args.revocations_seconds,
                            channel_credentials(args))  # fmt: skip
    app = partner_app(verifier, args.code,
                      args.portal.rstrip("/"), own.rstrip("/"))  # fmt: skip
    print(f"partner-demo: {own} (portal {args.portal}); sign in from {own}/", flush=True)
    uvicorn.run(app, host=host, port=int(port), log_level="warning")
    return 0


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `partner-demo`."""
    demo = commands.add_parser("partner-demo", help="a demo partner site (MAG sign-in, "
                               "navigation token verified offline)")  # fmt: skip
    demo.add_argument("--root-key", default=os.environ.get("INTEROPS_ROOT_KEY", ""),
                      help="the root public key (hex) to pin: $INTEROPS_ROOT_KEY")  # fmt: skip
    demo.add_argument("--listen", default="127.0.0.1:8090")
    demo.add_argument("--public-url", default="", help="its own address as browsers see it")
    portal = f"http://{os.environ.get('INTEROPS_HTTP_ADDRESS') or '127.0.0.1:8080'}"
    demo.add_argument("--portal", default=portal, help="the web adapter (default: "
                      "http:// and $INTEROPS_HTTP_ADDRESS, else 127.0.0.1:8080)")  # fmt: skip
    demo.add_argument("--code", default=CODE, help="its code in the trust directory")
    demo.add_argument("--revocations-seconds", type=float, default=30.0,
                      help="fetch the revocation list again after this (at most 60)")  # fmt: skip
    demo.set_defaults(handler=_run)
