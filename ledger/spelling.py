"""The known names nearest to a misspelt one, for the "did you mean" of an error."""

import difflib
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's default: below it, a suggestion is more often wrong than right


def nearest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` of `known` alike enough to `name`, the closest first and equally close ones in
    alphabetical order (difflib.get_close_matches lists those in reverse)."""
    matcher = difflib.SequenceMatcher(b=name)
    scored = []
    for candidate in known:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() >= CUTOFF and matcher.quick_ratio() >= CUTOFF:
            score = matcher.ratio()
            if score >= CUTOFF:
                scored.append((-score, candidate))
    return [candidate for _, candidate in sorted(scored)[:n]]
