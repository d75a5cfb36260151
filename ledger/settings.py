"""Every `LEDGER_*` environment variable, read and validated in this one place."""

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import conninfo

from ledger.errors import ConfigError
from ledger.keywords import KeywordTable
from ledger.spelling import nearest
from ledger.state import CHANNELS

PREFIX = "LEDGER_"
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """How the ledger's Kafka clients authenticate and encrypt; validated as a whole on load."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def sasl(self) -> bool:
        """Whether the clients authenticate with SASL."""
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        """Whether the connections are encrypted with TLS."""
        return self.protocol in ("SSL", "SASL_SSL")


@dataclass(frozen=True)
class Settings:
    """Configuration of every component; built once per process and passed down as an argument."""

    home: Path
    database_url: str | None
    kafka_bootstrap: str | None
    kafka_security: KafkaSecurity
    topic_replication: int
    topic_min_insync: int | None
    broker_port: int
    events_topic: str
    deadletter_topic: str
    topic_partitions: int
    consumer_group: str
    max_message_bytes: int
    batch_size: int
    projection_page: int
    log_level: str
    log_format: str
    master_key: str | None
    master_key_file: Path | None
    checkpoint_every: int
    signing_key: str | None
    signing_key_file: Path | None
    witness_file: Path | None
    checkpoint_topic: str
    retention_policy: Path | None
    purge_topic: str
    sweep_cron: str
    purge_confirm_days: int
    deadletter_retention_days: int
    purge_deadletter_topic: str
    recipients_awaited: bool
    recipients_awaited_except: frozenset[str]
    topic_retention: timedelta
    retry_initial_ms: int
    retry_max_ms: int
    retry_give_up_s: int
    http_host: str
    http_port: int
    http_max_body_bytes: int
    http_rate_limit: int
    http_ready_lag: int
    http_pool_size: int
    keywords: KeywordTable
    child_data_tenants: frozenset[str]
    child_erasure_hours: int
    extra_channels: frozenset[tuple[str, str]] = frozenset()  # (tenant or "*", channel)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read the settings from `environ` (default: the process environment), over those of the TOML
        file LEDGER_CONFIG names, if any (a variable that is set wins over the file)."""
        reader = _Reader(os.environ if environ is None else environ)
        settings = cls._read(reader)
        reader.refuse_unread()
        return settings

    @classmethod
    def _read(cls, reader: "_Reader") -> "Settings":
        return cls(
            home=Path(reader.text("HOME", ".ledger")).absolute(),
            database_url=_database_url(reader),
            kafka_bootstrap=reader.optional("KAFKA_BOOTSTRAP"),
            kafka_security=_kafka_security(reader),
            topic_replication=reader.integer("TOPIC_REPLICATION", 1, low=1, high=32),
            topic_min_insync=_min_insync(reader),
            broker_port=reader.integer("BROKER_PORT", 19092, low=1024, high=65535),
            events_topic=reader.text("EVENTS_TOPIC", "ledger.events"),
            deadletter_topic=reader.text("DEADLETTER_TOPIC", "ledger.deadletter"),
            topic_partitions=reader.integer("TOPIC_PARTITIONS", 4, low=1, high=1024),
            consumer_group=reader.text("CONSUMER_GROUP", "consent-ledger"),
            max_message_bytes=reader.integer("MAX_MESSAGE_BYTES", 256 * 1024, low=1024, high=10**8),
            batch_size=reader.integer("BATCH_SIZE", 5000, low=1, high=100_000),
            projection_page=reader.integer("PROJECTION_PAGE", 2000, low=1, high=100_000),
            log_level=reader.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=reader.choice("LOG_FORMAT", "json", ("json", "console")),
            master_key=reader.optional("MASTER_KEY"),
            master_key_file=_path(reader.optional("MASTER_KEY_FILE")),
            checkpoint_every=reader.integer("CHECKPOINT_EVERY", 10_000, low=1, high=10**9),
            signing_key=reader.optional("SIGNING_KEY"),
            signing_key_file=_path(reader.optional("SIGNING_KEY_FILE")),
            witness_file=_path(reader.optional("WITNESS_FILE")),
            checkpoint_topic=reader.text("CHECKPOINT_TOPIC", "ledger.checkpoints"),
            retention_policy=_path(reader.optional("RETENTION_POLICY")),
            purge_topic=reader.text("PURGE_TOPIC", "ledger.purge-orders"),
            sweep_cron=reader.text("SWEEP_CRON", "0 * * * *"),
            purge_confirm_days=reader.integer("PURGE_CONFIRM_DAYS", 7, low=1, high=3650),
            deadletter_retention_days=reader.integer("DEADLETTER_RETENTION_DAYS", 30, low=1, high=3650),
            purge_deadletter_topic=reader.text("PURGE_DEADLETTER_TOPIC", "ledger.purge-orders.deadletter"),
            recipients_awaited=reader.choice("RECIPIENTS_AWAITED", "all", ("all", "none")) == "all",
            recipients_awaited_except=frozenset(reader.items("RECIPIENTS_AWAITED_EXCEPT")),
            topic_retention=timedelta(days=reader.integer("TOPIC_RETENTION", 7, low=1, high=3650)),
            retry_initial_ms=reader.integer("RETRY_INITIAL_MS", 500, low=1, high=60_000),
            retry_max_ms=reader.integer("RETRY_MAX_MS", 30_000, low=1, high=3_600_000),
            retry_give_up_s=reader.integer("RETRY_GIVE_UP_S", 120, low=0, high=86_400),
            http_host=reader.text("HTTP_HOST", "127.0.0.1"),
            http_port=reader.integer("HTTP_PORT", 8080, low=1, high=65535),
            http_max_body_bytes=reader.integer("HTTP_MAX_BODY_BYTES", 4 * 1024 * 1024, low=1024, high=10**9),
            http_rate_limit=reader.integer("HTTP_RATE_LIMIT", 10_000, low=1, high=10**7),
            http_ready_lag=reader.integer("HTTP_READY_LAG", 10_000, low=0, high=10**9),
            http_pool_size=reader.integer("HTTP_POOL_SIZE", 8, low=1, high=100),
            keywords=KeywordTable.parse(
                reader.items("OPTOUT_KEYWORDS"), reader.items("RESUBSCRIBE_KEYWORDS")
            ),
            child_data_tenants=frozenset(reader.items("CHILD_DATA_TENANTS")),
            child_erasure_hours=reader.integer("CHILD_ERASURE_HOURS", 72, low=1, high=24 * 365),
            extra_channels=_extra_channels(reader),
        )

    def child_erasure_within(self, tenant: str) -> timedelta | None:
        """How soon a child's data must be erased where the tenant's policy forbids holding it (all
        tenants but LEDGER_CHILD_DATA_TENANTS); None where it may hold it."""
        if tenant in self.child_data_tenants:
            return None
        return timedelta(hours=self.child_erasure_hours)

    def channels_of(self, tenant: str) -> frozenset[str]:
        """The channels a tenant added to the vocabulary's (LEDGER_EXTRA_CHANNELS)."""
        return frozenset(channel for who, channel in self.extra_channels if who in ("*", tenant))

    def awaits_recipients(self, tenant: str) -> bool:
        """Whether the tenant's erasures wait for every recipient to confirm deletion too."""
        return self.recipients_awaited != (tenant in self.recipients_awaited_except)


_CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{1,31}")


def _extra_channels(reader: "_Reader") -> frozenset[tuple[str, str]]:
    """LEDGER_EXTRA_CHANNELS: `tenant:channel` pairs (`*:channel` for every tenant), channels a tenant
    messages on beyond the vocabulary's (WhatsApp, RCS, MMS), accepted wherever a channel is."""
    found = set()
    for item in reader.items("EXTRA_CHANNELS"):
        tenant, _, channel = item.rpartition(":")
        if not tenant or not _CHANNEL_NAME.fullmatch(channel):
            raise ConfigError(
                f"{PREFIX}EXTRA_CHANNELS: {item!r} is not tenant:channel (channel in lower case, e.g. "
                "acme:whatsapp or *:rcs)"
            )
        if channel in CHANNELS:
            raise ConfigError(
                f"{PREFIX}EXTRA_CHANNELS: {channel!r} is in the vocabulary already: leave it out"
            )
        found.add((tenant, channel))
    return frozenset(found)


def _database_url(reader: "_Reader") -> str | None:
    """LEDGER_DATABASE_URL, with the password from LEDGER_DATABASE_PASSWORD_FILE when that is set
    (a Docker or Kubernetes secret), so the password need not sit in the environment in clear."""
    url = reader.optional("DATABASE_URL")
    password_file = reader.optional("DATABASE_PASSWORD_FILE")
    if password_file is None:
        return url
    if url is None:
        raise ConfigError(
            f"{PREFIX}DATABASE_PASSWORD_FILE is set without {PREFIX}DATABASE_URL: set the URL (without "
            "its password) too"
        )
    try:
        password = Path(password_file).read_text().strip()
    except OSError as error:
        raise ConfigError(
            f"{PREFIX}DATABASE_PASSWORD_FILE={password_file!r} cannot be read ({error.strerror})"
        ) from None
    try:
        return conninfo.make_conninfo(url, password=password)
    except psycopg.ProgrammingError:
        raise ConfigError(f"{PREFIX}DATABASE_URL is not a PostgreSQL URL or conninfo string") from None


def _kafka_security(reader: "_Reader") -> KafkaSecurity:
    """LEDGER_KAFKA_* security settings, with the rules that tie them together checked here, so that a
    wrong combination fails at start in one line rather than as a broker disconnect later."""
    protocol = reader.choice("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", PROTOCOLS, upper=True)
    security = KafkaSecurity(
        protocol=protocol,
        mechanism=_mechanism(reader),
        username=reader.optional("KAFKA_USERNAME"),
        password=reader.secret("KAFKA_PASSWORD"),
        ca_file=reader.file("KAFKA_SSL_CAFILE"),
        cert_file=reader.file("KAFKA_SSL_CERTFILE"),
        key_file=reader.file("KAFKA_SSL_KEYFILE"),
    )
    needs = f"{PREFIX}KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)"
    if security.sasl and not (security.mechanism and security.username and security.password):
        raise ConfigError(
            f"{PREFIX}KAFKA_SECURITY_PROTOCOL={protocol} needs {PREFIX}KAFKA_SASL_MECHANISM "
            f"({', '.join(MECHANISMS)}), {PREFIX}KAFKA_USERNAME and {PREFIX}KAFKA_PASSWORD (or _FILE)"
        )
    if not security.sasl and security.mechanism:
        raise ConfigError(f"{PREFIX}KAFKA_SASL_MECHANISM is set, so set {needs} too")
    if not security.sasl and (security.username or security.password):
        raise ConfigError(f"{PREFIX}KAFKA_USERNAME and _PASSWORD are for SASL: set {needs} too")
    if not security.tls and (security.ca_file or security.cert_file or security.key_file):
        raise ConfigError(
            f"{PREFIX}KAFKA_SSL_* files are for TLS: set {PREFIX}KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"
        )
    if security.key_file and not security.cert_file:
        raise ConfigError(f"{PREFIX}KAFKA_SSL_KEYFILE needs the certificate it belongs to: set _CERTFILE")
    return security


def _mechanism(reader: "_Reader") -> str | None:
    if reader.optional("KAFKA_SASL_MECHANISM") is None:
        return None
    return reader.choice("KAFKA_SASL_MECHANISM", "PLAIN", MECHANISMS, upper=True)


def _min_insync(reader: "_Reader") -> int | None:
    replication = reader.integer("TOPIC_REPLICATION", 1, low=1, high=32)
    if reader.optional("TOPIC_MIN_INSYNC") is None:
        return None
    wanted = reader.integer("TOPIC_MIN_INSYNC", 1, low=1, high=32)
    if wanted > replication:
        raise ConfigError(
            f"{PREFIX}TOPIC_MIN_INSYNC={wanted} exceeds {PREFIX}TOPIC_REPLICATION={replication}: no write "
            "could ever succeed; lower it (replication - 1 tolerates one broker down)"
        )
    return wanted


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text).absolute()


def _config_file(env: Mapping[str, str]) -> dict[str, str]:
    """The settings in the TOML file LEDGER_CONFIG names, as the variables they stand for: a key is a
    variable's name without the prefix, in lower case (`kafka_bootstrap = "kafka:9092"`)."""
    path = env.get(PREFIX + "CONFIG", "").strip()
    if not path:
        return {}
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"{PREFIX}CONFIG={path!r} cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{PREFIX}CONFIG={path!r} is not TOML: {error}") from None
    return {PREFIX + key.upper(): _config_value(path, key, value) for key, value in document.items()}


def _config_value(path: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    raise ConfigError(f"{path}: {key} must be a string, a whole number or a list of strings")


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.path = env.get(PREFIX + "CONFIG", "").strip()
        self.from_file = _config_file(env)
        self.env = {**self.from_file, **env}
        self.read: set[str] = set()

    def refuse_unread(self) -> None:
        """A key of the config file that no setting read is a typo or a setting that does not exist."""
        for variable in sorted(set(self.from_file) - self.read):
            key = variable.removeprefix(PREFIX).lower()
            known = sorted(name.removeprefix(PREFIX).lower() for name in self.read)
            near = nearest(key, known, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ConfigError(
                f"{self.path}: unknown setting {key!r}{hint}: keys are the LEDGER_* variables' names "
                "without the prefix, in lower case"
            )

    def optional(self, name: str) -> str | None:
        self.read.add(PREFIX + name)
        value = self.env.get(PREFIX + name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def items(self, name: str) -> list[str]:
        return [item.strip() for item in self.text(name, "").split(",") if item.strip()]

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(
                f"{PREFIX}{name}={raw!r} is not a whole number: set it to one between {low} and {high}"
            ) from None
        if not low <= value <= high:
            raise ConfigError(f"{PREFIX}{name}={value} is out of range: use {low} to {high}")
        return value

    def secret(self, name: str) -> str | None:
        """NAME's value, or the content of the file NAME_FILE names (not both)."""
        value, path = self.optional(name), self.optional(name + "_FILE")
        if path is None:
            return value
        if value is not None:
            raise ConfigError(f"both {PREFIX}{name} and {PREFIX}{name}_FILE are set: keep one")
        try:
            return Path(path).read_text().strip() or None
        except OSError as error:
            raise ConfigError(f"{PREFIX}{name}_FILE={path!r} cannot be read ({error.strerror})") from None

    def file(self, name: str) -> Path | None:
        """A path that must name a readable file when it is set."""
        path = _path(self.optional(name))
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(f"{PREFIX}{name}={str(path)!r} is not a readable file")
        return path

    def choice(self, name: str, default: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
        raw = self.text(name, default)
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise ConfigError(f"{PREFIX}{name}={value!r} is not allowed: use one of {', '.join(allowed)}")
        return value
