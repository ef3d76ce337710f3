"""Checkpoints as a JSON document, to keep outside the database.

The document lists public keys too, for an auditor who has no key provider: they are a
convenience, never trusted by :meth:`monespace.AuditService.verify`, which takes public keys
from the key provider only (whoever can write the file could write a key of their own).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..errors import ValidationError
from ._model import Checkpoint, ShardHead

__all__ = ["CHECKPOINTS_FORMAT", "checkpoints_from_json", "checkpoints_to_json"]

#: The ``format`` of an exported checkpoint document.
CHECKPOINTS_FORMAT = "monespace-audit-checkpoints/1"


def checkpoints_to_json(
    checkpoints: Iterable[Checkpoint], public_keys: Mapping[str, bytes] | None = None
) -> str:
    """The JSON document that holds *checkpoints* (and the public keys that sign them)."""
    document = {
        "format": CHECKPOINTS_FORMAT,
        "public_keys": {
            key_id: base64.b64encode(key).decode() for key_id, key in (public_keys or {}).items()
        },
        "checkpoints": [
            {
                "number": c.number,
                "at": c.at.isoformat(),
                "root": c.root.hex(),
                "key_id": c.key_id,
                "signature": base64.b64encode(c.signature).decode(),
                "heads": [
                    {"shard": h.shard, "seq": h.seq, "hash": h.hash.hex(), "count": h.count}
                    for h in c.heads
                ],
            }
            for c in checkpoints
        ],
    }
    return json.dumps(document, indent=1) + "\n"


def checkpoints_from_json(text: str) -> list[Checkpoint]:
    """The checkpoints of a document written by :func:`checkpoints_to_json`.

    :raises ValidationError: when the document is not one (its signatures are checked by
        verification, not here).
    """
    try:
        document = json.loads(text)
        recognised = isinstance(document, dict) and document.get("format") == CHECKPOINTS_FORMAT
        checkpoints = (
            [_checkpoint(item) for item in document["checkpoints"]] if recognised else None
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ValidationError("the checkpoint document is malformed") from exc
    if checkpoints is None:
        raise ValidationError("this is not an exported checkpoint document")
    return checkpoints


def _checkpoint(item: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        number=int(item["number"]),
        at=datetime.fromisoformat(item["at"]),
        heads=tuple(
            ShardHead(str(h["shard"]), int(h["seq"]), bytes.fromhex(h["hash"]), int(h["count"]))
            for h in item["heads"]
        ),
        root=bytes.fromhex(item["root"]),
        key_id=str(item["key_id"]),
        signature=base64.b64decode(item["signature"], validate=True),
    )
