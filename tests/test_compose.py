"""docker-compose.yml is a valid compose file and keeps the promises an operator relies on (Docker cannot
run here, so this is what CI can check of it)."""

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
from ruamel.yaml import YAML

COMPOSE = Path(__file__).parent.parent / "docker-compose.yml"
LEDGER_SERVICES = ("consumer", "projector", "scheduler", "api")
DB_SECRET = "postgres_password"  # noqa: S105 - the name of the Docker secret, not its value


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return document


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = _compose()["services"][name]
    return service


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    """The file validates against the compose-spec JSON schema (as vendored by check-jsonschema)."""
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    jsonschema_rs.validator_for(schema).validate(_compose())


def test_kafka_keeps_its_logs_on_its_volume() -> None:
    """KAFKA_LOG_DIRS lies under the path the kafka-data volume is mounted on, so topics, offsets and
    dead letters survive a recreated container."""
    kafka = _service("kafka")
    mounts = {volume.split(":")[1] for volume in kafka["volumes"] if volume.startswith("kafka-data:")}
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    assert mounts and all(any(Path(d).is_relative_to(m) for m in mounts) for d in log_dirs)


def test_kafka_advertises_a_name_each_side_can_resolve() -> None:
    """Services reach kafka:9092 on the compose network; the host reaches the published localhost:9094."""
    kafka = _service("kafka")
    advertised = dict(
        item.split("://") for item in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    assert advertised["INTERNAL"] == _compose()["x-ledger"]["environment"]["LEDGER_KAFKA_BOOTSTRAP"]
    assert advertised["HOST"] == "localhost:9094"
    assert "127.0.0.1:9094:9094" in kafka["ports"]


def test_every_long_running_service_restarts_and_the_servers_report_health() -> None:
    """Kafka, PostgreSQL and the ledger's services restart unless stopped; the servers have healthchecks,
    the API's asking /readyz."""
    for name in ("kafka", "postgres", *LEDGER_SERVICES):
        assert _service(name)["restart"] == "unless-stopped", name
    for name in ("kafka", "postgres", "api"):
        assert _service(name)["healthcheck"]["test"], name
    assert "/readyz" in " ".join(_service("api")["healthcheck"]["test"])


def test_no_password_is_written_in_clear() -> None:
    """PostgreSQL and the ledger read the database password from a Docker secret, never from the file."""
    postgres = _service("postgres")
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == f"/run/secrets/{DB_SECRET}"
    assert DB_SECRET in postgres["secrets"]
    for name in ("migrate", *LEDGER_SERVICES):
        service = _service(name)
        url = service["environment"]["LEDGER_DATABASE_URL"]
        assert ":" not in url.removeprefix("postgresql://").partition("@")[0], name
        assert service["environment"]["LEDGER_DATABASE_PASSWORD_FILE"] == f"/run/secrets/{DB_SECRET}"
        assert DB_SECRET in service["secrets"], name


def test_the_schema_is_migrated_once_before_any_ledger_service_starts() -> None:
    """A one-shot migrate service runs `migrate`, and every ledger service waits for it to succeed."""
    migrate = _service("migrate")
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    for name in LEDGER_SERVICES:
        needs = _service(name)["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == needs["kafka"]["condition"] == "service_healthy", name
