"""National identifiers: NIR, INS, RPPS and MSSanté addresses; the professions (TRE_G15).

Every class here is an immutable attrs object that validates on construction, so holding one
means holding a well-formed identifier. Errors are the ``Invalid*Error`` classes of
:mod:`monespace.errors`; their messages name the rule that failed and never the identifier,
and the reprs of personal identifiers (NIR, INS, patient addresses) are masked.

.. versionadded:: 0.1
"""

from __future__ import annotations

from monespace.identity._ins import (
    INS,
    INS_NIA_OID,
    INS_NIR_DEMO_OID,
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    INSTraits,
)
from monespace.identity._mssante import (
    MSSANTE_DOMAIN,
    PATIENT_MSSANTE_DOMAIN,
    MSSanteAddress,
    parse_professional_address,
    patient_address,
)
from monespace.identity._nir import NIR, Sex, is_valid_nir
from monespace.identity._professions import (
    PROFESSION_CODE_SYSTEM,
    profession_code,
    professions,
)
from monespace.identity._rpps import RPPS, is_valid_rpps

__all__ = [
    "INS",
    "INS_NIA_OID",
    "INS_NIR_DEMO_OID",
    "INS_NIR_OID",
    "INS_NIR_TEST_OID",
    "MSSANTE_DOMAIN",
    "NIR",
    "PATIENT_MSSANTE_DOMAIN",
    "PROFESSION_CODE_SYSTEM",
    "RPPS",
    "INSTraits",
    "MSSanteAddress",
    "Sex",
    "is_valid_nir",
    "is_valid_rpps",
    "parse_professional_address",
    "patient_address",
    "profession_code",
    "professions",
]
