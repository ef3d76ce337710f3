"""Reading legacy DMP exports: a folder of CDA R2 files, or IHE XDM archives (ZIP).

An XDM archive (IHE ITI TF-3 §4.3, "Cross-enterprise Document Media Interchange") holds one or
more submission sets under ``IHE_XDM/<SUBSET>/``, each with a ``METADATA.XML`` (ebRIM) and the
documents. The reader checks the whole archive before yielding anything, so a truncated or
hostile archive is refused as a whole and nothing of it is imported.

Archives are streamed: members are decompressed through a small buffer, counted and hashed as
they are read, and the reading stops as soon as a limit is crossed. Checking the archive reads
every member once without keeping it; the documents are then read again, one at a time, so
memory holds one document, whatever the size of the archive.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Final

import attrs

from .._xml import DEFAULT_MAX_BYTES, parse_xml
from ..errors import DocumentTooLargeError, HostileDocumentError, MalformedDocumentError

__all__ = [
    "LegacyDocument",
    "XdmLimits",
    "count_legacy_documents",
    "formula_safe",
    "iter_legacy_documents",
    "matches_declared_hash",
]

_RIM: Final = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"
_SKIPPED_NAMES: Final = frozenset({"METADATA.XML", "INDEX.HTM", "README.TXT"})
#: Bytes decompressed per read: the buffer that bounds the reader's own memory.
_CHUNK: Final = 256 * 1024


@attrs.frozen
class XdmLimits:
    """Bounds on what an archive may expand to (zip bombs, absurd archives).

    Sizes are checked twice: against what the archive declares, before anything is read, and
    against the bytes actually decompressed, as they are read.

    :param max_entries: files in one archive.
    :param max_member_bytes: uncompressed size of one file; ``None``: the reader's
        ``max_bytes`` (20 MiB by default, the largest document a space accepts).
    :param max_total_bytes: uncompressed size of the whole archive, every file counted
        (512 MiB by default).
    :param max_ratio: uncompressed / compressed size of one file.
    """

    max_entries: int = 10_000
    max_total_bytes: int = 512 * 1024**2
    max_ratio: int = 200
    max_member_bytes: int | None = None


@attrs.frozen(repr=False)
class LegacyDocument:
    """One document of a legacy DMP export.

    :param source: where it comes from (``archive.zip!IHE_XDM/SUBSET01/DOC0001.XML`` or a path
        relative to the folder given), for the reconciliation ledger.
    :param declared_hash: the hex hash the archive's metadata declares for it, if any
        (SHA-1 in XDS).
    :param sha256: the hex SHA-256 of the bytes; computed from them when not given (the
        readers pass the one they computed while reading).
    """

    source: str
    data: bytes
    declared_hash: str | None = None
    sha256: str = attrs.field(
        kw_only=True,
        default=attrs.Factory(lambda self: hashlib.sha256(self.data).hexdigest(), takes_self=True),
    )

    def __repr__(self) -> str:
        return f"LegacyDocument(source={self.source!r}, size={len(self.data)})"


def iter_legacy_documents(
    path: str | Path,
    *,
    limits: XdmLimits | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[LegacyDocument]:
    """Yield the documents of a folder (``*.xml`` files, recursively) or an XDM archive.

    Documents are read one at a time, as they are asked for: a caller that releases each
    one before asking for the next holds one document in memory.

    :param limits: the bounds of an archive (:class:`XdmLimits` by default).
    :param max_bytes: the largest document, in a folder or (unless ``limits`` says
        otherwise) in an archive.
    :raises MalformedDocumentError: for a truncated or corrupt archive, or a path that is
        neither a folder nor a ZIP file.
    :raises HostileDocumentError: for an archive that escapes its root or would expand beyond
        the limits.
    :raises DocumentTooLargeError: for a file over the size limit (the message names it).
    """
    source = Path(path)
    if source.is_dir():
        yield from _iter_folder(source, max_bytes)
    elif zipfile.is_zipfile(source):
        yield from _iter_xdm(source, limits or XdmLimits(), max_bytes)
    else:
        raise MalformedDocumentError(f"{source.name} is neither a folder nor an XDM archive")


def count_legacy_documents(path: str | Path) -> int:
    """How many documents :func:`iter_legacy_documents` would yield from *path*, from the
    folder's listing or the archive's central directory (nothing is read or decompressed):
    the length of a progress bar. A source that cannot be listed counts 0; reading it
    raises the error.

    .. versionadded:: 0.2
    """
    source = Path(path)
    try:
        if source.is_dir():
            return sum(1 for _ in _folder_documents(source))
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as zf:
                return sum(1 for info in zf.infolist() if not info.is_dir() and _is_document(info))
    except (zipfile.BadZipFile, OSError):
        return 0
    return 0


def _folder_documents(root: Path) -> Iterator[Path]:
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        if file.suffix.lower() != ".xml" or file.name.upper() in _SKIPPED_NAMES:
            continue
        if file.is_symlink():
            continue  # a link could point anywhere: only real files of the folder are read
        yield file


def _iter_folder(root: Path, max_bytes: int) -> Iterator[LegacyDocument]:
    for file in _folder_documents(root):
        yield _read_file(file, str(file.relative_to(root)), max_bytes)


def _read_file(file: Path, source: str, max_bytes: int) -> LegacyDocument:
    size = file.stat().st_size
    if size > max_bytes:
        raise DocumentTooLargeError(size, max_bytes, source=source)
    with file.open("rb") as handle:
        # Bounded even if the file grew since it was measured.
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DocumentTooLargeError(len(data), max_bytes, source=source)
    return LegacyDocument(source, data)


def _member_limit(limits: XdmLimits, max_bytes: int) -> int:
    return max_bytes if limits.max_member_bytes is None else limits.max_member_bytes


def _is_document(info: zipfile.ZipInfo) -> bool:
    name = PurePosixPath(info.filename)
    return name.suffix.upper() == ".XML" and name.name.upper() not in _SKIPPED_NAMES


class _Reader:
    """Streams the members of one archive within its limits: each member's size, and the
    total of every byte decompressed from the archive, are counted as they are read."""

    def __init__(
        self, archive: Path, zf: zipfile.ZipFile, limits: XdmLimits, max_bytes: int
    ) -> None:
        self.archive = archive
        self.zf = zf
        self.max_total = limits.max_total_bytes
        self.max_member = _member_limit(limits, max_bytes)
        self.total = 0

    def source(self, info: zipfile.ZipInfo) -> str:
        return f"{self.archive.name}!{info.filename}"

    def read(self, info: zipfile.ZipInfo, sink: IO[bytes] | None) -> str:
        """Decompress *info* into *sink* (or nowhere), checking its CRC (zipfile does, at the
        end of the member) and the limits; return its hex SHA-256."""
        digest = hashlib.sha256()
        size = 0
        with self.zf.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                self.total += len(chunk)
                if size > self.max_member:
                    raise DocumentTooLargeError(size, self.max_member, source=self.source(info))
                if self.total > self.max_total:
                    raise HostileDocumentError(
                        f"{self.archive.name} expands beyond its budget of {self.max_total} bytes",
                        reason="zip-size",
                    )
                digest.update(chunk)
                if sink is not None:
                    sink.write(chunk)
        return digest.hexdigest()


def _iter_xdm(archive: Path, limits: XdmLimits, max_bytes: int) -> Iterator[LegacyDocument]:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _checked_members(archive, zf, limits, max_bytes)
            # Read and check every member (CRC, sizes, budget) before yielding the first: a
            # corrupt or oversized archive is refused whole, so a run never imports half of it.
            # Only the hashes, and the metadata, are kept.
            checker = _Reader(archive, zf, limits, max_bytes)
            verified: dict[str, str] = {}
            metadata: list[bytes] = []
            for info in members:
                if PurePosixPath(info.filename).name.upper() == "METADATA.XML":
                    buffer = io.BytesIO()
                    verified[info.filename] = checker.read(info, buffer)
                    metadata.append(buffer.getvalue())
                else:
                    verified[info.filename] = checker.read(info, None)
            hashes = _declared_hashes(metadata, max_bytes)
            del metadata
            reader = _Reader(archive, zf, limits, max_bytes)
            for info in members:
                if _is_document(info):
                    yield _read_document(reader, info, verified[info.filename], hashes)
    # RuntimeError: zipfile's word for an encrypted member, and (NotImplementedError) for an
    # unknown compression method.
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, RuntimeError) as exc:
        raise MalformedDocumentError(f"{archive.name} is not a readable ZIP archive") from exc


def _read_document(
    reader: _Reader, info: zipfile.ZipInfo, verified: str, hashes: dict[str, str]
) -> LegacyDocument:
    buffer = io.BytesIO()
    sha256 = reader.read(info, buffer)
    if sha256 != verified:
        raise MalformedDocumentError(f"{reader.archive.name} changed while it was being read")
    return LegacyDocument(
        reader.source(info),
        # getvalue() shares the buffer's bytes rather than copying them.
        buffer.getvalue(),
        hashes.get(PurePosixPath(info.filename).name.upper()),
        sha256=sha256,
    )


def _checked_members(
    archive: Path, zf: zipfile.ZipFile, limits: XdmLimits, max_bytes: int
) -> list[zipfile.ZipInfo]:
    """The archive's files, once what it declares is found within the limits."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_entries:
        raise HostileDocumentError(f"{archive.name} has too many files", reason="zip-entries")
    max_member = _member_limit(limits, max_bytes)
    total = 0
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
            raise HostileDocumentError(
                f"{archive.name} holds a path outside its root", reason="zip-path"
            )
        if info.file_size > max_member:
            raise DocumentTooLargeError(
                info.file_size, max_member, source=f"{archive.name}!{info.filename}"
            )
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            raise HostileDocumentError(f"{archive.name} expands suspiciously", reason="zip-ratio")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise HostileDocumentError(
                f"{archive.name} would expand beyond its budget of {limits.max_total_bytes} bytes",
                reason="zip-size",
            )
    if not any(PurePosixPath(i.filename).parts[:1] == ("IHE_XDM",) for i in infos):
        raise MalformedDocumentError(
            f"{archive.name} has no IHE_XDM folder: it is not an XDM archive"
        )
    return infos


def _declared_hashes(metadata: list[bytes], max_bytes: int) -> dict[str, str]:
    """Document file name → SHA-1 or SHA-256 hex declared in the METADATA.XML files.

    XDS declares a SHA-1 ``hash`` slot per document and the ``URI`` slot names its file.
    """
    declared: dict[str, str] = {}
    for data in metadata:
        root = parse_xml(data, max_bytes=max_bytes)
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


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(cell: str | None) -> str:
    """A CSV cell that a spreadsheet shows as text and never runs as a formula.

    A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    prefixed with ``'``, as OWASP recommends against CSV injection: a ledger's source names
    come from the archives and folders imported, which anyone could have named. ``None`` is
    the empty cell.

    .. versionadded:: 0.1
    """
    if cell is None:
        return ""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
