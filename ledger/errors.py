"""One hierarchy of errors whose message is a single line: what is wrong and how to fix it."""


class LedgerError(Exception):
    """Base of every error the ledger reports to a user; the CLI prints the message and exits 2."""


class ConfigError(LedgerError):
    """A `LEDGER_*` setting is missing or malformed."""


class UsageError(LedgerError):
    """A command-line argument or an input file is not usable."""


class WrongState(UsageError):
    """The thing named exists, but its state does not allow this (a dead letter replayed or dropped
    already, named to be replayed or dropped)."""


class UnknownSubject(LedgerError):
    """The tenant has no subject with that id."""


class UnknownName(LedgerError):
    """A tenant, system, category, purpose or channel that the ledger does not know (a typo?)."""


class UnknownEvent(LedgerError):
    """The tenant has no event with that id."""


class SubjectErased(LedgerError):
    """The subject was crypto-shredded: there is no personal data left to give out."""


class ServiceUnavailable(LedgerError):
    """PostgreSQL or the Kafka broker cannot be reached or started."""


class ErasureRefused(LedgerError):
    """Erasure is not allowed now (a legal hold stands); the CLI answers "no" with exit code 1."""


class AlteredLog(LedgerError):
    """Stored events no longer hash to the Merkle tree that signed tree heads cover."""


class WrongMasterKey(ConfigError):
    """The master key configured is not the one that wrapped the ledger's keys."""
