"""Wire formats for the domain model. The model classes themselves know no format.

.. versionadded:: 0.1
"""

from .json import configure_converter, make_converter, make_row_converter, restructure

__all__ = ["configure_converter", "make_converter", "make_row_converter", "restructure"]
