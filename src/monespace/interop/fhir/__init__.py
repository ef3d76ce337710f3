"""FHIR R4 in and out: export what an actor may see of a person as a Bundle, import
PDSm / "Mesures de santé" transaction bundles and single resources, inspect files.

The models are those of ``fhir.resources`` (``fhir.resources.R4B``, see
``docs/decisions/0013-fhir-models.md``), installed with the ``fhir`` extra. This module
imports without it; the first function that needs the models raises
:class:`~monespace.errors.ConfigurationError` naming the extra.

Errors are :class:`FhirError`, with an HTTP-like ``status`` and an ``outcome``
(OperationOutcome), as the "Mesures de santé" guide reports them.

.. versionadded:: 0.1
"""

from __future__ import annotations

from ._base import (
    FHIR_MODELS,
    KNOWN_PROFILES,
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_INPUT_BYTES,
    FhirError,
    fhir_id,
    load_json,
    space_id,
    system_oid,
    validate,
)
from ._export import (
    APPOINTMENT_STATUS,
    appointment_resource,
    document_resource,
    export_bundle,
    observation_resource,
    patient_resource,
    profile_resource,
)
from ._import import CONSENT_REFUSED, ImportReport, import_fhir
from ._inspect import inspect_file
from ._smart import (
    APP_SCOPE_FAMILIES,
    LAUNCH_SCOPES,
    SmartScope,
    app_scopes,
    parse_smart_scope,
    parse_smart_scopes,
    required_app_scope,
    translate_scope_parameter,
)

__all__ = [
    "APPOINTMENT_STATUS",
    "APP_SCOPE_FAMILIES",
    "CONSENT_REFUSED",
    "FHIR_MODELS",
    "KNOWN_PROFILES",
    "LAUNCH_SCOPES",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_INPUT_BYTES",
    "FhirError",
    "ImportReport",
    "SmartScope",
    "app_scopes",
    "appointment_resource",
    "document_resource",
    "export_bundle",
    "fhir_id",
    "import_fhir",
    "inspect_file",
    "load_json",
    "observation_resource",
    "parse_smart_scope",
    "parse_smart_scopes",
    "patient_resource",
    "profile_resource",
    "required_app_scope",
    "space_id",
    "system_oid",
    "translate_scope_parameter",
    "validate",
]
