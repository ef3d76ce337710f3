"""Reading legacy DMP exports: a folder of CDA R2 files, or IHE XDM archives (ZIP).

An XDM archive (IHE ITI TF-3 §4.3, "Cross-enterprise Document Media Interchange") holds one or
more submission sets under ``IHE_XDM/<SUBSET>/``, each with a ``METADATA.XML`` (ebRIM) and the
documents. The reader checks the whole archive before yielding anything, so a truncated or
hostile archive is refused as a whole and nothing of it is imported.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Final

import attrs

from .._xml import DEFAULT_MAX_BYTES, parse_xml
from ..errors import DocumentTooLargeError, HostileDocumentError, MalformedDocumentError

__all__ = ["LegacyDocument", "XdmLimits", "iter_legacy_documents", "matches_declared_hash"]

_RIM: Final = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"
_SKIPPED_NAMES: Final = frozenset({"METADATA.XML", "INDEX.HTM", "README.TXT"})


@attrs.frozen
class XdmLimits:
    """Bounds on what an archive may expand to (zip bombs, absurd archives).

    :param max_entries: files in one archive.
    :param max_total_bytes: uncompressed size of the whole archive.
    :param max_ratio: uncompressed / compressed size of one file.
    """

    max_entries: int = 10_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: int = 200


@attrs.frozen(repr=False)
class LegacyDocument:
    """One document of a legacy DMP export.

    :param source: where it comes from (``archive.zip!IHE_XDM/SUBSET01/DOC0001.XML`` or a path
        relative to the folder given), for the reconciliation ledger.
    :param declared_hash: the hex hash the archive's metadata declares for it, if any
        (SHA-1 in XDS).
    """

    source: str
    data: bytes
    declared_hash: str | None = None

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def __repr__(self) -> str:
        return f"LegacyDocument(source={self.source!r}, size={len(self.data)})"


def iter_legacy_documents(
    path: str | Path,
    *,
    limits: XdmLimits | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[LegacyDocument]:
    """Yield the documents of a folder (``*.xml`` files, recursively) or an XDM archive.

    :raises MalformedDocumentError: for a truncated or corrupt archive, or a path that is
        neither a folder nor a ZIP file.
    :raises HostileDocumentError: for an archive that escapes its root or would expand beyond
        the limits.
    """
    source = Path(path)
    if source.is_dir():
        yield from _iter_folder(source, max_bytes)
    elif zipfile.is_zipfile(source):
        yield from _iter_xdm(source, limits or XdmLimits(), max_bytes)
    else:
        raise MalformedDocumentError(f"{source.name} is neither a folder nor an XDM archive")


def _iter_folder(root: Path, max_bytes: int) -> Iterator[LegacyDocument]:
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        if file.suffix.lower() != ".xml" or file.name.upper() in _SKIPPED_NAMES:
            continue
        if file.is_symlink():
            continue  # a link could point anywhere: only real files of the folder are read
        size = file.stat().st_size
        if size > max_bytes:
            raise DocumentTooLargeError(size, max_bytes)
        yield LegacyDocument(str(file.relative_to(root)), file.read_bytes())


def _iter_xdm(archive: Path, limits: XdmLimits, max_bytes: int) -> Iterator[LegacyDocument]:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _checked_members(zf, limits, max_bytes)
            # Read and check every member before yielding the first: a corrupt archive is
            # refused whole, so a run never imports half of it.
            broken = zf.testzip()
            if broken is not None:
                raise MalformedDocumentError(f"{archive.name} is corrupt (member {broken})")
            hashes = _declared_hashes(zf, members, max_bytes)
            documents = [
                LegacyDocument(
                    f"{archive.name}!{info.filename}",
                    zf.read(info),
                    hashes.get(PurePosixPath(info.filename).name.upper()),
                )
                for info in members
                if PurePosixPath(info.filename).suffix.upper() == ".XML"
                and PurePosixPath(info.filename).name.upper() not in _SKIPPED_NAMES
            ]
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise MalformedDocumentError(f"{archive.name} is not a readable ZIP archive") from exc
    yield from documents


def _checked_members(
    zf: zipfile.ZipFile, limits: XdmLimits, max_bytes: int
) -> list[zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_entries:
        raise HostileDocumentError("the archive has too many files", reason="zip-entries")
    total = 0
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
            raise HostileDocumentError(
                "the archive holds a path outside its root", reason="zip-path"
            )
        if info.file_size > max_bytes:
            raise DocumentTooLargeError(info.file_size, max_bytes)
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            raise HostileDocumentError("the archive expands suspiciously", reason="zip-ratio")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise HostileDocumentError("the archive expands beyond the limit", reason="zip-size")
    if not any(PurePosixPath(i.filename).parts[:1] == ("IHE_XDM",) for i in infos):
        raise MalformedDocumentError("the archive has no IHE_XDM folder: it is not an XDM archive")
    return infos


def _declared_hashes(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], max_bytes: int
) -> dict[str, str]:
    """Document file name → SHA-1 or SHA-256 hex declared in the METADATA.XML files.

    XDS declares a SHA-1 ``hash`` slot per document and the ``URI`` slot names its file.
    """
    declared: dict[str, str] = {}
    for info in members:
        if PurePosixPath(info.filename).name.upper() != "METADATA.XML":
            continue
        root = parse_xml(zf.read(info), max_bytes=max_bytes)
        for extrinsic in root.iter(f"{_RIM}ExtrinsicObject"):
            slots = {
                slot.get("name"): [v.text or "" for v in slot.iter(f"{_RIM}Value")]
                for slot in extrinsic.iter(f"{_RIM}Slot")
            }
            uri = (slots.get("URI") or [""])[0].strip()
            digest = (slots.get("hash") or [""])[0].strip().lower()
            if uri and digest:
                declared[PurePosixPath(uri).name.upper()] = digest
    return declared


def matches_declared_hash(document: LegacyDocument) -> bool:
    """Whether the document's bytes have the hash its archive declared (SHA-1 in XDS)."""
    if document.declared_hash is None:
        return True
    expected = document.declared_hash
    algorithm = hashlib.sha1 if len(expected) == 40 else hashlib.sha256
    return algorithm(document.data).hexdigest() == expected
