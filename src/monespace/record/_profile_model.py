"""The profil médical: structured information the holder writes about themselves.

Legally it is the "questionnaire de santé librement renseigné par le titulaire" (CSP R1111-27
3° b), separate from the documents of the DMP. The holder can share a snapshot of it as a
document of type DOCPAT08 "Profil médical Mon espace santé" (class 11).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import attrs

from .._text import LIMITS, check_optional_text, check_text
from ..errors import ValidationError
from ._model import Code

__all__ = ["SECTION_TITLES", "ProfileEntry", "ProfileSection"]


class ProfileSection(StrEnum):
    """The sections of the profil médical (docs/domain-rules.md §3.6)."""

    MEDICAL_HISTORY = "medical_history"
    SURGICAL_HISTORY = "surgical_history"
    FAMILY_HISTORY = "family_history"
    ALLERGY = "allergy"
    INTOLERANCE = "intolerance"
    TREATMENT = "treatment"
    VACCINATION = "vaccination"
    HANDICAP = "handicap"
    """Not confirmed as a section of the real profil médical (§10): kept as an assumption."""
    ADVANCE_DIRECTIVES = "advance_directives"
    """Directives anticipées, or where they are kept (L1111-11)."""
    TRUSTED_PERSON = "trusted_person"
    """Personne de confiance."""
    ORGAN_DONATION = "organ_donation"
    """The holder's position on organ and tissue donation."""
    CONTACT = "contact"
    """A person to contact in an emergency."""


#: The section headings of the exported copy.
SECTION_TITLES = {
    ProfileSection.MEDICAL_HISTORY: "Antécédents médicaux",
    ProfileSection.SURGICAL_HISTORY: "Antécédents chirurgicaux",
    ProfileSection.FAMILY_HISTORY: "Antécédents familiaux",
    ProfileSection.ALLERGY: "Allergies",
    ProfileSection.INTOLERANCE: "Intolérances",
    ProfileSection.TREATMENT: "Traitements en cours",
    ProfileSection.VACCINATION: "Vaccinations",
    ProfileSection.HANDICAP: "Handicap",
    ProfileSection.ADVANCE_DIRECTIVES: "Directives anticipées",
    ProfileSection.TRUSTED_PERSON: "Personne de confiance",
    ProfileSection.ORGAN_DONATION: "Don d'organes",
    ProfileSection.CONTACT: "Personnes à prévenir",
}


def _label(value: str) -> str:
    text = check_text("label", value, max_length=LIMITS["title"])
    if not text.strip():
        raise ValidationError("'label' must not be empty")
    return text


def _details(value: str | None) -> str | None:
    text = check_optional_text("details", value, max_length=LIMITS["comment"], multiline=True)
    if text is not None and not text.strip():
        raise ValidationError("'details' must not be blank")
    return text


@attrs.frozen(repr=False)
class ProfileEntry:
    """One entry of the profil médical.

    :param label: what it is ("Asthme", "Pénicilline", "Metformine 500 mg").
    :param details: free text (dose, reaction, relative concerned...).
    :param code: an optional coded value (CIM-10, SNOMED CT, ATC...).
    :param started: when it began (or the date of a vaccination).
    """

    id: str
    patient_id: str
    section: ProfileSection = attrs.field(converter=ProfileSection)
    label: str = attrs.field(converter=_label)
    details: str | None = attrs.field(default=None, converter=_details)
    code: Code | None = None
    started: date | None = None
    ended: date | None = None
    recorded_at: datetime | None = None

    def __repr__(self) -> str:
        return f"ProfileEntry(id={self.id!r}, section={self.section.value!r})"
