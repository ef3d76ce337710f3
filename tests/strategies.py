"""Hypothesis strategies shared by the tests: identifiers (NIR, RPPS) and their parts, and
free text (what the one text check accepts, and what it must refuse)."""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

from monespace._text import is_refused
from monespace.identity import NIR

__all__ = [
    "HOSTILE_CHARACTERS",
    "clean_text",
    "hostile_text",
    "months",
    "nirs",
    "orders",
    "places",
    "rpps_prefixes",
    "sexes",
    "years",
]

sexes = st.sampled_from(["M", "F"])
years = st.integers(0, 99)
# Real months and the pseudo-months of incomplete civil records.
months = st.one_of(st.integers(1, 12), st.integers(20, 42), st.integers(50, 99))
orders = st.integers(1, 999)
places = st.one_of(
    # Mainland départements (20 = undivided Corsica, 91-96 = former North-African codes).
    st.tuples(st.integers(1, 96).map(lambda d: f"{d:02d}"), st.integers(1, 999)),
    st.tuples(st.sampled_from(["2A", "2B"]), st.integers(1, 999)),
    # Overseas: a 3-digit code, then a 2-digit commune.
    st.tuples(
        st.sampled_from(["971", "972", "973", "974", "976", "987", "988"]), st.integers(1, 99)
    ),
    # Born abroad: 99 then the 3-digit INSEE country code.
    st.tuples(st.just("99"), st.integers(100, 999)),
)


@st.composite
def nirs(draw: st.DrawFn) -> NIR:
    """A valid NIR, of any sex, birth month (or pseudo-month) and birth place."""
    department, commune = draw(places)
    return NIR.build(draw(sexes), draw(years), draw(months), department, commune, draw(orders))


#: The 10 digits an RPPS number is built from (its Luhn key is the 11th).
rpps_prefixes = st.text(alphabet="0123456789", min_size=10, max_size=10)


def clean_text(
    *, min_size: int = 0, max_size: int = 200, multiline: bool = False
) -> st.SearchStrategy[str]:
    """Any text the one text check accepts unchanged: no refused character, already in NFC
    (line feeds only with *multiline*)."""
    return st.text(
        st.characters(codec="utf-8").filter(lambda c: not is_refused(c, multiline=multiline)),
        min_size=min_size,
        max_size=max_size,
    ).filter(lambda t: unicodedata.normalize("NFC", t) == t)


#: Characters that drive terminals, cut strings or reorder what is shown, refused in every
#: field: NUL, ESC, BEL, DEL, C1 NEL and CSI, the bidi overrides and isolates, a lone
#: surrogate and non-characters. CR and LF are refused in one-line fields only.
HOSTILE_CHARACTERS = (
    "\x00\x1b\x07\x7f\x85\x9b\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\ud800\ufdd0\uffff"
)


@st.composite
def hostile_text(draw: st.DrawFn, *, max_size: int = 60, multiline: bool = False) -> str:
    """Text holding at least one character the text check refuses, among ordinary ones,
    or a sequence an attacker writes: ANSI colours, an OSC 8 link, a title change, a CR
    that overwrites the line (one-line fields), a right-to-left override."""
    before = draw(clean_text(max_size=max_size, multiline=multiline))
    after = draw(clean_text(max_size=max_size, multiline=multiline))
    characters = HOSTILE_CHARACTERS if multiline else HOSTILE_CHARACTERS + "\r\n"
    sequences = [
        "\x1b[31mROUGE\x1b[0m",
        "\x1b]8;;https://evil.example/\x1b\\cliquez\x1b]8;;\x1b\\",
        "\x1b]0;titre\x07",
        "facture\u202efdp.exe",
    ]
    if not multiline:
        sequences.append("ok\rKO")
    core = draw(st.one_of(st.sampled_from(characters), st.sampled_from(sequences)))
    return before + core + after
