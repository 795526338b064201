"""Pieces shared by Bulk API 2.0 ingest and query jobs: states, ids, CSV dialect, job polling."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from .api_errors import ApiError
from .ids import make_id
from .values import format_datetime

__all__ = [
    "DELIMITERS",
    "LINE_ENDINGS",
    "TERMINAL_STATES",
    "JobClock",
    "job_id_factory",
    "parse_dialect",
    "status_name",
]

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})


def job_id_factory() -> itertools.count[int]:
    """A counter for job ids (``750`` key prefix)."""
    return itertools.count(1)


def new_job_id(counter: itertools.count[int]) -> str:
    """The next ``750...`` job id."""
    return make_id("750", next(counter), seeded=False)


def parse_dialect(body: Mapping[str, object]) -> tuple[str, str]:
    """``(columnDelimiter, lineEnding)`` names from a job request; 400 for unknown values."""
    delimiter = str(body.get("columnDelimiter") or "COMMA")
    line_ending = str(body.get("lineEnding") or "LF")
    if delimiter not in DELIMITERS:
        raise ApiError(400, "INVALIDJOB", f"Invalid column delimiter: {delimiter}")
    if line_ending not in LINE_ENDINGS:
        raise ApiError(400, "INVALIDJOB", f"Invalid line ending: {line_ending}")
    return delimiter, line_ending


def status_name(state: str) -> str:
    """``InProgress`` → ``IN_PROGRESS`` (the form used in JOB_NOT_COMPLETE messages)."""
    out = []
    for i, char in enumerate(state):
        if char.isupper() and i:
            out.append("_")
        out.append(char.upper())
    return "".join(out)


@dataclass
class JobClock:
    """How a closed job advances: a number of polls, or time on the emulator's clock."""

    polls_until_in_progress: int
    polls_until_complete: int
    processing_seconds: float | None

    def next_state(self, polls: int, elapsed: float) -> str:
        """``InProgress`` or ``JobComplete`` after ``polls`` polls and ``elapsed`` seconds."""
        if polls >= self.polls_until_complete or (
            self.processing_seconds is not None and elapsed >= self.processing_seconds
        ):
            return "JobComplete"
        if polls >= self.polls_until_in_progress:
            return "InProgress"
        return "UploadComplete"


def stamp(seconds: float) -> str:
    """A job timestamp (``2019-06-27T19:21:14.000+0000``) from epoch seconds."""
    from datetime import UTC, datetime

    return format_datetime(datetime.fromtimestamp(seconds, UTC))
