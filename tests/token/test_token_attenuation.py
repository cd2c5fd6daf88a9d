"""Property tests: a hop is accepted exactly when it narrows, and a verified chain never
grants more than any of its blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from interops.token.v1 import token_pb2 as t

from tests.token.token_world import NOW, World, holder_of, hop, signer
from token_suite.chain import Terms, issue_root
from token_suite.errors import TokenError
from token_suite.grants import Grants, Scope, grants_from

SIRENS = ("111111118", "222222226", "333333334")
SIRETS = tuple(siren + nic for siren in SIRENS for nic in ("00011", "00029"))
RIGHTS = ("registry.read", "registry.import")
WORLD = World()

scopes = st.one_of(
    st.just(Scope(everything=True)),
    st.builds(
        Scope,
        st.just(False),
        st.frozensets(st.sampled_from(SIRENS), max_size=2),
        st.frozensets(st.sampled_from(SIRETS), max_size=3),
    ),
)
grant_sets = st.dictionaries(st.sampled_from(RIGHTS), scopes, max_size=2)


def establishments(scope: Scope) -> set[str]:
    """The perimeter as a set over a universe in which every company has an establishment that
    no grant names (NIC 99999), and one company is named by none."""
    universe = {*SIRETS, *(siren + "99999" for siren in (*SIRENS, "444444442"))}
    return {siret for siret in universe if scope.includes_siret(siret)}


def narrows(parent: Grants, child: Grants) -> bool:
    return all(
        right in parent and establishments(scope) <= establishments(parent[right])
        for right, scope in child.items()
    )


def messages(grants: Grants) -> list[t.Grant]:
    return [
        t.Grant(right=r, all_establishments=s.everything, sirens=sorted(s.sirens),
                sirets=sorted(s.sirets))
        for r, s in grants.items()
    ]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(parent=grant_sets, child=grant_sets)
def test_a_hop_is_accepted_exactly_when_its_grants_narrow(parent: Grants, child: Grants) -> None:
    terms = Terms(holder=holder_of("URSSAF"), profile=t.PROFILE_PORTAL, audience=("svc.a",),
                  grants=grants_from(messages(parent)), max_hops=3)  # fmt: skip
    root = issue_root(signer("PORTAL"), "declarant:1", terms, NOW)
    # An empty child list would mean "the parent's grants"; use a right nobody holds instead.
    child_grants = child or {"nothing.at.all": Scope(everything=True)}
    token = hop(root, "URSSAF", "CNAV", grants=grants_from(messages(child_grants)))
    if narrows(parent, child_grants):
        chain = WORLD.verifier().verify(token)
        assert narrows(grants_from(messages(parent)), chain.grants)
    else:
        with pytest.raises(TokenError, match="GRANTS_WIDENED"):
            WORLD.verifier().verify(token)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(grant_sets, st.integers(0, 200)), min_size=1, max_size=4))
def test_whatever_each_hop_asks_the_chain_never_exceeds_any_ancestor(
    steps: list[tuple[Grants, int]],
) -> None:
    holders = ["URSSAF", "CNAV", "SITE", "URSSAF", "CNAV"]
    start = grants_from(messages({"registry.read": Scope(False, frozenset(SIRENS[:2]))}))
    terms = Terms(holder=holder_of("URSSAF"), profile=t.PROFILE_PORTAL, audience=("svc.a", "svc.b"),
                  grants=start, max_hops=6)  # fmt: skip
    token = issue_root(signer("PORTAL"), "declarant:1", terms, NOW)
    accepted = [WORLD.verifier().verify(token)]
    for asked, lifetime in steps:
        by, to = holders[len(accepted) - 1], holders[len(accepted)]
        candidate = hop(token, by, to, grants=grants_from(messages(asked)), lifetime=lifetime)
        if not narrows(accepted[-1].grants, grants_from(messages(asked)) or accepted[-1].grants):
            with pytest.raises(TokenError, match="GRANTS_WIDENED"):
                WORLD.verifier().verify(candidate)
            continue
        accepted.append(WORLD.verifier().verify(candidate))
        token = candidate
    for later, earlier in zip(accepted[1:], accepted, strict=False):
        assert narrows(earlier.grants, later.grants)
        assert later.expires <= earlier.expires and later.audience <= earlier.audience
