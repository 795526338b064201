"""Streaming CSV: bounded spool chunks and an incremental parser."""

from __future__ import annotations

import asyncio
import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.salesforce.csvstream import CsvRecordParser, FileBody, spool_chunks

cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@given(st.lists(st.lists(cells, min_size=2, max_size=2), max_size=20), st.integers(1, 50))
def test_parser_reads_any_csv_in_any_chunking(rows: list[list[str]], step: int) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    text = out.getvalue()
    parser = CsvRecordParser()
    parsed = [r for i in range(0, len(text), step) for r in parser.feed(text[i : i + step])]
    parsed += list(parser.close())
    assert parsed == rows


def test_chunks_stay_under_the_limit_and_repeat_the_header() -> None:
    async def main() -> list[bytes]:
        out = []
        rows = ({"Name": f"row-{i}", "X": None} for i in range(1000))
        async for chunk in spool_chunks(rows, 2048):
            assert chunk.size <= 2048
            out.append(b"".join([part async for part in FileBody(chunk)]))
            chunk.close()
        return out

    chunks = asyncio.run(main())
    assert len(chunks) > 5
    assert all(c.startswith(b"Name,X\n") for c in chunks)
    assert sum(c.count(b"\n") - 1 for c in chunks) == 1000
    assert b"#N/A" in chunks[0]
