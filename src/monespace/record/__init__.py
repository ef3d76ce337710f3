"""The medical record.

.. versionadded:: 0.1
"""

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
    DocumentStatus,
    category_of,
)
from ._parsers import DocumentParser, ParsedDocument

__all__ = [
    "LOINC",
    "SUPPORTED_MEDIA_TYPES",
    "TRE_A03_CLASS",
    "TRE_A05_TYPE",
    "Author",
    "AuthorKind",
    "Category",
    "Code",
    "Document",
    "DocumentParser",
    "DocumentStatus",
    "ParsedDocument",
    "category_of",
    "check_media_type",
    "sniff",
]
