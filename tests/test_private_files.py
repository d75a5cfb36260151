"""Files only their owner may read: keys and exports."""

from pathlib import Path

import pytest

from ledger.private_files import write_private


def test_a_new_file_is_owner_only(tmp_path: Path) -> None:
    """A file written privately is created 0600 with the text in it."""
    path = tmp_path / "key"
    write_private(path, "secret\n", new=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == "secret\n"


def test_an_existing_loose_file_is_narrowed(tmp_path: Path) -> None:
    """Overwriting a world-readable file leaves it 0600 and holding only the new text."""
    path = tmp_path / "export.json"
    path.write_text("old and longer")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == "new"


def test_a_new_key_never_replaces_one(tmp_path: Path) -> None:
    """With `new`, an existing file (a key another process just created) is refused, not overwritten."""
    path = tmp_path / "key"
    path.write_text("first")
    with pytest.raises(FileExistsError):
        write_private(path, "second", new=True)
    assert path.read_text() == "first"
