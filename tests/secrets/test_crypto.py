"""MasterKeyring and DataKey: parsing, errors without values, wrapping bound to tenant and kid."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import ConfigurationError, InvalidSetting
from connectors.secrets.crypto import (
    MASTER_KEYS_ENV,
    NONCE_BYTES,
    DataKey,
    MasterKeyring,
    WrappedKey,
    credential_aad,
    generate_master_key_entry,
)

from ._support import key_entry

KEY_A = base64.b64encode(b"A" * 32).decode()


def test_first_key_wraps_and_every_key_unwraps():
    old, new = key_entry("old"), key_entry("new")
    before = MasterKeyring.parse(old)
    wrapped = before.wrap("acme", b"k" * 32)
    assert wrapped.kid == "old"
    both = MasterKeyring.parse(f"{new},{old}")
    assert both.current_kid == "new"
    assert both.kids == ("new", "old")
    assert both.wrap("acme", b"k" * 32).kid == "new"
    data_key = both.unwrap("acme", wrapped)
    nonce, ct = data_key.encrypt(b"hello", b"aad")
    assert before.unwrap("acme", wrapped).decrypt(nonce, ct, b"aad") == b"hello"


def test_rewrap_moves_a_data_key_to_the_current_master_key_unchanged():
    old, new = key_entry("old"), key_entry("new")
    wrapped = MasterKeyring.parse(old).wrap("t", b"d" * 32)
    ring = MasterKeyring.parse(f"{new},{old}")
    moved = ring.rewrap("t", wrapped)
    assert moved.kid == "new"
    only_new = MasterKeyring.parse(new)
    nonce, ct = ring.unwrap("t", wrapped).encrypt(b"x", b"")
    assert only_new.unwrap("t", moved).decrypt(nonce, ct, b"") == b"x"


def test_wrapped_key_is_bound_to_its_tenant():
    ring = MasterKeyring.parse(key_entry("k1"))
    wrapped = ring.wrap("victim", os.urandom(32))
    with pytest.raises(ConfigurationError, match="data key of tenant 'attacker'"):
        ring.unwrap("attacker", wrapped)


def test_wrapped_key_is_bound_to_its_kid():
    # Same key material under two ids: relabelling the kid must not work.
    raw = base64.b64encode(os.urandom(32)).decode()
    ring = MasterKeyring.parse(f"a:{raw},b:{raw}")
    wrapped = ring.wrap("t", os.urandom(32))
    with pytest.raises(ConfigurationError):
        ring.unwrap("t", WrappedKey("b", wrapped.blob))


def test_unknown_kid_says_to_add_the_key_back():
    ring = MasterKeyring.parse(key_entry("k2"))
    with pytest.raises(ConfigurationError) as info:
        ring.unwrap("t", WrappedKey("k1", b"\0" * 60))
    assert "'k1'" in str(info.value)
    assert "add key 'k1' back" in str(info.value)


def test_nonces_are_random_96_bit():
    data_key = DataKey("t", os.urandom(32))
    nonces = {data_key.encrypt(b"same", b"aad")[0] for _ in range(200)}
    assert len(nonces) == 200
    assert all(len(n) == NONCE_BYTES == 12 for n in nonces)


def test_decrypt_with_other_aad_or_tampered_bytes_is_a_typed_error():
    data_key = DataKey("acme", os.urandom(32))
    nonce, ct = data_key.encrypt(b"value", credential_aad("acme", "sf", 1))
    assert data_key.decrypt(nonce, ct, credential_aad("acme", "sf", 1)) == b"value"
    for aad in (
        credential_aad("other", "sf", 1),
        credential_aad("acme", "slack", 1),
        credential_aad("acme", "sf", 2),
    ):
        with pytest.raises(ConfigurationError, match="does not belong to this tenant/name"):
            data_key.decrypt(nonce, ct, aad)
    flipped = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(ConfigurationError):
        data_key.decrypt(nonce, flipped, credential_aad("acme", "sf", 1))
    with pytest.raises(ConfigurationError):
        data_key.decrypt(b"short", ct, credential_aad("acme", "sf", 1))


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20), st.text(max_size=20))
def test_associated_data_is_unambiguous(t1, n1, t2, n2):
    if (t1, n1) != (t2, n2):
        assert credential_aad(t1, n1, 1) != credential_aad(t2, n2, 1)


def test_reprs_show_no_key_material():
    ring = MasterKeyring.parse(f"k1:{KEY_A}")
    wrapped = ring.wrap("t", b"B" * 32)
    data_key = DataKey("t", b"C" * 32)
    text = repr(ring) + repr(wrapped) + repr(data_key)
    assert KEY_A not in text
    assert "k1" in text
    assert repr(wrapped.blob) not in text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nocolon", "entry 1 is not kid:base64"),
        (f"k1:{KEY_A},:{KEY_A}", "entry 2 is not kid:base64"),
        ("k1:not base64!!", "entry 1, kid 'k1', is not valid base64"),
        (f"k1:{base64.b64encode(b'x' * 16).decode()}", "decodes to 16 bytes"),
        (f"k1:{KEY_A},k1:{KEY_A}", "appears twice"),
        (f"bad kid:{KEY_A}", "key ids of letters"),
    ],
)
def test_bad_master_keys_name_the_variable_and_entry_never_the_value(text, fragment):
    with pytest.raises(InvalidSetting) as info:
        MasterKeyring.parse(text)
    message = str(info.value)
    assert MASTER_KEYS_ENV in message
    assert fragment in message
    assert KEY_A not in message
    assert "not base64!!" not in message
    assert "os.urandom(32)" in message  # says how to make a key


def test_missing_master_keys_refuse_to_start_with_instructions():
    with pytest.raises(ConfigurationError) as info:
        MasterKeyring.from_env({})
    message = str(info.value)
    assert MASTER_KEYS_ENV in message
    assert "base64.b64encode(os.urandom(32))" in message
    with pytest.raises(ConfigurationError):
        MasterKeyring.load({MASTER_KEYS_ENV: "  "})


def test_generated_entry_parses():
    ring = MasterKeyring.parse(generate_master_key_entry("fresh"))
    assert ring.kids == ("fresh",)


def test_dev_mode_creates_a_private_key_file_once(tmp_path):
    data_dir = tmp_path / "data"
    first = MasterKeyring.dev(data_dir)
    path = data_dir / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wrapped = first.wrap("t", b"d" * 32)
    second = MasterKeyring.dev(data_dir)
    assert second.unwrap("t", wrapped) is not None
    assert MasterKeyring.load({}, dev_dir=data_dir).kids == first.kids


def test_env_keys_win_over_dev_mode(tmp_path):
    ring = MasterKeyring.load({MASTER_KEYS_ENV: key_entry("prod")}, dev_dir=tmp_path)
    assert ring.kids == ("prod",)
    assert not (tmp_path / "master.key").exists()


def test_dev_mode_refuses_a_key_file_readable_by_others(tmp_path):
    MasterKeyring.dev(tmp_path)
    (tmp_path / "master.key").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        MasterKeyring.dev(tmp_path)


def test_data_key_must_be_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        DataKey("t", b"short")
