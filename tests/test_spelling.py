"""The "did you mean" of errors: the nearest known names, closest first, ties in alphabetical order."""

import difflib

from ledger.spelling import nearest
from projections.names import unknown


def test_equally_close_names_are_listed_alphabetically() -> None:
    """Two names as close as each other come in alphabetical order, where difflib lists them reversed."""
    assert difflib.get_close_matches("xmail", ["email", "gmail"]) == ["gmail", "email"]  # the defect
    assert nearest("xmail", ["gmail", "email"]) == ["email", "gmail"]
    assert (
        unknown("channel", "xmail", ["gmail", "email"])
        == "unknown channel 'xmail': did you mean email or gmail?"
    )


def test_the_closest_name_comes_first_and_far_ones_not_at_all() -> None:
    """A closer name is listed before a less close one, at most `n` are, and none below the cutoff."""
    assert nearest("acmee", ["acme-co", "globex", "acme"]) == ["acme", "acme-co"]
    assert nearest("acmee", ["acme-co", "acme"], n=1) == ["acme"]
    assert nearest("zzz", ["acme", "globex"]) == []
