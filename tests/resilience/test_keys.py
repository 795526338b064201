"""State keys: tenant first, in a hash tag, never ambiguous."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.resilience.keys import escape, state_key


@given(
    a=st.text(min_size=1, max_size=12),
    b=st.text(min_size=1, max_size=12),
    ka=st.text(min_size=1, max_size=8),
    kb=st.text(min_size=1, max_size=8),
)
def test_keys_of_different_tenants_or_names_never_collide(a, b, ka, kb):
    if (a, ka) != (b, kb):
        assert state_key(a, "cb", "svc", ka) != state_key(b, "cb", "svc", kb)


def test_tenant_sits_in_a_hash_tag_with_structure_characters_escaped():
    assert state_key("acme", "rl", "salesforce", "api") == "{acme}:rl:salesforce:api"
    assert state_key("a}:rl:b", "rl", "svc", "c") == "{a%7D%3Arl%3Ab}:rl:svc:c"
    assert escape("100%") == "100%25"
