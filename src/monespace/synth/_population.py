"""A deterministic synthetic French population.

The same seed always gives the same people, so demos, tests and benchmarks are repeatable.
Every NIR is valid (key included) and consistent with its INS traits; the INS uses the *test*
OID (1.2.250.1.213.1.4.10), so no synthetic identity can be mistaken for a real one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

from ..accounts import Contact, PatientIdentity, PostalAddress
from ..identity import INS, INS_NIR_TEST_OID, NIR, INSTraits, Sex
from ._names import COMMUNES, FEMALE_NAMES, MALE_NAMES, STREETS, SURNAMES

__all__ = ["synthetic_identities"]

#: Share of people with a known e-mail address; the others are written to by letter.
EMAIL_SHARE = 0.8


def _ascii_local(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def synthetic_identities(
    count: int, *, seed: int = 0, today: date | None = None
) -> Iterator[PatientIdentity]:
    """Yield *count* synthetic identities, lazily (constant memory).

    Birth dates spread over every age from newborns to 100 years; about 80 % have an e-mail
    address, the others a postal address only.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets: reproducibility wanted
    reference = today or date(2026, 1, 1)
    seen: set[str] = set()
    produced = 0
    while produced < count:
        sex: Sex = "M" if rng.random() < 0.5 else "F"
        birth = reference - timedelta(days=rng.randrange(0, 100 * 365))
        dep, commune, cog, postal, city = rng.choice(COMMUNES)
        nir = NIR.build(sex, birth.year % 100, birth.month, dep, commune, rng.randrange(1, 1000))
        if nir.value in seen:
            continue  # the same person twice would break the uniqueness of the NIR
        seen.add(nir.value)
        first = rng.choice(MALE_NAMES if sex == "M" else FEMALE_NAMES)
        second = rng.choice(MALE_NAMES if sex == "M" else FEMALE_NAMES)
        surname = rng.choice(SURNAMES)
        traits = INSTraits(
            birth_name=surname,
            first_given_name=first,
            given_names=(first, second) if second != first else (first,),
            birth_date=birth,
            sex=sex,
            birth_place_code=cog,
        )
        address = PostalAddress(
            lines=(f"{first} {surname}", f"{rng.randrange(1, 200)} {rng.choice(STREETS)}"),
            postal_code=postal,
            city=city,
        )
        email = (
            f"{_ascii_local(first)}.{_ascii_local(surname)}{rng.randrange(100)}@example.org"
            if rng.random() < EMAIL_SHARE
            else None
        )
        yield PatientIdentity(
            INS(nir, INS_NIR_TEST_OID, traits),
            Contact(email=email, postal_address=address),
            vitale_serial=f"{rng.randrange(10**9, 10**10)}",
        )
        produced += 1
