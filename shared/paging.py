"""The opaque keyset cursor every service's paginated lists hand out and take back."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.errors import ApiError


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the (created_at, id) of the last row of the previous page."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        """Opaque string form."""
        raw = json.dumps([self.created_at.isoformat(), str(self.id)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor; a 400 error if it was not made by :meth:`encode`."""
        try:
            padded = text + "=" * (-len(text) % 4)
            created_at, ident = json.loads(base64.urlsafe_b64decode(padded))
            return cls(datetime.fromisoformat(created_at), uuid.UUID(ident))
        except (ValueError, TypeError) as exc:
            raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
