"""Settings read from LEDGER_* variables: secrets from files, and one-line errors for what is wrong."""

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

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
