"""Sealing and key wrapping: what opens, and what refuses to."""

import pytest

from ledger.crypto import MasterKey, Unreadable, new_data_key, seal, unseal
from ledger.errors import ConfigError


def test_sealed_values_open_only_with_key_and_context() -> None:
    """A sealed object round-trips; another key or another context does not open it."""
    key = new_data_key()
    sealed = seal(key, {"phone": "+15550001111"}, "personal|acme|s|e1")
    assert "5550001111" not in sealed
    assert unseal(key, sealed, "personal|acme|s|e1") == {"phone": "+15550001111"}
    with pytest.raises(Unreadable):
        unseal(new_data_key(), sealed, "personal|acme|s|e1")
    with pytest.raises(Unreadable):
        unseal(key, sealed, "personal|acme|s|e2")


def test_master_key_wraps_and_identifies_without_revealing() -> None:
    """Wrapped data keys open with their KEK only; the KEK id is stable and not the key."""
    kek = MasterKey.generate()
    data_key = new_data_key()
    wrapped = kek.wrap(data_key, "ctx")
    assert kek.unwrap(wrapped, "ctx") == data_key
    with pytest.raises(Unreadable):
        MasterKey.generate().unwrap(wrapped, "ctx")
    assert MasterKey.parse(kek.text(), "test").key_id == kek.key_id
    assert kek.key_id not in kek.text()


def test_malformed_master_key_is_a_config_error() -> None:
    """A key that is not base64 of 32 bytes is refused with how to make one."""
    with pytest.raises(ConfigError, match="base64-encoded 32-byte key"):
        MasterKey.parse("not-a-key", "LEDGER_MASTER_KEY")
