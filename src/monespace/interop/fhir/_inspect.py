"""What a FHIR file is, without importing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._base import MAX_ENTRIES, FhirError, load_json, profiles_of, validate

__all__ = ["inspect_file"]


def inspect_file(path: str | Path) -> dict[str, Any]:
    """A summary of one FHIR JSON file: ``file``, ``resourceType``, ``id``, ``profile`` (the
    profiles it claims), ``entries`` (the number of entries of a Bundle, else ``None``),
    ``bundle_type`` and ``error`` (``None``, or why it could not be read as FHIR R4).

    It never raises for a bad file: the reason is in ``error``.

    .. versionadded:: 0.1
    """
    summary: dict[str, Any] = {
        "file": str(path),
        "resourceType": None,
        "id": None,
        "profile": [],
        "entries": None,
        "bundle_type": None,
        "error": None,
    }
    try:
        resource = load_json(Path(path).read_bytes())
        summary["resourceType"] = resource.get("resourceType")
        summary["id"] = resource.get("id")
        summary["profile"] = profiles_of(resource)
        if resource.get("resourceType") == "Bundle":
            entries = resource.get("entry") or []
            summary["entries"] = len(entries) if isinstance(entries, list) else None
            summary["bundle_type"] = resource.get("type")
            if isinstance(entries, list) and len(entries) > MAX_ENTRIES:
                raise FhirError(400, f"a bundle holds at most {MAX_ENTRIES} entries")
        validate(resource)
    except FhirError as exc:
        summary["error"] = str(exc)
    except OSError as exc:
        summary["error"] = f"cannot read the file ({exc.strerror or type(exc).__name__})"
    return summary
