"""SMS-style keywords: which words opt out, which re-subscribe, which only ask for help.

Carriers and the FCC (47 CFR 64.1200(a)(10), 2024 order) make any of STOP, UNSUBSCRIBE, CANCEL, END,
QUIT, STOPALL, REVOKE and OPTOUT an opt-out, in any letter case; START and UNSTOP re-subscribe; HELP
and INFO ask for the program's details and change nothing. A tenant may add words of its own
(`LEDGER_OPTOUT_KEYWORDS`, `LEDGER_RESUBSCRIBE_KEYWORDS`); the consumer writes the meaning a tenant's
word had when it arrived into the stored fact, so a later change of configuration never rewrites
history. Pure: no I/O.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.errors import ConfigError

OPT_OUT = "optout"
RESUBSCRIBE = "resubscribe"
HELP = "help"
OTHER = "other"  # recorded, changes nothing
EFFECTS = (OPT_OUT, RESUBSCRIBE, HELP, OTHER)
BUILT_IN = {
    **dict.fromkeys(("STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT"), OPT_OUT),
    **dict.fromkeys(("START", "UNSTOP"), RESUBSCRIBE),
    **dict.fromkeys(("HELP", "INFO"), HELP),
}
EVERY_TENANT = "*"


def normalise(keyword: str) -> str:
    """The keyword as compared: upper case, without spaces, hyphens or underscores ("opt-out" is OPTOUT)."""
    return "".join(ch for ch in keyword.upper() if ch not in " -_")


def built_in(keyword: str) -> str:
    """What a keyword means without any tenant's additions."""
    return BUILT_IN.get(normalise(keyword), OTHER)


@dataclass(frozen=True)
class KeywordTable:
    """Tenants' own keywords, by tenant (`*`: every tenant), each with its effect."""

    words: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, optout: Iterable[str], resubscribe: Iterable[str]) -> "KeywordTable":
        """The table from the settings' entries, each `WORD` (every tenant) or `TENANT:WORD`; a word
        that is built in with another meaning, or given both meanings, is refused."""
        words: dict[str, dict[str, str]] = {}
        for setting, effect, entries in (
            ("LEDGER_OPTOUT_KEYWORDS", OPT_OUT, optout),
            ("LEDGER_RESUBSCRIBE_KEYWORDS", RESUBSCRIBE, resubscribe),
        ):
            for entry in entries:
                tenant, _, word = entry.rpartition(":")
                word = normalise(word)
                if not (word.isascii() and word.isalnum() and len(word) <= 32):
                    raise ConfigError(
                        f"{setting}: {entry!r} is not a keyword: give WORD or TENANT:WORD (letters, digits)"
                    )
                known = BUILT_IN.get(word) or words.get(tenant or EVERY_TENANT, {}).get(word, effect)
                if known != effect:
                    raise ConfigError(f"{setting}: {word} already means {known}; a keyword has one meaning")
                words.setdefault(tenant or EVERY_TENANT, {})[word] = effect
        return cls(words)

    def effect(self, tenant: str, keyword: str) -> str | None:
        """The tenant's own meaning of `keyword`, if it has one (built-in words are left to the fold)."""
        word = normalise(keyword)
        if word in BUILT_IN:
            return None
        return self.words.get(tenant, {}).get(word) or self.words.get(EVERY_TENANT, {}).get(word)
