"""Regex detectors with validators for structured PII, plus optional person-name backends.

Detectors run from most to least specific; a span already claimed by an earlier type is not
reported again (so a card number is not also a phone number).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .checksums import iban_valid, luhn_valid

_MONTHS = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|" \
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DATE = (rf"(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|"
         rf"{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+\d{{4}})")


_NOT_NAMES = frozenset("it he she they i we you the my his her this that these then so and but or when "
                       "said told who".split())


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Pattern:
    type: str
    regex: re.Pattern
    validate: Callable[[str], bool] | None = None
    group: int = 0  # which capture group is the value (context words stay outside it)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _phone_valid(value: str) -> bool:
    digits = _digits(value)
    if not 7 <= len(digits) <= 15:
        return False
    if re.fullmatch(_DATE, value.strip(), re.I):
        return False
    grouped = bool(re.search(r"[\s.()-]", value.strip()))
    return value.strip().startswith("+") or (grouped and len(digits) >= 9) or len(digits) in (10, 11) and grouped


def _flags(regex: str) -> re.Pattern:
    return re.compile(regex, re.IGNORECASE)


BUILTIN: dict[str, Pattern] = {
    p.type: p
    for p in (
        Pattern("EMAIL", _flags(r"(?<![\w.+-])[A-Z0-9._%+-]+@[A-Z0-9-]+(?:\.[A-Z0-9-]+)*\.[A-Z]{2,}\b")),
        Pattern("URL", _flags(r"\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]")),
        Pattern("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), iban_valid),
        # card groupings: 4-4-4-4(-1..3), Amex 4-6-5, or unbroken 13-19 digits; then the Luhn check
        Pattern("CREDIT_CARD", re.compile(r"(?<![\d+-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|"
                                          r"\d{4}([ -]?)\d{6}\2\d{5}|\d{13,19})(?![\d-])"),
                lambda v: luhn_valid(_digits(v))),
        Pattern("US_SSN", re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")),
        Pattern("DATE_OF_BIRTH", _flags(rf"\b(?:d\.?o\.?b\.?|date of birth|birth ?date|born(?: on)?|birthday)"
                                        rf"[\s:,-]*(?:is|was|on)?\s*({_DATE})"), group=1),
        Pattern("MEDICAL_RECORD", _flags(r"\b(?:MRN|medical record(?: number| no\.?)?|patient id)[\s:#-]*"
                                         r"((?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{4,14})\b"), group=1),
        Pattern("ACCOUNT_NUMBER", _flags(r"\b(?:account|acct)(?: number| no\.?| #)?[\s:#-]*(\d[\d-]{5,20}\d)\b"),
                group=1),
        Pattern("IP_ADDRESS", re.compile(r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}"
                                         r"[0-9A-Fa-f]{0,4})(?![\w:]|\.\d)"), _ip_valid),
        Pattern("PHONE", re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}"
                                    r"(?:[\s.-]\d{2,8}){1,4}(?![\w-])|(?<![\w+])\+\d{7,14}\b"), _phone_valid),
        # heuristic and offline: a courtesy title followed by capitalised words (NER does better)
        Pattern("PERSON_TITLE", re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+((?:[A-Z][a-z'’-]+\s?){1,3})"),
                lambda v: v.split()[0].lower() not in _NOT_NAMES, group=1),
    )
}
DEFAULT_TYPES: tuple[str, ...] = tuple(BUILTIN)
STRUCTURED_TYPES = ("EMAIL", "URL", "IBAN", "CREDIT_CARD", "US_SSN", "DATE_OF_BIRTH", "MEDICAL_RECORD",
                    "ACCOUNT_NUMBER", "IP_ADDRESS", "PHONE")


class PiiDetector:
    """Find PII spans in text.

    Args:
        types: built-in types to use (default: all, see ``DEFAULT_TYPES``).
        custom: extra ``{TYPE: regex}`` patterns (capture group 1 is the value when present),
            e.g. a hospital's MRN format.
        ner: ``"spacy"`` to add PERSON/ORG/GPE names from a spaCy pipeline (the ``ner`` extra).
    """

    def __init__(self, types: Iterable[str] | None = None, custom: dict[str, str] | None = None,
                 ner: str | None = None, ner_model: str = "en_core_web_sm") -> None:
        self.types = tuple(types) if types is not None else DEFAULT_TYPES
        unknown = set(self.types) - set(BUILTIN)
        if unknown:
            raise ValueError(f"unknown PII types {sorted(unknown)}; known: {', '.join(BUILTIN)}")
        self.patterns = [BUILTIN[t] for t in self.types]
        for name, regex in (custom or {}).items():
            compiled = re.compile(regex)
            self.patterns.insert(0, Pattern(name.upper(), compiled, group=1 if compiled.groups else 0))
        self._ner = _load_ner(ner, ner_model) if ner else None

    def find(self, text: str) -> list[Finding]:
        claimed: list[tuple[int, int]] = []
        found: list[Finding] = []

        def free(start: int, end: int) -> bool:
            return all(end <= s or start >= e for s, e in claimed)

        for pattern in self.patterns:
            for match in pattern.regex.finditer(text):
                start = match.start(pattern.group)
                value = match.group(pattern.group).strip()
                end = start + len(match.group(pattern.group).rstrip())  # trailing spaces are not the value
                if not value or not free(start, end):
                    continue
                if pattern.validate and not pattern.validate(value):
                    continue
                claimed.append((start, end))
                found.append(Finding(pattern.type, start, end, value))
        if self._ner is not None:
            for ent in self._ner(text).ents:
                if ent.label_ in ("PERSON", "ORG", "GPE") and free(ent.start_char, ent.end_char):
                    claimed.append((ent.start_char, ent.end_char))
                    found.append(Finding(ent.label_, ent.start_char, ent.end_char, ent.text))
        return sorted(found, key=lambda f: f.start)


def _load_ner(backend: str, model: str):
    from ...errors import NichetuneError

    if backend != "spacy":
        raise NichetuneError(f"unknown NER backend {backend!r}", hint="use --ner spacy")
    try:
        import spacy
    except ImportError:
        raise NichetuneError("person-name detection needs spaCy",
                             hint="pip install 'nichetune[ner]' and a spaCy English pipeline") from None
    try:
        return spacy.load(model)
    except OSError:
        raise NichetuneError(f"the spaCy pipeline {model!r} is not installed",
                             hint=f"install it from a wheel file (python -m spacy download {model} needs internet)") \
            from None
