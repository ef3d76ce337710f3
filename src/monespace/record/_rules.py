"""The record's rules, as pure functions: who a document is by, which codes it may carry,
its visibility flags, and when a hidden result is released.

No I/O and no clock: the service passes the current time in. docs/domain-rules.md §3.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from .._text import LIMITS, check_optional_text, check_text, neutralise_text
from ..actors import ActorKind
from ..clock import add_months
from ..errors import ValidationError
from ._codes import class_code_for, format_code_for_media_type, is_member, value_set
from ._model import TRE_A05_TYPE, Author, AuthorKind, Code, RecordSettings

__all__ = [
    "CONFIDENTIALITY_FLAGS",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REPRESENTANTS",
    "LEVELS",
    "MASQUE_PS",
    "announcement",
    "check_codes",
    "check_comments",
    "check_format_code",
    "check_may_hide",
    "check_measured_at",
    "check_minor_secret",
    "check_period",
    "check_time",
    "document_author",
    "document_title",
    "flags_of",
    "has_flag",
    "hidden_from_patient_at",
    "matches_words",
    "measure_source",
    "visibility",
]

#: The DMP's visibility flags, as stored on a document row (a bit set).
MASQUE_PS, INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS = 1, 2, 4
#: The confidentiality codes (TRE_A07) a document may carry, and the flag each one sets.
CONFIDENTIALITY_FLAGS = {
    "MASQUE_PS": MASQUE_PS,
    "INVISIBLE_PATIENT": INVISIBLE_PATIENT,
    "INVISIBLE_REPRESENTANTS_LEGAUX": INVISIBLE_REPRESENTANTS,
}
#: The HL7 confidentiality levels, in increasing order.
LEVELS = frozenset({"N", "R", "V"})
#: The years a document's dates may fall in. Below year 1000 the stored form of a timestamp
#: (fixed-width UTC text) breaks, and near year 9999 converting to UTC overflows.
_YEARS = range(1900, 9999)

#: Who a document is by, for each kind of actor who adds it.
_AUTHOR_OF = {
    ActorKind.PATIENT: AuthorKind.PATIENT,
    ActorKind.REPRESENTATIVE: AuthorKind.REPRESENTATIVE,
    ActorKind.PROFESSIONAL: AuthorKind.PROFESSIONAL,
    ActorKind.APP: AuthorKind.APP,
    ActorKind.SYSTEM: AuthorKind.INSURER,
}


def check_time(name: str, moment: datetime | None) -> None:
    """Refuse a naive or absurd date before it reaches storage.

    A naive datetime cannot be compared with the aware ones already stored (and SQLite would
    read it back as the machine's local time); a date outside :data:`_YEARS` cannot be stored
    and read back.

    :raises ValidationError: naming *name*.
    """
    if moment is None:
        return
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"{name!r} must be timezone-aware")
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:
        year = moment.year
    if year not in _YEARS:
        raise ValidationError(f"{name!r} must fall between {_YEARS[0]} and {_YEARS[-1]}")


def has_flag(flags: int, flag: int) -> bool:
    """Whether the bit set *flags* holds *flag*."""
    return bool(flags & flag)


def hidden_from_patient_at(flags: int, release_at: datetime | None, now: datetime) -> bool:
    """Whether a document with *flags* is still hidden from the patient at *now*: it was
    deposited ``INVISIBLE_PATIENT`` and neither released by its author nor past its
    automatic release (R1111-53)."""
    return has_flag(flags, INVISIBLE_PATIENT) and (release_at is None or now < release_at)


def flags_of(*, masked: bool, hidden_from_patient: bool, hidden_from_representatives: bool) -> int:
    """The bit set of the three visibility flags."""
    return (
        (MASQUE_PS if masked else 0)
        | (INVISIBLE_PATIENT if hidden_from_patient else 0)
        | (INVISIBLE_REPRESENTANTS if hidden_from_representatives else 0)
    )


def document_author(actor_kind: ActorKind, actor_id: str, given: Author | None) -> Author:
    """Who a document added by an actor is by: derived from the actor, never taken on trust.

    A professional may name their establishment as the author (and is then kept as the one
    who submitted it); everyone else is the author of what they add.

    :raises ValidationError: when *given* names someone else.
    """
    derived = _AUTHOR_OF[actor_kind]
    if given is None:
        return Author(derived, actor_id)
    allowed = {derived} | (
        {AuthorKind.ESTABLISHMENT} if derived is AuthorKind.PROFESSIONAL else set()
    )
    if given.kind not in allowed or (
        given.kind is not AuthorKind.ESTABLISHMENT and given.id != actor_id
    ):
        raise ValidationError("a document's author must be the actor who adds it")
    # What the caller names the author is free text that reaches screens: the one check.
    return Author(
        given.kind,
        check_text("author.id", given.id, max_length=LIMITS["label"]),
        check_optional_text("author.name", given.name, max_length=LIMITS["name"]),
        given.specialty,
        check_optional_text("author.organisation", given.organisation, max_length=LIMITS["name"]),
    )


def document_title(given: str | None, read: str | None, default: str) -> str:
    """A document's title: the caller's (*given*), checked, or the one read in the
    document (*read*), or *default*.

    The caller's title is refused when it holds what :func:`monespace._text.check_text`
    refuses; a title read from the document's own header is kept in a safe rendering
    instead (control characters shown as ``\\uXXXX``), since refusing it would lose the
    document.

    :raises ValidationError: for a caller's title that is blank, over
        ``LIMITS["title"]`` characters, or holds control characters or bidirectional
        overrides.
    """
    if given is not None:
        text = check_text("title", given, max_length=LIMITS["title"]).strip()
        if text:
            return text
    if read is not None:
        text = neutralise_text(read.strip(), max_length=LIMITS["title"]).strip()
        if text:
            return text
    return default


def check_comments(comments: str | None) -> str | None:
    """A document's comments as stored (several lines allowed, in NFC).

    :raises ValidationError: over ``LIMITS["comment"]`` characters, or holding control
        characters but tab and line feed, or bidirectional overrides.
    """
    return check_optional_text("comments", comments, max_length=LIMITS["comment"], multiline=True)


def check_codes(type_code: Code | None, class_code: str | None, author: Author) -> tuple[Code, str]:
    """The type and class codes of a document, checked against the DMP's value sets.

    The type must be in JDV_J66_TypeCode_DMP (the CI-SIS J07 is wider: "en cas d'envoi au
    DMP, le Gestionnaire doit contrôler que le type de document appartient au JDV_J66",
    docs/domain-rules.md §3.3); the class is the one ASS_X16 gives for it, and a class given
    explicitly must be that one. The patient and their representatives deposit only the
    DOCPAT and EXPPAT types (TRE_A05); professionals, establishments and apps deposit neither
    those nor the insurer's reimbursement data (``REMB``, class 60), which only the health
    insurer deposits (R1111-42 1° d).

    :raises ValidationError: an unknown or inconsistent code, or a type the author may not
        deposit.
    """
    if type_code is None:
        raise ValidationError("a document needs a type code (XDS typeCode)")
    klass = class_code_for(type_code.code, type_code.system)
    # ASS_X16 (2024-02-23) is "restreinte aux codes des JDV_J66": a type it maps is a J66
    # type, such as 11526-1, which the shipped J66 (1.1.0) predates.
    if not (is_member("J66", type_code.code, type_code.system) or klass is not None):
        raise ValidationError(
            f"type code {type_code.code!r} ({type_code.system}) is not in the DMP value set "
            "JDV_J66_TypeCode_DMP"
        )
    if klass is None:
        raise ValidationError(f"no class code is known for type code {type_code.code!r}")
    if class_code is not None and class_code != klass:
        raise ValidationError(
            f"class code {class_code!r} is inconsistent with type code "
            f"{type_code.code!r} (expected {klass!r})"
        )
    patient_type = type_code.system == TRE_A05_TYPE and type_code.code.startswith(_PATIENT_TYPES)
    if author.kind in (AuthorKind.PATIENT, AuthorKind.REPRESENTATIVE):
        if not patient_type:
            raise ValidationError(
                "documents added by the patient use the DOCPAT or EXPPAT types (TRE_A05)"
            )
    elif author.kind is not AuthorKind.INSURER and (patient_type or klass == _REIMBURSEMENT):
        raise ValidationError(
            f"type code {type_code.code!r} is deposited by the "
            f"{'patient' if patient_type else 'health insurer'} only"
        )
    return type_code, klass


#: The TRE_A05 types of what the patient deposits.
_PATIENT_TYPES = ("DOCPAT", "EXPPAT")
#: The class of the health insurer's reimbursement data (JDV_J57).
_REIMBURSEMENT = "60"


def check_minor_secret(minor_secret: bool, author: Author, class_code: str) -> None:
    """R1111-33: when a minor objected to seeing in their space the care they keep secret,
    the health insurer does not transfer the related reimbursement data. A deposit marked
    *minor_secret* is such data: it never enters the space, so neither the minor's legal
    representatives nor anyone else can read it.

    :raises ValidationError: always when *minor_secret* is set: for the insurer's
        reimbursement data, the refusal R1111-33 asks for; for anything else, a misuse of
        the mark.
    """
    if not minor_secret:
        return
    if author.kind is not AuthorKind.INSURER or class_code != _REIMBURSEMENT:
        raise ValidationError("only the insurer's reimbursement data carry the minor's secrecy")
    raise ValidationError(
        "R1111-33: reimbursement data of care a minor keeps secret are not transferred into "
        "the space"
    )


def check_format_code(
    format_code: str | None, media_type: str, body_media_type: str | None
) -> str | None:
    """The formatCode of a document: one of JDV_J60_FormatCode_DMP when given; derived,
    when absent, from the media type of an unstructured content (ASS_A12: the embedded
    body's for a CDA level 1, the content's own otherwise).

    :raises ValidationError: a formatCode the DMP does not accept.
    """
    if format_code is not None:
        if format_code not in value_set("J60").codes():
            raise ValidationError(
                f"format code {format_code!r} is not in the DMP value set JDV_J60_FormatCode_DMP"
            )
        return format_code
    return format_code_for_media_type(body_media_type or media_type)


def visibility(codes: Iterable[str], confidentiality: str, flags: int) -> tuple[int, str]:
    """The visibility flags and confidentiality level of a document.

    :param codes: the confidentiality codes the document itself carries (a CDA header);
        masking codes add their flag to *flags*, and the highest HL7 level among them is
        the document's level unless the caller chose one other than ``N``.
    :raises ValidationError: a level other than N, R or V.
    """
    carried = set(codes)
    for code in carried:
        flags |= CONFIDENTIALITY_FLAGS.get(code, 0)
    levels = sorted(carried & LEVELS)
    level = levels[-1] if levels and confidentiality == "N" else confidentiality
    if level not in LEVELS:
        raise ValidationError("'confidentiality' must be N, R or V")
    return flags, level


def check_may_hide(flags: int, author: Author) -> None:
    """Only a professional, in their own name or their establishment's, hides a document
    from the patient or from the legal representatives (R1111-50, R1111-53).

    :raises ValidationError: otherwise.
    """
    if flags & (INVISIBLE_PATIENT | INVISIBLE_REPRESENTANTS) and (
        author.kind not in (AuthorKind.PROFESSIONAL, AuthorKind.ESTABLISHMENT)
    ):
        raise ValidationError(
            "only a professional may hide a document from the patient or from the "
            "legal representatives"
        )


def announcement(
    now: datetime, flags: int, settings: RecordSettings
) -> tuple[datetime | None, datetime | None]:
    """When a result hidden from the patient at *now* is released, and when the patient is
    told that it is waiting (R1111-53: within two weeks, released after one month).

    :return: ``(release_at, notify_at)``, both ``None`` for a document not hidden.
    """
    if not flags & INVISIBLE_PATIENT:
        return None, None
    return add_months(now, settings.announcement_months), now + settings.announcement_notice


def matches_words(title: str, comments: str | None, words: list[str]) -> bool:
    """Whether every one of *words* (casefolded) appears in a document's title or comments,
    ignoring case but not accents."""
    haystack = f"{title} {comments or ''}".casefold()
    return all(word in haystack for word in words)


# --- profil médical and measures -------------------------------------------------------------


def check_period(started: date | None, ended: date | None) -> None:
    """A profile entry does not end before it started.

    :raises ValidationError: otherwise.
    """
    if started and ended and ended < started:
        raise ValidationError("'ended' must not be before 'started'")


def check_measured_at(measured_at: datetime, now: datetime) -> None:
    """A measure is not taken in the future.

    :raises ValidationError: otherwise.
    """
    if measured_at > now:
        raise ValidationError("a measure cannot be taken in the future")


def measure_source(actor_kind: ActorKind, actor_id: str) -> str:
    """Who produced a measure: ``"patient"`` when the holder or their representative
    records it, else the id of the actor (a referenced app's client id)."""
    if actor_kind in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE):
        return "patient"
    return actor_id
