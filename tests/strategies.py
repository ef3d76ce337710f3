"""Hypothesis strategies shared by the tests: identifiers (NIR, RPPS) and their parts."""

from __future__ import annotations

from hypothesis import strategies as st

from monespace.identity import NIR

__all__ = ["months", "nirs", "orders", "places", "rpps_prefixes", "sexes", "years"]

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
