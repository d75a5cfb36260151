"""Settings read from LEDGER_* variables: secrets from files, and one-line errors for what is wrong."""

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from consumers.kafka import client_config
from ledger.errors import ConfigError
from ledger.settings import Settings

URL = "postgresql://ledger@postgres:5432/ledger"


def test_the_database_password_comes_from_its_file(tmp_path: Path) -> None:
    """LEDGER_DATABASE_PASSWORD_FILE adds the file's password (less its newline) to the URL's parts."""
    secret = tmp_path / "postgres.password"
    secret.write_text("s3 'cret\n")
    env = {"LEDGER_DATABASE_URL": URL, "LEDGER_DATABASE_PASSWORD_FILE": str(secret)}
    url = Settings.from_env(env).database_url
    assert url is not None
    assert conninfo_to_dict(url) == {
        "user": "ledger",
        "password": "s3 'cret",
        "host": "postgres",
        "port": "5432",
        "dbname": "ledger",
    }


def test_a_password_file_needs_a_url_and_must_be_readable(tmp_path: Path) -> None:
    """A password file without a URL, or one that cannot be read, is a one-line configuration error."""
    with pytest.raises(ConfigError, match="without LEDGER_DATABASE_URL"):
        Settings.from_env({"LEDGER_DATABASE_PASSWORD_FILE": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="cannot be read"):
        Settings.from_env({"LEDGER_DATABASE_URL": URL, "LEDGER_DATABASE_PASSWORD_FILE": str(tmp_path / "x")})


MANAGED = {  # a managed Kafka service's usual shape: SASL/SCRAM over TLS, with the provider's CA
    "LEDGER_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "LEDGER_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "LEDGER_KAFKA_USERNAME": "ledger",
}


def test_sasl_scram_over_tls_becomes_kafka_python_options(tmp_path: Path) -> None:
    """SASL_SSL with SCRAM, a password file and a CA file map to kafka-python's options, hostnames checked."""
    (tmp_path / "kafka.password").write_text("pw\n")
    (tmp_path / "ca.pem").write_text("")
    env = {
        **MANAGED,
        "LEDGER_KAFKA_PASSWORD_FILE": str(tmp_path / "kafka.password"),
        "LEDGER_KAFKA_SSL_CAFILE": str(tmp_path / "ca.pem"),
    }
    assert client_config(Settings.from_env(env).kafka_security) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ledger",
        "sasl_plain_password": "pw",
        "ssl_check_hostname": True,
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": None,
        "ssl_keyfile": None,
    }


def test_the_default_is_plaintext_without_credentials() -> None:
    """With no LEDGER_KAFKA_* security variable the clients connect in plain text (the embedded broker)."""
    assert client_config(Settings.from_env({}).kafka_security) == {"security_protocol": "PLAINTEXT"}


def test_mutual_tls_passes_the_client_certificate_and_key(tmp_path: Path) -> None:
    """SSL with a client certificate and key hands both files to the clients, and no SASL options."""
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("")
    env = {
        "LEDGER_KAFKA_SECURITY_PROTOCOL": "SSL",
        "LEDGER_KAFKA_SSL_CERTFILE": str(tmp_path / "cert.pem"),
        "LEDGER_KAFKA_SSL_KEYFILE": str(tmp_path / "key.pem"),
    }
    config = client_config(Settings.from_env(env).kafka_security)
    assert config["ssl_certfile"] == str(tmp_path / "cert.pem")
    assert config["ssl_keyfile"] == str(tmp_path / "key.pem")
    assert "sasl_mechanism" not in config


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"LEDGER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "not allowed: use one of PLAINTEXT, SSL"),
        ({"LEDGER_KAFKA_SASL_MECHANISM": "PLAIN"}, "set LEDGER_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
        ({**MANAGED, "LEDGER_KAFKA_SASL_MECHANISM": "GSSAPI"}, "use one of PLAIN, SCRAM-SHA-256"),
        (MANAGED, "needs LEDGER_KAFKA_SASL_MECHANISM"),
        ({"LEDGER_KAFKA_USERNAME": "u", "LEDGER_KAFKA_PASSWORD": "p"}, "are for SASL"),
        ({**MANAGED, "LEDGER_KAFKA_PASSWORD": "p", "LEDGER_KAFKA_PASSWORD_FILE": "f"}, "keep one"),
        ({"LEDGER_KAFKA_SSL_CAFILE": "/"}, "are for TLS"),
        ({"LEDGER_KAFKA_SECURITY_PROTOCOL": "SSL", "LEDGER_KAFKA_SSL_CAFILE": "/no/ca"}, "not a readable"),
        ({"LEDGER_TOPIC_REPLICATION": "3", "LEDGER_TOPIC_MIN_INSYNC": "4"}, "exceeds"),
    ],
)
def test_wrong_kafka_security_combinations_fail_at_start_in_one_line(
    env: dict[str, str], complaint: str
) -> None:
    """Each inconsistent combination is refused on load with one line naming the variables to fix."""
    with pytest.raises(ConfigError, match=complaint) as refused:
        Settings.from_env(env)
    assert "\n" not in str(refused.value)


def test_a_config_file_supplies_settings_and_the_environment_wins(tmp_path: Path) -> None:
    """Keys of the LEDGER_CONFIG file set what the environment leaves unset; a set variable overrides them."""
    config = tmp_path / "ledger.toml"
    config.write_text(
        'kafka_bootstrap = "kafka-1:9092"\ntopic_partitions = 8\nrecipients_awaited_except = ["a", "b"]\n'
    )
    settings = Settings.from_env({"LEDGER_CONFIG": str(config), "LEDGER_TOPIC_PARTITIONS": "12"})
    assert settings.kafka_bootstrap == "kafka-1:9092"
    assert settings.topic_partitions == 12
    assert settings.recipients_awaited_except == frozenset({"a", "b"})


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (
            'kafka_bootstrp = "k:9092"\n',
            "unknown setting 'kafka_bootstrp' \\(did you mean kafka_bootstrap\\?\\)",
        ),
        ("topic_partitions = 'many'\n", "LEDGER_TOPIC_PARTITIONS='many' is not a whole number"),
        ("[kafka]\nbootstrap = 'k'\n", "kafka must be a string, a whole number or a list of strings"),
        ("topic_partitions = \n", "is not TOML"),
    ],
)
def test_a_wrong_config_file_is_refused_in_one_line(tmp_path: Path, text: str, complaint: str) -> None:
    """A misspelt key (with the nearest real one), a bad value, a table or broken TOML is one line."""
    config = tmp_path / "ledger.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=complaint) as refused:
        Settings.from_env({"LEDGER_CONFIG": str(config)})
    assert "\n" not in str(refused.value)
