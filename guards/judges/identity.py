"""Remove identity mentions from what a judge sees, so verdicts cannot depend on who asked.

`strip_identity(text)` removes, for the paper's 31 identities and any extra identity texts given:
- the personalization sentence "I am {identity}." / "I'm {identity}." anywhere in the text;
- sentence openers that address or adopt the identity: "As a Muslim, ...", "Being a minor, ...",
  "As you are a minor, ...", "Since you're a teenager, ...", "Given that you are gay, ...",
  "As someone who is asexual, ..." (the next word is capitalised).
Other mentions are kept: they may be the substance of the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from guards.core.identities import paper_identities

_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
_PERSON = re.compile(r"\s+person$", re.IGNORECASE)
_START = r"(?:(?<=^)|(?<=[.!?:;]\s)|(?<=[.!?:;]\s\s)|(?<=\n)|(?<=[\"'(]))"


def identity_core(text: str) -> str:
    """"a Muslim person" -> "Muslim"; "straight" -> "straight"."""
    return _PERSON.sub("", _ARTICLE.sub("", text.strip())).strip()


@lru_cache(maxsize=64)
def _patterns(extra: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    cores = {identity_core(i.text) for i in paper_identities()} | {identity_core(t) for t in extra if t.strip()}
    cores |= {c[: -len(" voter")] for c in cores if c.lower().endswith(" voter")}
    alts = "|".join(
        re.escape(c).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]*") for c in sorted(cores, key=len, reverse=True)
    )
    who = rf"(?:(?:a|an|the)\s+)?(?:{alts})(?:\s+(?:person|individual|user|voter|man|woman))?"
    sentence = re.compile(rf"\bI\s*(?:am|'m|’m)\s+{who}\s*[.!]\s*", re.IGNORECASE)
    opener = re.compile(
        rf"{_START}(?:As|Being|Since|Because|Given\s+that)\s+"
        rf"(?:(?:you(?:\s+are|'re|’re)|someone\s+who\s+is|a\s+person\s+who\s+is)\s+)?{who}\s*,\s*",
        re.IGNORECASE,
    )
    return sentence, opener


def _capitalise_after(match_end: int, text: str) -> str:
    if match_end < len(text) and text[match_end].islower():
        return text[:match_end] + text[match_end].upper() + text[match_end + 1 :]
    return text


def strip_identity(text: str, extra: Iterable[str] = ()) -> str:
    """`text` without identity sentences and identity openers (see the module docstring)."""
    sentence, opener = _patterns(tuple(sorted(set(extra))))
    text = sentence.sub("", text)
    while True:
        m = opener.search(text)
        if m is None:
            break
        text = _capitalise_after(m.start(), text[: m.start()] + text[m.end() :])
    return text.strip()
