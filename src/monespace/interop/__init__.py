"""Interoperability edges: reading the documents of other systems.

* :mod:`monespace.interop.cda` reads CDA R2 documents (DMP, CI-SIS), plain or
  "auto-présentable", structured (N3) or not (N1).
* :func:`parse_xml` is the hardened XML parser every XML input goes through.

Errors are :class:`~monespace.errors.ValidationError` subclasses::

    ValidationError
    ├── MalformedDocumentError       (not well-formed XML: empty, truncated, mis-encoded)
    │   └── InvalidCdaError          (XML, but not a readable CDA R2 document)
    ├── HostileDocumentError         (DTD entities, external DTD or resource, parser limits)
    └── DocumentTooLargeError        (over the size limit; not parsed)

.. versionadded:: 0.1
"""

from __future__ import annotations

from .._xml import (
    DEFAULT_MAX_BYTES,
    DocumentTooLargeError,
    HostileDocumentError,
    MalformedDocumentError,
    parse_xml,
)
from .cda import CdaDocument, CdaParser, InvalidCdaError, read_cda

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CdaDocument",
    "CdaParser",
    "DocumentTooLargeError",
    "HostileDocumentError",
    "InvalidCdaError",
    "MalformedDocumentError",
    "parse_xml",
    "read_cda",
]
