"""A generated corpus with gold PII spans, in varied real-world formats, plus look-alike distractors."""

from __future__ import annotations

import random
import string


def _luhn_complete(prefix: str, length: int) -> str:
    digits = [int(d) for d in prefix]
    while len(digits) < length - 1:
        digits.append(random.randint(0, 9))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def credit_card(rng) -> str:
    kind = rng.choice(["visa", "mc", "amex"])
    number = {"visa": lambda: _luhn_complete("4", 16), "mc": lambda: _luhn_complete(str(rng.randint(51, 55)), 16),
              "amex": lambda: _luhn_complete(rng.choice(["34", "37"]), 15)}[kind]()
    sep = rng.choice([" ", "-", ""])
    groups = [number[:4], number[4:10], number[10:]] if kind == "amex" else [number[i:i + 4] for i in (0, 4, 8, 12)]
    return sep.join(groups)


IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "BE": 16, "CH": 21}


def iban(rng) -> str:
    country = rng.choice(sorted(IBAN_LENGTHS))
    n = IBAN_LENGTHS[country] - 4
    if country in ("GB", "NL"):
        bban = "".join(rng.choices(string.ascii_uppercase, k=4)) + "".join(rng.choices(string.digits, k=n - 4))
    else:
        bban = "".join(rng.choices(string.digits, k=n))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    value = f"{country}{check:02d}{bban}"
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.6 else value


def phone(rng) -> str:
    d = lambda k: "".join(rng.choices(string.digits, k=k))  # noqa: E731
    return rng.choice([
        f"+1 {rng.randint(201, 989)} {d(3)} {d(4)}", f"({rng.randint(201, 989)}) {d(3)}-{d(4)}",
        f"{rng.randint(201, 989)}-{d(3)}-{d(4)}", f"{rng.randint(201, 989)}.{d(3)}.{d(4)}",
        f"+44 20 {d(4)} {d(4)}", f"+44 7{d(3)} {d(6)}", f"+49 30 {d(6)}", f"+49 151 {d(4)} {d(4)}",
        f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"+91 9{d(4)} {d(5)}", f"+61 2 {d(4)} {d(4)}",
        f"+81-3-{d(4)}-{d(4)}", f"+31 6 {d(8)}", f"+{rng.randint(30, 49)}{d(9)}",
    ])


def email(rng) -> str:
    user = rng.choice(["jane.doe", "j_smith", "Patient.Zero+notes", "m.garcia-lopez", "x9", "dr.who"])
    dom = rng.choice(["example.com", "mail.example.org", "hospital.nhs.uk", "Uni-Bonn.DE", "clinic.io"])
    return f"{user}{rng.randint(0, 99)}@{dom}"


def ssn(rng) -> str:
    area = rng.choice([rng.randint(1, 665), rng.randint(667, 899)])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ip(rng) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(0, 255)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xffff):x}" for _ in range(8)]
    return rng.choice([":".join(groups), f"2001:db8::{groups[0]}", f"fe80::{groups[1]}:{groups[2]}"])


def url(rng) -> str:
    return rng.choice([f"https://portal.example.org/patients/{rng.randint(1, 9999)}",
                       f"http://example.com/a?id={rng.randint(1, 99)}&x=y", f"www.clinic-{rng.randint(1, 9)}.org/login",
                       "https://sub.domain.example.net/path/to/page.html"])


def dob(rng) -> tuple[str, str]:
    y, m, day = rng.randint(1930, 2010), rng.randint(1, 12), rng.randint(1, 28)
    month = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"][m - 1]
    date = rng.choice([f"{y}-{m:02d}-{day:02d}", f"{m:02d}/{day:02d}/{y}", f"{day}.{m}.{y}", f"{month} {day}, {y}",
                       f"{day} {month} {y}"])
    return rng.choice(["DOB: ", "date of birth ", "born on ", "Date of Birth: ", "D.O.B. "]), date


def mrn(rng) -> tuple[str, str]:
    value = rng.choice([f"{rng.randint(100000, 99999999)}", f"A{rng.randint(100000, 9999999)}",
                        f"MR-{rng.randint(10000, 999999)}"])
    return rng.choice(["MRN: ", "MRN ", "medical record number ", "Patient ID: "]), value


def account(rng) -> tuple[str, str]:
    return rng.choice(["account number ", "acct #: ", "Account no. ", "account "]), str(rng.randint(10**6, 10**12))


PLAIN = {"EMAIL": email, "PHONE": phone, "CREDIT_CARD": credit_card, "IBAN": iban, "US_SSN": ssn,
         "IP_ADDRESS": ip, "URL": url}
WITH_CONTEXT = {"DATE_OF_BIRTH": dob, "MEDICAL_RECORD": mrn, "ACCOUNT_NUMBER": account}
DISTRACTORS = ["took 20 mg twice daily", "dose of 0.5 ml", "in 2019", "version 3.2.1", "a 3:2 ratio",
               "visit on 2023-01-05", "room 1204", "scored 7/10", "lot 4411-22", "for 12 weeks", "BMI 31.4",
               "blood pressure 120/80", "call back in 15 minutes", "ICD-10 code E11.9", "15 mg/kg"]
FILLER = ["Patient reports", "Please note", "Follow-up:", "Reviewed with", "As discussed,", "The form lists"]


def make_corpus(n: int = 1500, seed: int = 0) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """``n`` texts, each with 1-3 gold PII values and 0-2 distractors; returns (text, gold spans)."""
    rng = random.Random(seed)
    random.seed(seed)
    types = sorted(PLAIN) + sorted(WITH_CONTEXT)
    corpus = []
    for i in range(n):
        parts, gold = [rng.choice(FILLER)], []
        picks = [types[i % len(types)]] + rng.sample(types, rng.randint(0, 2))
        for t in picks:
            if rng.random() < 0.5:
                parts.append(rng.choice(DISTRACTORS) + ",")
            text = " ".join(parts) + " "
            if t in PLAIN:
                value = PLAIN[t](rng)
                lead = rng.choice(["contact ", "use ", "", "value "])
            else:
                lead, value = WITH_CONTEXT[t](rng)
            start = len(text) + len(lead)
            gold.append((t, start, start + len(value)))
            parts.append(lead + value + rng.choice([".", ",", " and", ";"]))
        corpus.append((" ".join(parts), gold))
    return corpus
