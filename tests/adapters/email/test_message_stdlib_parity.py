"""Proposed for tests/adapters/email/test_message.py (not an owned file): a message without
attachments is rendered byte for byte as the stdlib renders it, boundary aside."""

import re
from email.generator import BytesGenerator
from email.message import EmailMessage as StdlibMessage
from email.policy import SMTP
from io import BytesIO

from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.adapters.email.message import OutgoingEmail, prepare

_BOUNDARY = re.compile(rb"={15}\d{19}==(?:\.\d+)?")
# Any text the stdlib can encode (no lone surrogates), and texts made of lines (short or over
# 78 characters, ASCII or not: every transfer encoding, either side of the ten-line sniff).
_line = st.tuples(st.text(alphabet="ab cd.,=\t", max_size=90), st.sampled_from(["", "é", "€"]))
_lines = st.lists(_line.map("".join), max_size=14)
bodies = (
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
    | st.tuples(_lines, st.sampled_from(["\n", "\r\n", "\r"])).map(lambda t: t[1].join(t[0]))
    | st.text(alphabet="ab .=é\t\r\n\x0b\x85", max_size=300)
)


def stdlib_body(text, html):
    mime = StdlibMessage(policy=SMTP.clone(cte_type="7bit"))
    if text is None and html is None:
        mime.set_content("")
    elif html is None:
        mime.set_content(text)
    elif text is None:
        mime.set_content(html, subtype="html")
    else:
        mime.set_content(text)
        mime.add_alternative(html, subtype="html")
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=mime.policy).flatten(mime)
    return buffer.getvalue()


@settings(max_examples=300, deadline=None)
@given(text=st.none() | bodies, html=st.none() | bodies)
@example(text="x" * 78, html="y" * 79)  # the longest 7bit line, and one too long
@example(text="\n".join(["a line of text with an é in it"] * 11), html=None)  # past the sniff
@example(text="\n".join(["a line of text with an é in it"] * 10), html="é" * 30)
def test_a_message_without_attachments_is_rendered_as_the_stdlib_renders_it(text, html):
    raw = prepare(
        OutgoingEmail(to=["to@example.test"], sender="from@example.test", text=text, html=html)
    ).as_bytes()
    body = raw[raw.index(b"\r\nMessage-ID: ") :].split(b"\r\n", 2)[2]  # after the envelope headers
    assert _BOUNDARY.sub(b"B", body) == _BOUNDARY.sub(b"B", stdlib_body(text, html))
