"""An independent PII corpus: values from Faker in many locales (not from the detector's own
corpus), written in the formats people really type, with gold spans. Each planted value is
(type, start, end); a detector must cover the whole span (no partial masks) with the right type."""

from __future__ import annotations

import ipaddress
import random

from faker import Faker

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "pt_BR", "zh_CN", "hi_IN", "pl_PL",
           "ja_JP", "sv_SE", "en_AU", "en_CA", "da_DK", "cs_CZ", "ru_RU"]
LATIN = ["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "pt_BR", "pl_PL", "sv_SE", "cs_CZ", "da_DK"]
IDN_DOMAINS = ["müller-bau.de", "café-paris.fr", "españa.com.es", "łódź.pl", "bücher.example", "пример.рф",
               "例え.jp", "xn--mller-kva.de", "Straße.de"]
TITLES = ["Mr", "Mr.", "Mrs", "Mrs.", "Ms.", "Miss", "Dr", "Dr.", "Prof.", "Prof. Dr.", "Dr. med.", "Herr", "Frau",
          "Mme", "Mme.", "M.", "Mlle", "Sr.", "Sra.", "Srta.", "Sig.", "Sig.ra", "dhr.", "mevr.", "Mx."]
PARTICLES = ["van", "van der", "van den", "von", "de", "de la", "del", "di", "da", "dos", "ter", "le"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
FILLER = ["Patient reports", "Please note", "Follow-up:", "Reviewed with family;", "As discussed,", "The form lists",
          "Noted in the chart:", "Per the referral letter,"]


class Corpus:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 100 + i)

    def _f(self, locales=LOCALES) -> Faker:
        return self.fakers[self.rng.choice(locales)]

    def email(self) -> tuple[str, str]:
        r = self.rng
        kind = r.random()
        if kind < 0.4:
            value = self._f().email()
        elif kind < 0.75:  # accented and non-Latin local parts, IDN domains
            f = self._f(LATIN + ["ru_RU"])
            local = f"{f.first_name()}.{f.last_name()}".lower().replace(" ", "")
            value = f"{local}@{r.choice(IDN_DOMAINS + [f.free_email_domain()])}"
        else:
            f = self._f(LATIN)
            value = f"{f.first_name().replace(' ', '')}.{f.last_name().replace(' ', '')}+{r.choice(['notes', 'a1'])}@" \
                    f"{r.choice(['Mail.Example.CO.UK', 'hospital.example.org', 'Uni-Bonn.DE'])}"
        return r.choice(["mail ", "e-mail: ", "contact ", "write to ", "<", ""]), value

    def phone(self) -> tuple[str, str]:
        r = self.rng
        kind = r.random()
        if kind < 0.75:
            value = self._f([loc for loc in LOCALES if loc != "ru_RU"]).phone_number()
        elif kind < 0.9:
            value = f"+86 {self.fakers['zh_CN'].phone_number()}"
        else:
            value = self.fakers["zh_CN"].phone_number()  # bare 11 digits: only with a word that says phone
            return r.choice(["phone ", "tel: ", "mobile: ", "call "]), value
        return r.choice(["call ", "phone: ", "tel. ", "mobile ", "reach me on ", "fax ", ""]), value

    def iban(self) -> tuple[str, str]:
        value = self._f(LATIN).iban()
        if self.rng.random() < 0.5:
            value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
        if self.rng.random() < 0.3:
            value = value.lower()
        return self.rng.choice(["IBAN ", "pay to ", "account ", "bank: ", ""]), value

    def ssn(self) -> tuple[str, str]:
        digits = self.fakers["en_US"].ssn().replace("-", "")
        style = self.rng.random()
        if style < 0.5:
            return self.rng.choice(["SSN ", "SSN: ", "social security number ", "ssn# ", ""]), \
                f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
        if style < 0.8:
            return self.rng.choice(["SSN ", "SSN: ", "social security no. ", "Social Security "]), \
                f"{digits[:3]} {digits[3:5]} {digits[5:]}"
        return self.rng.choice(["SSN ", "SSN: ", "social security number ", "SS#"]), digits

    def ip(self) -> tuple[str, str]:
        f, r = self._f(), self.rng
        kind = r.random()
        if kind < 0.4:
            value = f.ipv4()
        elif kind < 0.6:
            value = f.ipv6()
        elif kind < 0.75:
            value = ipaddress.IPv6Address(f.ipv6()).compressed if r.random() < 0.5 else \
                f"2001:db8::{r.randint(1, 0xffff):x}"
        elif kind < 0.9:
            value = f"::ffff:{f.ipv4()}"
        else:
            value = f"fe80::{r.randint(1, 0xffff):x}:{r.randint(1, 0xffff):x}%{r.choice(['eth0', 'en1', 'wlan0', '3'])}"
        return r.choice(["from ", "IP ", "host ", "client address ", "logged in from "]), value

    def dob(self) -> tuple[str, str]:
        r = self.rng
        d = self._f().date_of_birth(minimum_age=1, maximum_age=95)
        day = d.day
        ordinal = f"{day}{'th' if 11 <= day <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"
        month = MONTHS[d.month - 1]
        value = r.choice([
            d.strftime("%Y-%m-%d"), d.strftime("%Y/%m/%d"), d.strftime("%m/%d/%Y"), d.strftime("%d/%m/%Y"),
            d.strftime("%d.%m.%Y"), f"{day}.{d.month}.{d.year}", f"{day:02d}-{month[:3]}-{d.year}",
            f"{day} {month[:3]} {d.year}", f"{month} {day}, {d.year}", f"{day} {month} {d.year}",
            f"{ordinal} of {month} {d.year}", f"{month[:3]}. {day}, {d.year}", f"{ordinal} {month} {d.year}",
        ])
        lead = r.choice(["DOB: ", "date of birth ", "born on ", "born ", "Date of Birth: ", "D.O.B. ", "birthdate: ",
                         "born on the ", "DOB "])
        if value.startswith(ordinal) and lead.strip() == "born on":
            lead = "born on the "
        return lead, value

    def person(self) -> tuple[str, str]:
        r = self.rng
        f = self._f(LATIN)
        first, last = f.first_name(), f.last_name()
        if r.random() < 0.25:
            last = f"{r.choice(PARTICLES)} {last}"
        if r.random() < 0.2:
            first = f"{first}-{f.first_name()}"
        name = r.choice([f"{first} {last}", last, f"{first} {last}"])
        title = r.choice(TITLES)
        if r.random() < 0.15:
            title, name = title.upper(), name.upper()
        return f"{title} ", name

    def credit_card(self) -> tuple[str, str]:
        f = self.fakers["en_US"]  # card types are not localised
        card = f.credit_card_number(card_type=self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb"]))
        if self.rng.random() < 0.4 and len(card) == 16:
            card = self.rng.choice([" ", "-"]).join(card[i:i + 4] for i in range(0, 16, 4))
        return self.rng.choice(["card ", "paid with ", "CC: ", ""]), card


TYPES = {"EMAIL": Corpus.email, "PHONE": Corpus.phone, "IBAN": Corpus.iban, "US_SSN": Corpus.ssn,
         "IP_ADDRESS": Corpus.ip, "DATE_OF_BIRTH": Corpus.dob, "PERSON_TITLE": Corpus.person,
         "CREDIT_CARD": Corpus.credit_card}


def faker_corpus(n: int, seed: int = 0) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """``n`` texts, each planting 1-3 values (every type in turn, then random ones)."""
    corpus = Corpus(seed)
    rng = corpus.rng
    names = sorted(TYPES)
    out = []
    for i in range(n):
        text, gold = rng.choice(FILLER) + " ", []
        for t in [names[i % len(names)]] + rng.sample(names, rng.randint(0, 2)):
            lead, value = TYPES[t](corpus)
            text += lead
            gold.append((t, len(text), len(text) + len(value)))
            text += value + (">" if lead == "<" else "") + rng.choice([". ", ", ", " and ", "; ", " - "])
        out.append((text.rstrip(), gold))
    return out


def coverage(detector, corpus) -> dict[str, dict[str, float]]:
    """Per type: recall (whole span covered by one finding of that type), partial (a finding overlaps
    the span but some of it is left in clear), and support."""
    stats: dict[str, dict[str, float]] = {}
    for text, gold in corpus:
        found = detector.find(text)
        for t, start, end in gold:
            s = stats.setdefault(t, {"support": 0, "hit": 0, "partial": 0, "misses": []})
            s["support"] += 1
            whole = any(f.type == t and f.start <= start and f.end >= end for f in found)
            covered = set()
            for f in found:
                covered |= set(range(max(f.start, start), min(f.end, end)))
            s["hit"] += whole
            if covered and len(covered) < end - start:
                s["partial"] += 1
            if not whole and len(s["misses"]) < 8:
                s["misses"].append(text[start:end])
    for s in stats.values():
        s["recall"] = s["hit"] / s["support"]
    return stats
