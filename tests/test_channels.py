"""Channels a tenant adds by configuration (LEDGER_EXTRA_CHANNELS), without editing the schemas."""

import pytest

from consumers.contract import Contract, Rejected
from ledger.errors import ConfigError
from ledger.settings import Settings
from tests.helpers import consent, event

SETTINGS = Settings.from_env({"LEDGER_EXTRA_CHANNELS": "acme:whatsapp, *:rcs"})
CONTRACT = Contract(256 * 1024, SETTINGS.extra_channels)


def _raw(tenant: str, channel: str, **extra: str) -> dict[str, object]:
    return event(tenant, "ann", "consent.given", consent(channel=channel) | extra)


def test_a_tenants_channel_is_accepted_for_that_tenant_only() -> None:
    """acme's WhatsApp is a channel for acme and no one else; RCS, added for every tenant, is one for all."""
    assert CONTRACT.check(_raw("acme", "whatsapp")).data["channel"] == "whatsapp"
    assert CONTRACT.check(_raw("globex", "rcs")).data["channel"] == "rcs"
    with pytest.raises(Rejected, match="closed vocabulary"):
        CONTRACT.check(_raw("globex", "whatsapp"))
    assert SETTINGS.channels_of("acme") == {"whatsapp", "rcs"}
    assert SETTINGS.channels_of("globex") == {"rcs"}


def test_the_rest_of_the_event_is_still_checked() -> None:
    """An extra channel does not excuse anything else: a purpose outside the vocabulary is refused."""
    with pytest.raises(Rejected, match=r"data\.purpose"):
        CONTRACT.check(_raw("acme", "whatsapp", purpose="spam"))
    contacted = event("acme", "ann", "contact.made", {"purpose": "marketing", "channel": "whatsapp"})
    with pytest.raises(Rejected, match="'message_id' is missing"):
        CONTRACT.check(contacted)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("whatsapp", "is not tenant:channel"),
        ("acme:Whats App", "is not tenant:channel"),
        ("acme:sms", "already"),
    ],
)
def test_a_malformed_extra_channel_is_refused_in_one_line(value: str, says: str) -> None:
    """A pair without a tenant, a channel that is not a lower-case word, or one the vocabulary has already
    stops at start, saying what to write."""
    with pytest.raises(ConfigError, match=says):
        Settings.from_env({"LEDGER_EXTRA_CHANNELS": value})
