"""A transport that writes each notification as a file: postal letters, local demos.

Each notification becomes ``<id>.eml`` (an RFC 5322 message; letters are rendered the same
way, for a print shop to pick up). Files are written to a temporary name, fsynced and
renamed, so a reader never sees half a letter, and an existing file means the notification
was already delivered.

The files are **not encrypted**: a letter that carries a code provisoire (account opening)
holds the code in clear, since a print shop must print it. The directory is created with
mode 0700 and each file with mode 0600; keep it on an encrypted volume, and remove the files
once they are handed over (docs/explanation/security.md, "What is not encrypted").
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError, TransportError
from ._base import Envelope, Receipt, Transport

__all__ = ["FileTransport"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class FileTransport(Transport):
    """Writes notifications into *directory* (created if missing, mode 0700), in clear:
    a code provisoire in a letter is readable in its file (see the module's docstring).

    URL: ``file:///absolute/dir`` or ``file:relative/dir``.
    """

    name: ClassVar[str] = "file"
    schemes: ClassVar[tuple[str, ...]] = ("file",)

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigurationError("a file transport URL looks like file:///path/to/dir")
        return cls(unquote(parts.path))

    def path_for(self, message_id: str) -> Path:
        """Where the notification *message_id* is (or will be) written."""
        if not _SAFE_ID.match(message_id):
            # Ids become file names: refuse anything that could climb out of the directory.
            raise TransportError("notification id is not a safe file name", permanent=True)
        return self.directory / f"{message_id}.eml"

    def send(self, envelope: Envelope) -> Receipt:
        target = self.path_for(envelope.id)
        if target.exists():
            return Receipt(envelope.id, self.name, reference=str(target), duplicate=True)
        message = EmailMessage(policy=SMTP)
        try:
            message["Message-ID"] = f"<{envelope.id}@monespace.invalid>"
            message["X-Monespace-Channel"] = envelope.channel
            message["X-Monespace-Kind"] = envelope.kind
            message["To"] = envelope.recipient
            message["Subject"] = envelope.subject
            message["Date"] = envelope.created_at
        except ValueError as exc:
            # The email package refuses CR/LF in headers: header injection stops here.
            raise TransportError("notification header is malformed", permanent=True) from exc
        # 8bit UTF-8 keeps letters readable as files (a print shop reads them as text).
        message.set_content(envelope.body, cte="8bit")
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.as_bytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise TransportError(f"could not write to {self.directory}: {exc.strerror}") from exc
        return Receipt(envelope.id, self.name, reference=str(target))

    def __repr__(self) -> str:
        return f"FileTransport({str(self.directory)!r})"
