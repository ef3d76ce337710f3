"""The medical record.

.. versionadded:: 0.1
"""

from ._parsers import DocumentParser, ParsedDocument

__all__ = ["DocumentParser", "ParsedDocument"]
