"""The email connector: SMTP sending and IMAP reading with modern auth.

Modules, one concept each:

- :mod:`.connector`: :class:`EmailConnector`, the ``@operation`` surface;
- :mod:`.settings`: the settings, parsed and validated at connect time;
- :mod:`.addresses`: strict address validation for sending, lenient reading;
- :mod:`.message`: :class:`OutgoingEmail`, MIME building and the streamed wire form;
- :mod:`.smtp`: the SMTP connection pool and one delivery attempt;
- :mod:`.imap`: IMAP sessions in worker threads and their pool; :mod:`.mailbox`: commands;
- :mod:`.criteria`: the SEARCH criteria builder; :mod:`.parse`: :class:`EmailMessage`;
- :mod:`.watermark`: incremental-sync positions keyed by UIDVALIDITY;
- :mod:`.idle`: IMAP IDLE as an async iterator; :mod:`.xoauth2`: XOAUTH2 and tokens;
- :mod:`.classify`: SMTP/IMAP failures as typed errors.
"""

from connectors.adapters.email.addresses import Address
from connectors.adapters.email.connector import PROVIDER_SCOPES, EmailConnector
from connectors.adapters.email.criteria import Criteria
from connectors.adapters.email.mailbox import Folder
from connectors.adapters.email.message import Attachment, OutgoingEmail, PreparedMessage, prepare
from connectors.adapters.email.parse import AttachmentInfo, EmailMessage
from connectors.adapters.email.smtp import PoolStats, RecipientRefusal, SendResult
from connectors.adapters.email.watermark import EmailWatermarkRow, SyncResult, Watermark

__all__ = [
    "PROVIDER_SCOPES",
    "Address",
    "Attachment",
    "AttachmentInfo",
    "Criteria",
    "EmailConnector",
    "EmailMessage",
    "EmailWatermarkRow",
    "Folder",
    "OutgoingEmail",
    "PoolStats",
    "PreparedMessage",
    "RecipientRefusal",
    "SendResult",
    "SyncResult",
    "Watermark",
    "prepare",
]
