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
_ORD = r"(?:st|nd|rd|th)?"
_DATE = (rf"(?:\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|"
         rf"\d{{1,2}}{_ORD}(?:\s+of)?[\s-]+{_MONTHS}\.?,?[\s-]+\d{{4}}|{_MONTHS}\.?\s+\d{{1,2}}{_ORD},?\s+\d{{4}})")
_IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV6 = rf"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{_IPV4}|[0-9A-Fa-f]{{0,4}})(?:%[\w.-]+)?"
_PAREN = r"\(\s?\+?\d{1,5}\s?\)"
# digit groups joined by exactly one separator (or a bracketed area / trunk code), so matching stays linear
_PHONE = (rf"(?<![\w+.:/@-])(?:\+\s?|00\s?)?(?:{_PAREN}[\s.-]?)?\d{{1,14}}"
          rf"(?:(?:[ .\-/]|\s?{_PAREN}[\s.-]?)\d{{1,14}}){{0,6}}"
          r"(?:\s?(?:x|ext\.?|extn\.?)\s?\d{1,6})?(?![\w@]|[.\-/:]\d)")
_PHONE_WORDS = re.compile(r"(?i)(?:phone|tel|mobile|mob|cell|fax|call|ring|contact|reach|whatsapp|sms|text|"
                          r"number|no\.|handy|telefon|t[ée]l[ée]phone|portable|m[óo]vil|电话|手机)\W*(?:\w+\W+){0,2}$")
_SSN_WORDS = re.compile(r"(?i)(?:ssn|ss#|social security)\W*(?:\w+\W+){0,2}$")


def _cased(*words: str) -> str:
    """Each title as written (Capitalised) and in capitals, never in lower case: "miss", "sir" and
    "dr." in running text are words, and "I miss Zoloft" names no person."""
    forms = sorted({f for w in words for f in (w, w.upper())}, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(f) for f in forms) + ")"


# courtesy titles in several languages; "M." and the Dutch lower-case abbreviations need their dot
_TITLES = ("Mrs", "Mr", "Ms", "Miss", "Mx", "Mlle", "Mme", "Dr", "Prof", "Sir", "Herr", "Frau", "Sig.ra", "Sig", "Srta",
           "Sra", "Sr")
_TITLE = rf"(?:{_cased(*_TITLES)}|{_cased('M')}(?=\.)|(?:dhr|mevr|DHR|MEVR)(?=\.))"
_TITLE_CHAIN = rf"(?:{_TITLE}|{_cased('med', 'Med')})"  # "Dr. med." only after a first title
_PARTICLE = r"(?:van|von|der|den|de|del|della|di|da|dos|das|du|la|le|ter|ten|zu|y|['’]t)"
_WORD = r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*"
_PARTICLES = re.compile(rf"(?i){_PARTICLE}")

# capitalised words that follow a title without being a name ("... asked Dr. The ...", sentence starts)
_NOT_NAMES = frozenset("it he she they i we you the my his her this that these then so and but or when".split())


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    value: str


Check = Callable[[str, str], "str | None"]


@dataclass(frozen=True)
class Pattern:
    """A detector: ``check(value, text_before)`` returns the value to report (maybe shortened) or None."""

    type: str
    regex: re.Pattern
    check: Check | None = None
    group: int = 0  # which capture group is the value (context words stay outside it)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _when(predicate: Callable[[str], bool]) -> Check:
    return lambda value, before: value if predicate(value) else None


def _ip(value: str, before: str) -> str | None:
    try:
        ipaddress.ip_address(value)  # IPv6 scope ids (fe80::1%eth0) included
        return value
    except ValueError:
        return None


def _phone(value: str, before: str) -> str | None:
    number = re.split(r"(?i)\s?(?:x|ext\.?|extn\.?)\s?(?=\d+$)", value)[0]
    digits = _digits(number)
    if not 7 <= len(digits) <= 15 or re.fullmatch(_DATE, number, re.I):
        return None
    stripped = number.strip()
    international = stripped.startswith(("+", "00")) or "(" in stripped
    grouped = bool(re.search(r"[\s.()/-]", stripped))
    # unbroken national numbers: a trunk prefix (0...) or a Chinese mobile (1..), 10-11 digits
    national = not grouped and len(digits) in (10, 11) and stripped[0] in "01"
    if international or national or (grouped and len(digits) >= 9) or _PHONE_WORDS.search(before[-40:]):
        return value
    return None


def _iban(value: str, before: str) -> str | None:
    """Valid by mod 97; a trailing group that is really the next word ("... 0545 and") is dropped."""
    while not iban_valid(value):
        if " " not in value:
            return None
        value = value.rsplit(" ", 1)[0]
    return value


def _ssn(value: str, before: str) -> str | None:
    return value if "-" in value or _SSN_WORDS.search(before[-40:]) else None


def _person(value: str, before: str) -> str | None:
    """Keep the capitalised words (and name particles between them) that follow a title."""
    tokens = list(re.finditer(r"\S+", value))
    last = None  # index of the last token of the name
    for i, token in enumerate(t.group() for t in tokens):
        if _PARTICLES.fullmatch(token):
            continue
        if not token[0].isupper():
            break
        last = i
    if last is None or re.split(r"['’]", tokens[0].group())[0].lower() in _NOT_NAMES:  # "I've", "It's"
        return None
    return value[: tokens[last].end()]


def _flags(regex: str) -> re.Pattern:
    return re.compile(regex, re.IGNORECASE)


BUILTIN: dict[str, Pattern] = {
    p.type: p
    for p in (
        # Unicode local parts and internationalised domains (IDN or punycode), not just ASCII
        Pattern("EMAIL", re.compile(r"(?<![\w.+'%-])[\w.%+'-]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"
                                    r"(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)(?![\w-])", re.IGNORECASE)),
        Pattern("URL", _flags(r"\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]")),
        Pattern("IBAN", _flags(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), _iban),
        # card groupings: 4-4-4-4(-1..3), Amex 4-6-5, or unbroken 13-19 digits; then the Luhn check
        Pattern("CREDIT_CARD", re.compile(r"(?<![\d+-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|"
                                          r"\d{4}([ -]?)\d{6}\2\d{5}|\d{13,19})(?![\d-])"),
                _when(lambda v: luhn_valid(_digits(v)))),
        # dashed anywhere; spaced or unbroken only after words that say it is a social security number
        Pattern("US_SSN", re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ]?)(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])"),
                _ssn),
        Pattern("DATE_OF_BIRTH", _flags(rf"\b(?:d\.?o\.?b\.?|date of birth|birth ?date|born(?: on)?|birthday)"
                                        rf"[\s:,-]*(?:is|was|on)?\s*(?:the\s+)?({_DATE})"), group=1),
        Pattern("MEDICAL_RECORD", _flags(r"\b(?:MRN|medical record(?: number| no\.?)?|patient id)[\s:#-]*"
                                         r"((?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{4,14})\b"), group=1),
        Pattern("ACCOUNT_NUMBER", _flags(r"\b(?:account|acct)(?: number| no\.?| #)?[\s:#-]*(\d[\d-]{5,20}\d)\b"),
                group=1),
        Pattern("IP_ADDRESS", re.compile(rf"(?<![\w.:%])(?:{_IPV6}|{_IPV4})(?![\w:%]|\.\d)"), _ip),
        Pattern("PHONE", re.compile(_PHONE, re.IGNORECASE), _phone),
        # heuristic and offline: courtesy titles (several languages, chained: "Prof. Dr.") then the name
        Pattern("PERSON_TITLE", re.compile(rf"(?<!\w){_TITLE}\.?(?:\s+{_TITLE_CHAIN}\.?)*\s+"
                                           rf"((?:{_WORD})(?:\s+(?:{_WORD}|['’]t)){{0,5}})"), _person, group=1),
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
            pos = 0
            while (match := pattern.regex.search(text, pos)) is not None:
                pos = max(match.end(), match.start() + 1)
                start = match.start(pattern.group)
                value = match.group(pattern.group).rstrip()  # trailing spaces are not the value
                if pattern.check is not None and value:
                    value = pattern.check(value, text[max(0, start - 60):start]) or ""
                    if value:  # a shortened value: what it left out is searched again
                        pos = max(start + len(value), match.start() + 1)
                end = start + len(value)
                if not value or not free(start, end):
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
