"""The medical record.

.. versionadded:: 0.1
"""

from ._codes import (
    TRE_A07_OID,
    class_code_for,
    class_code_system_for,
    normalise_code_system,
    type_label,
)
from ._mapping import ENTRY_KIND, MEASURE_KIND, entry_from_row, measure_from_row
from ._measure_model import MEASURE_SPECS, Device, Measure, MeasureKind, MeasureSpec
from ._mime import SUPPORTED_MEDIA_TYPES, check_media_type, detect_media_type, sniff
from ._model import (
    LOINC,
    TRE_A03_CLASS,
    TRE_A05_TYPE,
    Author,
    AuthorKind,
    BatchResult,
    Category,
    Code,
    Document,
    DocumentPage,
    DocumentStatus,
    NewDocument,
    RecordSettings,
    Rejection,
    category_of,
)
from ._parsers import DocumentParser, ParsedDocument
from ._profile_model import SECTION_TITLES, ProfileEntry, ProfileSection
from ._rules import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS,
    MASQUE_PS,
    has_flag,
    hidden_from_patient_at,
)

__all__ = [
    "ENTRY_KIND",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REPRESENTANTS",
    "LOINC",
    "MASQUE_PS",
    "MEASURE_KIND",
    "MEASURE_SPECS",
    "SECTION_TITLES",
    "SUPPORTED_MEDIA_TYPES",
    "TRE_A03_CLASS",
    "TRE_A05_TYPE",
    "TRE_A07_OID",
    "Author",
    "AuthorKind",
    "BatchResult",
    "Category",
    "Code",
    "Device",
    "Document",
    "DocumentPage",
    "DocumentParser",
    "DocumentStatus",
    "Measure",
    "MeasureKind",
    "MeasureSpec",
    "NewDocument",
    "ParsedDocument",
    "ProfileEntry",
    "ProfileSection",
    "RecordSettings",
    "Rejection",
    "category_of",
    "check_media_type",
    "class_code_for",
    "class_code_system_for",
    "detect_media_type",
    "entry_from_row",
    "has_flag",
    "hidden_from_patient_at",
    "measure_from_row",
    "normalise_code_system",
    "sniff",
    "type_label",
]
