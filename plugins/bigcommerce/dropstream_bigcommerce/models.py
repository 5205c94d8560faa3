"""The plugin's one table: ``signed_payload_jwt`` ids already used, so a captured callback URL
cannot be replayed while its token is still valid (BigCommerce's tokens live 24 hours).

It belongs to no tenant (a jti is checked before DropStream knows whose store the callback is
for) and holds nothing secret. Rows are deleted once their token has expired, since an expired
token is refused anyway. Registered on the core's metadata through the ``dropstream.models``
entry point, so the one migration history sees it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from dropstream.db import UTCDateTime, utcnow
from dropstream.extensions import db


class UsedJwt(db.Model):
    __tablename__ = "bigcommerce_used_jtis"

    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    store_hash: Mapped[str] = mapped_column(String(64))
    #: The token's own expiry: after it, the row may go (the token is refused by its ``exp``).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
