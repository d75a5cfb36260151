"""The closed vocabulary maps completely onto Fides' taxonomy and W3C DPV terms."""

from fideslang.default_taxonomy import DEFAULT_TAXONOMY

import schemas
from ledger import vocabularies as words

_FIDES_CATEGORIES = {item.fides_key for item in DEFAULT_TAXONOMY.data_category}
_FIDES_USES = {item.fides_key for item in DEFAULT_TAXONOMY.data_use}
_FIDES_SUBJECTS = {item.fides_key for item in DEFAULT_TAXONOMY.data_subject}


def _values(name: str) -> set[str]:
    return set(schemas.load(schemas.VOCABULARY)["$defs"][name]["enum"])


def test_every_vocabulary_value_has_fides_and_dpv_terms() -> None:
    """Each category, purpose, legal basis, recipient type and transfer mechanism of the schemas has an
    entry, so a value added to the vocabulary without its mapping fails here."""
    assert set(words.FIDES_CATEGORIES) == set(words.DPV_CATEGORIES) == _values("category")
    assert set(words.FIDES_USES) == set(words.DPV_PURPOSES) == _values("purpose")
    assert set(words.FIDES_LEGAL_BASES) == set(words.DPV_LEGAL_BASES) == _values("legal_basis")
    assert set(words.DPV_RECIPIENTS) == _values("recipient_type")
    assert set(words.DPV_TRANSFERS) == _values("transfer_mechanism")
    declared_subjects = schemas.load(schemas.DECLARATION)["properties"]["purpose"]["items"]["properties"]
    assert set(words.FIDES_SUBJECTS) == set(declared_subjects["subjects"]["items"]["enum"])


def test_fides_terms_exist_in_the_fideslang_default_taxonomy() -> None:
    """Every Fides key the mapping uses is one the fideslang package itself defines."""
    assert {key for keys in words.FIDES_CATEGORIES.values() for key in keys} <= _FIDES_CATEGORIES
    assert set(words.FIDES_USES.values()) <= _FIDES_USES
    assert set(words.FIDES_SUBJECTS.values()) <= _FIDES_SUBJECTS


def test_dpv_terms_use_known_prefixes() -> None:
    """Every DPV term is a prefixed name whose prefix the record declares."""
    terms = [
        *words.DPV_CATEGORIES.values(), *words.DPV_PURPOSES.values(), *words.DPV_LEGAL_BASES.values(),
        *words.DPV_SUBJECTS.values(), *words.DPV_RECIPIENTS.values(), *words.DPV_CONSENT_STATES.values(),
        *(term for term in words.DPV_TRANSFERS.values() if term is not None),
    ]  # fmt: skip
    assert {term.split(":", 1)[0] for term in terms} <= set(words.DPV_PREFIXES)
