"""Lenient answer extraction: what a human grader reads as the chosen option when the paper's regexes miss it.

Used after the paper's extraction (``guards.tasks.mmlu``), never instead of it, and not under the ``paper``
profile. Recognised commitments, in any position; the LAST one in the answer wins, so an option discussed and
rejected before the choice does not count ("Option (A) is tempting ... so the best choice is C" -> C):

- "Answer: C", "**Answer: (D)**", "The correct answer is D.", "Final answer: B"
- "\\boxed{B}"
- "the best choice is C", "the correct option is (B)"
- "I choose B", "I'd go with (C)"
- "(B) is correct", "C is the right answer"
- a bold option on its own: "**(B)**", "**B**", "**B. Paris**"

Letters are matched in capitals only (so "the answer is a bit tricky" is no answer).
"""

from __future__ import annotations

import re

_L = r"\(?([A-D])\)?(?![A-Za-z0-9])"
_COMMITMENTS = [
    re.compile(r"(?i:answer)\s*(?i:is)?\s*[:：]?\s*\**\s*" + _L),
    re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*\(?([A-D])\)?"),
    re.compile(r"(?i:(?:best|correct|right|final)\s+(?:choice|option|answer)\s+(?:is|would\s+be))\s*[:：]?\s*\**\s*"
               r"(?i:option\s+)?" + _L),
    re.compile(r"(?i:I\s*(?:'d|\s+would|\s+will)?\s*(?:choose|pick|select|go\s+with))\s+(?i:option\s+)?" + _L),
    re.compile(r"(?<![A-Za-z])\(?([A-D])\)?\s+(?i:is\s+(?:the\s+)?(?:correct|right|best)\b)"),
    re.compile(r"\*\*\s*\(?([A-D])\)?(?:[.:)]\s*[^*\n]{0,80})?\s*\*\*"),
]


def last_choice(text: str) -> str | None:
    """The last committed option letter in `text`, or None (pure)."""
    best: tuple[int, str] | None = None
    for pattern in _COMMITMENTS:
        for match in pattern.finditer(text):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1))
    return best[1] if best else None
