"""The medical record.

.. versionadded:: 0.1
"""

from ._measure_model import MEASURE_SPECS, Measure, MeasureKind, MeasureSpec
from ._mime import SUPPORTED_MEDIA_TYPES, check_media_type, sniff
from ._model import (
    LOINC,
    TRE_A03_CLASS,
    TRE_A05_TYPE,
    Author,
    AuthorKind,
    Category,
    Code,
    Document,
    DocumentPage,
    DocumentStatus,
    RecordSettings,
    category_of,
)
from ._parsers import DocumentParser, ParsedDocument
from ._profile_model import ProfileEntry, ProfileSection

__all__ = [
    "LOINC",
    "MEASURE_SPECS",
    "SUPPORTED_MEDIA_TYPES",
    "TRE_A03_CLASS",
    "TRE_A05_TYPE",
    "Author",
    "AuthorKind",
    "Category",
    "Code",
    "Document",
    "DocumentPage",
    "DocumentParser",
    "DocumentStatus",
    "Measure",
    "MeasureKind",
    "MeasureSpec",
    "ParsedDocument",
    "ProfileEntry",
    "ProfileSection",
    "RecordSettings",
    "category_of",
    "check_media_type",
    "sniff",
]
