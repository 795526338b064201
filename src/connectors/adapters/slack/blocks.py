"""Slack's message content limits, checked before sending so a bad message costs no API call.

Slack documents: at most 50 blocks per message (100 in modals and Home tabs), ``text`` of at most
40,000 characters (chat.postMessage truncates beyond it with a ``message_truncated`` warning;
chat.update and chat.postEphemeral refuse it), at most 100 attachments, ``markdown_text`` of at
most 12,000 characters and never together with ``text`` or ``blocks``, and every block an object
with a ``type``. A message needs ``text``, ``blocks``, ``attachments`` or ``markdown_text``.

:func:`check_message` raises :class:`~connectors.errors.InvalidRequest` whose ``fields`` name the
offending field, so the caller knows what to fix without reading Slack's error codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from connectors.errors import FieldError, InvalidRequest

__all__ = ["MAX_ATTACHMENTS", "MAX_BLOCKS", "MAX_MARKDOWN", "MAX_TEXT", "check_message"]

MAX_BLOCKS: Final = 50
MAX_TEXT: Final = 40_000
MAX_MARKDOWN: Final = 12_000
MAX_ATTACHMENTS: Final = 100


def check_message(
    *,
    text: str | None = None,
    blocks: Sequence[Mapping[str, object]] | None = None,
    attachments: Sequence[Mapping[str, object]] | None = None,
    markdown_text: str | None = None,
) -> None:
    """Raise :class:`InvalidRequest` naming every field that breaks Slack's limits."""
    problems: list[FieldError] = []
    if text is not None and len(text) > MAX_TEXT:
        problems.append(
            FieldError(
                "text",
                f"{len(text):,} characters; Slack accepts at most {MAX_TEXT:,}",
                "msg_too_long",
            )
        )
    if blocks is not None:
        if len(blocks) > MAX_BLOCKS:
            problems.append(
                FieldError(
                    "blocks",
                    f"{len(blocks)} blocks; a message may have at most {MAX_BLOCKS}",
                    "invalid_blocks",
                )
            )
        for index, block in enumerate(blocks):
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                problems.append(
                    FieldError(
                        f"blocks[{index}]", "must be an object with a 'type'", "invalid_blocks"
                    )
                )
                break
    if attachments is not None and len(attachments) > MAX_ATTACHMENTS:
        problems.append(
            FieldError(
                "attachments",
                f"{len(attachments)} attachments; at most {MAX_ATTACHMENTS}",
                "too_many_attachments",
            )
        )
    if markdown_text is not None:
        if len(markdown_text) > MAX_MARKDOWN:
            problems.append(
                FieldError(
                    "markdown_text",
                    f"{len(markdown_text):,} characters; at most {MAX_MARKDOWN:,}",
                    "msg_too_long",
                )
            )
        if text is not None or blocks is not None:
            problems.append(
                FieldError(
                    "markdown_text",
                    "cannot be combined with text or blocks",
                    "markdown_text_conflict",
                )
            )
    if not text and not blocks and not attachments and not markdown_text:
        problems.append(
            FieldError(
                "text", "a message needs text, blocks, attachments or markdown_text", "no_text"
            )
        )
    if problems:
        names = ", ".join(dict.fromkeys(p.field for p in problems))
        raise InvalidRequest(
            f"the Slack message is invalid ({names})",
            fields=problems,
            provider_code=problems[0].code,
            hint="fix the named fields; the message was not sent",
        )
