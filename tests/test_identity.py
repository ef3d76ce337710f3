"""Tests of monespace.identity: NIR, INS, RPPS and MSSanté addresses."""

from __future__ import annotations

import contextlib
import datetime as dt

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.fr import nir as stdnum_nir

from monespace.access import Professional
from monespace.errors import (
    IdentifierError,
    InvalidINSError,
    InvalidMSSanteAddressError,
    InvalidNIRError,
    InvalidRPPSError,
)
from monespace.identity import (
    INS,
    INS_NIA_OID,
    INS_NIR_DEMO_OID,
    INS_NIR_OID,
    INS_NIR_TEST_OID,
    NIR,
    PATIENT_MSSANTE_DOMAIN,
    RPPS,
    INSTraits,
    MSSanteAddress,
    is_valid_nir,
    is_valid_rpps,
    parse_professional_address,
    patient_address,
)

from .strategies import nirs, rpps_prefixes

# --- fixtures from docs/domain-rules.md §1.5 and the CI-SIS examples ---------------------------

VALID_NIRS = [
    "255081416802538",  # betagouv/nir_validate README
    "279035121518989",  # CI-SIS FHIR example (also 279035121518989@patient.mssante.fr)
    "146026322000196",  # CI-SIS HL7v2 example
]
# CI-SIS synthetic examples whose key is wrong: they must never be used as valid fixtures.
INVALID_OFFICIAL_NIRS = [
    "288091234567823",  # domain-rules §1.5: the key should be 94
    "223042545611404",  # a CI-SIS CDA example (shared/data/cisis/cda): the key should be 82
]


def _fullwidth(text: str) -> str:
    """Spell ASCII digits and letters with their full-width look-alikes (U+FF10...)."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def _assert_not_leaked(exc: BaseException, *secrets: str) -> None:
    """The message and repr of *exc* (and of its cause) carry none of *secrets*."""
    for error in (exc, exc.__cause__, exc.__context__):
        if error is None:
            continue
        for secret in secrets:
            assert secret not in str(error)
            assert secret not in repr(error)


# --- NIR: official vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_NIRS)
def test_official_valid_nirs_parse(value):
    """The verified vectors of domain-rules §1.5 are valid, and stdnum agrees."""
    nir = NIR.parse(value)
    assert nir.value == value
    assert is_valid_nir(value)
    assert stdnum_nir.is_valid(value)


@pytest.mark.parametrize("value", INVALID_OFFICIAL_NIRS)
def test_official_invalid_nirs_are_refused(value):
    """The deliberately invalid CI-SIS examples fail on their key, and stdnum agrees."""
    assert not is_valid_nir(value)
    assert not stdnum_nir.is_valid(value)
    with pytest.raises(InvalidNIRError, match="check key") as excinfo:
        NIR.parse(value)
    _assert_not_leaked(excinfo.value, value, value[:13])


def test_nir_parts():
    """Every part of the betagouv example is exposed under its name."""
    nir = NIR.parse("255081416802538")
    assert nir.sex == "F"
    assert nir.birth_year_2digits == 55
    assert nir.birth_month == 8
    assert nir.department == "14"
    assert nir.commune_or_country == "168"
    assert nir.place_code == "14168"
    assert nir.order == "025"
    assert nir.key == "38"
    assert not nir.born_abroad
    assert not nir.is_overseas
    assert nir.formatted == "2 55 08 14 168 025 38"


@pytest.mark.parametrize(
    "text",
    [
        "2 55 08 14 168 025 38",
        "2.55.08.14.168.025.38",
        "2-55-08-14-168-025-38",
        "2\u00a055\u00a008 14 168 025 38",
        "  255081416802538  ",
    ],
)
def test_nir_separators_are_ignored(text):
    """Spaces, dots, dashes and non-breaking spaces between groups are accepted."""
    assert NIR.parse(text).value == "255081416802538"


def test_nir_constructor_normalises_like_parse():
    """NIR(text) and NIR.parse(text) are the same operation, and compare equal."""
    assert NIR("2 55 08 14 168 025 38") == NIR.parse("255081416802538")
    assert hash(NIR("2 55 08 14 168 025 38")) == hash(NIR.parse("255081416802538"))


# --- NIR: Corsica, overseas, abroad, unknown month --------------------------------------------


@pytest.mark.parametrize("text", ["185052A12345633", "1 85 05 2a 123 456 33"])
def test_corsica_nir(text):
    """stdnum's Corsica example (2A read as 19 for the key) is valid, in either case."""
    nir = NIR.parse(text)
    assert nir.value == "185052A12345633"
    assert nir.department == "2A"
    assert nir.commune_or_country == "123"
    assert nir.place_code == "2A123"
    assert NIR.compute_key("185052A123456") == "33"
    assert stdnum_nir.is_valid(nir.value)


def test_corsica_2b_key_uses_18():
    """2B is read as 18 for the key, so 2A and 2B bodies get different keys."""
    key_2b = NIR.compute_key("185052B123456")
    assert key_2b == f"{97 - 1850518123456 % 97:02d}"
    assert key_2b != NIR.compute_key("185052A123456")
    assert NIR.parse("185052B123456" + key_2b).department == "2B"


def test_overseas_nir():
    """A 97x département takes the first digit of the commune field."""
    nir = NIR.build("M", 85, 5, "971", 23, 456)
    assert nir.value == "185059712345661"
    assert nir.department == "971"
    assert nir.commune_or_country == "23"
    assert nir.place_code == "97123"
    assert nir.is_overseas
    assert not nir.born_abroad
    assert stdnum_nir.is_valid(nir.value)


def test_born_abroad_nir():
    """Département 99 is followed by the 3-digit country code."""
    nir = NIR.build("F", 90, 6, "99", 100, 7)
    assert nir.born_abroad
    assert not nir.is_overseas
    assert nir.department == "99"
    assert nir.commune_or_country == "100"
    assert nir.order == "007"
    assert NIR.parse(nir.value) == nir


@pytest.mark.parametrize("month", [20, 30, 31, 42, 50, 99])
def test_pseudo_month_means_unknown_month(month):
    """Pseudo-months 20-42 and 50-99 are accepted and reported as an unknown month."""
    nir = NIR.build("M", 60, month, "99", 351, 12)
    assert nir.birth_month is None


def test_compute_key_refuses_malformed_bodies():
    """compute_key wants 13 ASCII digits (2A/2B allowed) and says so without the input."""
    for body in ["12345", "1850520123456789", "18505XA123456", _fullwidth("185052A123456")]:
        with pytest.raises(InvalidNIRError) as excinfo:
            NIR.compute_key(body)
        _assert_not_leaked(excinfo.value, body)


# --- NIR: malformed input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("25508141680253", "15 characters"),  # too short
        ("2550814168025381", "15 characters"),  # too long
        ("", "15 characters"),
        ("2550814X6802538", "ASCII digits"),  # a letter in the commune
        ("255081416802A38", "ASCII digits"),  # a letter in the key
        ("25508142C802538", "ASCII digits"),  # 2C is not Corsica
        (_fullwidth("255081416802538"), "ASCII digits"),  # full-width digits
        ("255081416802539", "check key"),  # wrong key
        ("255131416802538", "birth month"),  # month 13
        ("255001416802538", "birth month"),  # month 00
        ("255451416802538", "birth month"),  # month 45 is in neither pseudo-month range
        ("555081416802538", "sex digit"),  # sex 5
        ("755081416802538", "sex digit"),  # 7 = temporary number, not a NIR
        ("255080016802538", "département"),  # département 00
    ],
)
def test_malformed_nir_names_the_rule_not_the_value(text, rule):
    """Each broken rule raises InvalidNIRError naming the rule and never echoing the input."""
    with pytest.raises(InvalidNIRError, match=rule) as excinfo:
        NIR.parse(text)
    assert not is_valid_nir(text)
    if text:
        _assert_not_leaked(excinfo.value, text, text[:13])


def test_nir_errors_are_identifier_and_value_errors():
    """InvalidNIRError can be caught as IdentifierError or as a plain ValueError."""
    with pytest.raises(IdentifierError):
        NIR.parse("nope")
    with pytest.raises(ValueError, match="15 characters"):
        NIR.parse("nope")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sex": "X"},
        {"sex": 3},
        {"year2": 100},
        {"month": 13},
        {"month": 100},
        {"department": "9"},
        {"department": "97"},  # overseas needs 3 characters
        {"department": "2C"},
        {"commune": 1000},
        {"commune": "12"},
        {"order": 1000},
        {"order": "1a3"},
        {"department": "971", "commune": 100},  # only 2 digits after a 3-digit département
    ],
)
def test_build_refuses_out_of_range_parts(kwargs):
    """build() raises InvalidNIRError for parts that cannot make a NIR."""
    parts = {"sex": "F", "year2": 55, "month": 8, "department": "14", "commune": 168, "order": 25}
    parts.update(kwargs)
    with pytest.raises(InvalidNIRError):
        NIR.build(**parts)


def test_build_reproduces_the_official_vector():
    """build() on the parts of 255081416802538 gives that number back."""
    assert NIR.build("F", 55, 8, "14", "168", "025").value == "255081416802538"
    assert NIR.build(2, 55, 8, "14", 168, 25).value == "255081416802538"


# --- NIR: properties ---------------------------------------------------------------------------


@given(nirs())
def test_built_nirs_parse_and_stdnum_agrees(nir):
    """Every built NIR round-trips through parse, and stdnum (an independent oracle) accepts it.

    stdnum only checks the character classes and the key, not sex, month or département, so
    it accepts a superset of what NIR does: months 20-42/50-99, overseas and abroad codes
    included. The domain therefore needs no restriction for the two to agree.
    """
    assert NIR.parse(nir.value) == nir
    assert NIR.parse(nir.formatted) == nir
    assert stdnum_nir.is_valid(nir.value)
    assert stdnum_nir.calc_check_digits(nir.value) == nir.key
    assert NIR.compute_key(nir.value[:13]) == nir.key


@given(
    st.text(alphabet="0123456789", min_size=5, max_size=5),
    st.one_of(
        st.text(alphabet="0123456789", min_size=2, max_size=2), st.sampled_from(["2A", "2B"])
    ),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
)
def test_stdnum_valid_bodies_fail_only_on_our_extra_rules(head, department, tail):
    """Where stdnum accepts a number and NIR refuses it, the reason is sex, month or département.

    Those rules are NIR's own additions (domain-rules §1.5); the key arithmetic never disagrees.
    """
    body = head + department + tail
    value = body + stdnum_nir.calc_check_digits(body)
    assert stdnum_nir.is_valid(value)
    if is_valid_nir(value):
        return
    with pytest.raises(InvalidNIRError, match=r"sex digit|birth month|département") as excinfo:
        NIR.parse(value)
    assert "check key" not in str(excinfo.value)


@given(nirs(), st.data())
def test_any_single_digit_substitution_is_detected(nir, data):
    """Changing any one digit of a valid NIR makes it invalid (mod 97 catches them all).

    97 is prime and divides neither d (1-9) nor any power of 10, so a change of d * 10**k in
    the number always changes the remainder; a change in the key itself obviously mismatches.
    """
    value = nir.value
    positions = [i for i, char in enumerate(value) if char.isdigit()]
    position = data.draw(st.sampled_from(positions))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != value[position]))
    mutated = value[:position] + digit + value[position + 1 :]
    assert not is_valid_nir(mutated)


@given(nirs())
def test_swapping_2a_and_2b_is_detected(nir):
    """Changing the Corsican letter changes the key (19 versus 18)."""
    assume(nir.department in ("2A", "2B"))
    other = "2B" if nir.department == "2A" else "2A"
    assert not is_valid_nir(nir.value[:5] + other + nir.value[7:])


@given(st.text(alphabet="0123456789AB .-", min_size=15, max_size=25))
def test_parse_never_echoes_its_input(text):
    """parse() either succeeds or raises InvalidNIRError whose message omits the input."""
    try:
        NIR.parse(text)
    except InvalidNIRError as exc:
        compact = text.strip().replace(" ", "").replace(".", "").replace("-", "")
        _assert_not_leaked(exc, text, compact)


@given(st.text(max_size=40))
def test_parse_raises_only_invalid_nir_error(text):
    """Arbitrary text never makes parse() fail with anything but InvalidNIRError."""
    with contextlib.suppress(InvalidNIRError):
        NIR.parse(text)


# --- NIR: masking ------------------------------------------------------------------------------


def test_nir_repr_and_str_are_masked():
    """repr, str and f-strings hide the place of birth and the order number."""
    nir = NIR.parse("255081416802538")
    assert repr(nir) == "NIR(2 55 08 ** *** *** 38)"
    assert str(nir) == "2 55 08 ** *** *** 38"
    assert f"{nir}" == "2 55 08 ** *** *** 38"
    assert "255081416802538" not in repr([nir, {"k": nir}])
    assert "14 168 025" not in repr(nir)


@given(nirs())
def test_masked_forms_never_contain_the_number(nir):
    """No masked rendering contains the number or its place/order part."""
    for rendering in (repr(nir), str(nir), nir.masked):
        assert nir.value not in rendering
        assert nir.formatted not in rendering
        assert nir.value[5:13] not in rendering.replace(" ", "")


def test_nir_is_frozen():
    """A NIR cannot be modified after validation."""
    nir = NIR.parse("255081416802538")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        nir.value = "279035121518989"  # type: ignore[misc]


# --- INS ---------------------------------------------------------------------------------------


def _traits(**changes):
    """Traits of the CI-SIS test patient PAT-TROIS DOMINIQUE (INS 279035121518989)."""
    values = {
        "birth_name": "PAT-TROIS",
        "first_given_name": "DOMINIQUE",
        "given_names": ("DOMINIQUE", "MARIE-LOUISE"),
        "birth_date": dt.date(1979, 3, 28),
        "sex": "F",
        "birth_place_code": "51215",
    }
    values.update(changes)
    return INSTraits(**values)


def test_ins_of_the_cisis_test_patient():
    """The CI-SIS test patient: test OID, consistent traits, NIR-style authority."""
    ins = INS.parse("279035121518989", INS_NIR_TEST_OID, _traits())
    assert ins.matricule == NIR.parse("279035121518989")
    assert ins.is_test
    assert not ins.is_nia
    assert ins.hl7v2_assigning_authority == "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO"
    assert ins.fhir_system == "urn:oid:1.2.250.1.213.1.4.10"


@pytest.mark.parametrize(
    ("oid", "authority", "is_test", "is_nia"),
    [
        (INS_NIR_OID, "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO", False, False),
        (INS_NIA_OID, "ASIP-SANTE-INS-NIA&1.2.250.1.213.1.4.9&ISO", False, True),
        (INS_NIR_TEST_OID, "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO", True, False),
        (INS_NIR_DEMO_OID, "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.11&ISO", True, False),
    ],
)
def test_ins_oids(oid, authority, is_test, is_nia):
    """Each INS OID is accepted, with its HL7v2 authority and test/NIA flags."""
    ins = INS.parse("146026322000196", oid)
    assert ins.oid == oid
    assert ins.hl7v2_assigning_authority == authority
    assert ins.is_test is is_test
    assert ins.is_nia is is_nia
    assert ins.traits is None


def test_ins_oid_constants():
    """The OID constants carry the values of domain-rules §1.5."""
    assert INS_NIR_OID == "1.2.250.1.213.1.4.8"
    assert INS_NIA_OID == "1.2.250.1.213.1.4.9"
    assert INS_NIR_TEST_OID == "1.2.250.1.213.1.4.10"
    assert INS_NIR_DEMO_OID == "1.2.250.1.213.1.4.11"


def test_ins_accepts_urn_oid_and_nir_objects():
    """A FHIR-style urn:oid: system and an already-parsed NIR are both accepted."""
    nir = NIR.parse("255081416802538")
    assert INS(nir, "urn:oid:1.2.250.1.213.1.4.8") == INS.parse("255081416802538", INS_NIR_OID)


@pytest.mark.parametrize(
    ("oid", "name"), [("1.2.250.1.213.1.4.1", "INS-A"), ("1.2.250.1.213.1.4.2", "INS-C")]
)
def test_legacy_ins_oids_are_obsolete(oid, name):
    """INS-A and INS-C are refused with a message saying they are obsolete."""
    with pytest.raises(InvalidINSError, match="obsolete") as excinfo:
        INS.parse("255081416802538", oid)
    assert name in str(excinfo.value)


@pytest.mark.parametrize("oid", ["1.2.250.1.213.1.4.6", "1.2.3", "", "279035121518989"])
def test_unknown_oids_are_refused_without_echo(oid):
    """An unknown OID is refused and not echoed (it could be a swapped matricule)."""
    with pytest.raises(InvalidINSError, match="not an INS OID") as excinfo:
        INS.parse("255081416802538", oid)
    if oid:
        _assert_not_leaked(excinfo.value, oid)


@pytest.mark.parametrize("matricule", ["288091234567823", "2550814168025", "555081416802538"])
def test_invalid_matricule_raises_invalid_ins_error(matricule):
    """A bad matricule is an InvalidINSError whose message omits the matricule."""
    with pytest.raises(InvalidINSError, match="matricule") as excinfo:
        INS.parse(matricule, INS_NIR_OID)
    assert isinstance(excinfo.value.__cause__, InvalidNIRError)
    _assert_not_leaked(excinfo.value, matricule)


@pytest.mark.parametrize(
    ("changes", "trait"),
    [
        ({"sex": "M"}, "'sex'"),
        ({"birth_date": dt.date(1980, 3, 28)}, "year of the INS trait 'birth_date'"),
        ({"birth_date": dt.date(1979, 4, 28)}, "month of the INS trait 'birth_date'"),
    ],
)
def test_inconsistent_traits_are_refused(changes, trait):
    """Sex, birth year and birth month must agree with the matricule; the trait is named."""
    with pytest.raises(InvalidINSError, match=trait) as excinfo:
        INS.parse("279035121518989", INS_NIR_TEST_OID, _traits(**changes))
    _assert_not_leaked(excinfo.value, "279035121518989", "PAT-TROIS", "1979", "1980")


def test_pseudo_month_matricule_accepts_any_birth_month():
    """With a pseudo-month the month is unknown, so only sex and year are compared."""
    nir = NIR.build("F", 79, 55, "99", 351, 4)
    for month in (1, 6, 12):
        INS(nir, INS_NIA_OID, _traits(birth_date=dt.date(1979, month, 1)))


def test_birth_year_is_compared_modulo_100():
    """The NIR stores two year digits, so 1979 and 2079 both match 79."""
    nir = NIR.build("F", 79, 3, "51", 215, 189)
    INS(nir, INS_NIR_OID, _traits(birth_date=dt.date(2079, 3, 1)))


@given(nirs(), st.integers(1900, 2099), st.integers(1, 28))
def test_traits_built_from_the_matricule_are_consistent(nir, century_year, day):
    """Traits derived from a NIR always qualify it, and flipping the sex never does."""
    year = century_year - century_year % 100 + nir.birth_year_2digits
    month = nir.birth_month or 6
    traits = _traits(birth_date=dt.date(year, month, day), sex=nir.sex)
    assert INS(nir, INS_NIR_OID, traits).traits == traits
    flipped = attrs.evolve(traits, sex="M" if nir.sex == "F" else "F")
    with pytest.raises(InvalidINSError, match="'sex'"):
        INS(nir, INS_NIR_OID, flipped)


def test_ins_and_traits_reprs_are_masked():
    """No repr of an INS or its traits shows the matricule, a name or the birth date."""
    ins = INS.parse("279035121518989", INS_NIR_TEST_OID, _traits())
    for rendering in (repr(ins), str(ins), repr(ins.traits), repr([ins])):
        for secret in ("279035121518989", "PAT-TROIS", "DOMINIQUE", "1979-03-28", "51215"):
            assert secret not in rendering
    assert repr(ins.traits) == "INSTraits(<redacted>)"
    assert "2 79 03 ** *** *** 89" in repr(ins)


def test_traits_given_names_become_a_tuple():
    """given_names accepts any iterable and stores a tuple."""
    assert _traits(given_names=["DOMINIQUE", "MARIE-LOUISE"]).given_names == (
        "DOMINIQUE",
        "MARIE-LOUISE",
    )
    assert _traits(given_names=()).given_names == ()
    with pytest.raises(TypeError, match="given_names"):
        _traits(given_names="DOMINIQUE")


def test_compound_first_given_name():
    """A compound first given name may span several entries of given_names."""
    _traits(first_given_name="MARIE CLAIRE", given_names=("MARIE", "CLAIRE", "ANNE"))
    _traits(first_given_name="MARIE CLAIRE", given_names=("MARIE CLAIRE", "ANNE"))
    with pytest.raises(InvalidINSError, match="given_names"):
        _traits(first_given_name="MARIE", given_names=("MARIE-CLAIRE", "ANNE"))


@pytest.mark.parametrize(
    ("changes", "trait"),
    [
        ({"birth_name": ""}, "birth_name"),
        ({"birth_name": "   "}, "birth_name"),
        ({"birth_name": "PAT\r\nBcc: x"}, "birth_name"),
        ({"first_given_name": "DOMI\u200dNIQUE"}, "first_given_name"),  # zero-width joiner
        ({"first_given_name": "\u202eEUQINIMOD"}, "first_given_name"),  # right-to-left override
        ({"given_names": ("DOMINIQUE", "\x00")}, "given_names"),
        ({"sex": "X"}, "sex"),
        ({"birth_place_code": "5121"}, "birth_place_code"),
        ({"birth_place_code": "2C004"}, "birth_place_code"),
        ({"birth_place_code": _fullwidth("51215")}, "birth_place_code"),
    ],
)
def test_invalid_traits_are_refused(changes, trait):
    """Empty, control-character or malformed traits raise InvalidINSError naming the trait."""
    with pytest.raises(InvalidINSError, match=trait):
        _traits(**changes)


def test_birth_place_code_is_normalised():
    """A lower-case Corsican COG code is upper-cased; None means unknown."""
    assert _traits(birth_place_code="2a004").birth_place_code == "2A004"
    assert _traits(birth_place_code=None).birth_place_code is None
    assert _traits(birth_place_code="99134").birth_place_code == "99134"


def test_birth_date_must_be_a_date():
    """A datetime (or a string) is not a birth date."""
    with pytest.raises(TypeError, match="birth_date"):
        _traits(birth_date=dt.datetime(1979, 3, 28, tzinfo=dt.UTC))
    with pytest.raises(TypeError, match="birth_date"):
        _traits(birth_date="1979-03-28")


def test_ins_traits_must_be_instraits():
    """Traits given as a dict are refused without echoing them."""
    with pytest.raises(TypeError, match="INSTraits") as excinfo:
        INS.parse("279035121518989", INS_NIR_TEST_OID, {"birth_name": "PAT-TROIS"})  # type: ignore[arg-type]
    assert "PAT-TROIS" not in str(excinfo.value)


# --- RPPS --------------------------------------------------------------------------------------


def test_rpps_build_and_parse():
    """build() appends the Luhn digit; parse() accepts the result, with spaces too."""
    rpps = RPPS.build("1000345678")
    assert rpps.value == "10003456786"
    assert RPPS.parse("10003456786") == rpps
    assert RPPS.parse(" 100 0345 6786 ") == rpps
    assert is_valid_rpps("10003456786")
    assert rpps.idnat_ps == "810003456786"
    assert str(rpps) == "10003456786"
    # A public professional identifier: the repr may show it.
    assert repr(rpps) == "RPPS(value='10003456786')"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("1000345678", "11 ASCII digits"),
        ("100034567861", "11 ASCII digits"),
        ("1000345678a", "11 ASCII digits"),
        (_fullwidth("10003456786"), "11 ASCII digits"),
        ("", "11 ASCII digits"),
        ("10003456787", "Luhn"),
    ],
)
def test_invalid_rpps(text, rule):
    """Wrong length, non-digits and a wrong check digit raise InvalidRPPSError."""
    with pytest.raises(InvalidRPPSError, match=rule):
        RPPS.parse(text)
    assert not is_valid_rpps(text)


@pytest.mark.parametrize(
    "prefix", ["100034567", "10003456789", "100034567a", _fullwidth("1000345678")]
)
def test_rpps_build_needs_ten_digits(prefix):
    """build() refuses anything but 10 ASCII digits."""
    with pytest.raises(InvalidRPPSError, match="10 ASCII digits"):
        RPPS.build(prefix)


@given(rpps_prefixes)
def test_rpps_build_parse_round_trip(prefix):
    """Every built RPPS number parses back, and stdnum's Luhn agrees."""
    rpps = RPPS.build(prefix)
    assert rpps.value.startswith(prefix)
    assert RPPS.parse(rpps.value) == rpps
    assert luhn.is_valid(rpps.value)


@given(rpps_prefixes, st.data())
def test_rpps_single_digit_errors_are_detected(prefix, data):
    """Luhn catches every single-digit substitution, so the mutated number is refused."""
    value = RPPS.build(prefix).value
    position = data.draw(st.integers(0, 10))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != value[position]))
    mutated = value[:position] + digit + value[position + 1 :]
    assert not is_valid_rpps(mutated)
    with pytest.raises(InvalidRPPSError, match="Luhn"):
        RPPS.parse(mutated)


# --- MSSanté addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "eva.blue@mssante.fr",
        "dupont@ch-xyz.mssante.fr",
        "cardiologie@ch-xyz.mssante.fr",
        "paul.medecin5729@medecin.formation.mssante.fr",
        "collecteur-depistage@institutcancer.mssante.fr",
        "o'brien+cardio@ch-exemple.mssante.fr",
    ],
)
def test_professional_addresses(text):
    """Addresses of the trust space parse, are not patient addresses and repr in full."""
    address = MSSanteAddress.parse(text)
    assert address.value == text
    assert not address.is_patient
    assert address.patient_nir is None
    assert parse_professional_address(text) == address
    assert repr(address) == f"MSSanteAddress({text!r})"
    assert str(address) == text


def test_domain_is_lower_cased_local_part_kept():
    """The domain is case-insensitive and lower-cased; the local part keeps its case."""
    address = MSSanteAddress.parse("Jean.Dupont@CH-Exemple.MSSante.FR")
    assert address.local_part == "Jean.Dupont"
    assert address.domain == "ch-exemple.mssante.fr"


@pytest.mark.parametrize("nir", ["279035121518989", "146026322000196"])
def test_patient_addresses_of_the_cisis_examples(nir):
    """<NIR>@patient.mssante.fr is a patient address whose NIR can be read back."""
    address = MSSanteAddress.parse(f"{nir}@patient.mssante.fr")
    assert address.is_patient
    assert address.patient_nir == NIR.parse(nir)
    assert address == patient_address(NIR.parse(nir))


def test_patient_address_masking():
    """A patient address never shows its NIR in repr or str, only through .value."""
    address = patient_address(NIR.parse("279035121518989"))
    assert address.value == "279035121518989@patient.mssante.fr"
    assert repr(address) == "MSSanteAddress('27903********89@patient.mssante.fr')"
    assert str(address) == "27903********89@patient.mssante.fr"
    assert "279035121518989" not in repr([address])


def test_corsican_patient_address_is_upper_cased():
    """A lower-case 2a in a patient address is parsed to the canonical NIR."""
    address = MSSanteAddress.parse("185052a12345633@PATIENT.mssante.fr")
    assert address.local_part == "185052A12345633"
    assert address.patient_nir == NIR.parse("185052A12345633")


@given(nirs())
def test_patient_address_round_trip(nir):
    """patient_address(nir) parses back to itself and yields the same NIR."""
    address = patient_address(nir)
    assert address.value == f"{nir.value}@{PATIENT_MSSANTE_DOMAIN}"
    assert MSSanteAddress.parse(address.value) == address
    assert address.patient_nir == nir
    assert nir.value not in repr(address)


@pytest.mark.parametrize(
    "local",
    [
        "288091234567823",  # the invalid CI-SIS example
        "27903512151898",  # 14 characters
        "2.79.03.51.215.189.89",  # NIR separators are not allowed in a mailbox name
        "jean.dupont",
    ],
)
def test_patient_addresses_need_a_valid_nir(local):
    """The local part of a patient address must be a valid, compact 15-character NIR."""
    with pytest.raises(InvalidMSSanteAddressError, match="INS matricule") as excinfo:
        MSSanteAddress.parse(f"{local}@patient.mssante.fr")
    _assert_not_leaked(excinfo.value, local)


def test_professional_address_refuses_patient_domain():
    """parse_professional_address refuses a patient mailbox."""
    with pytest.raises(InvalidMSSanteAddressError, match="professional") as excinfo:
        parse_professional_address("279035121518989@patient.mssante.fr")
    _assert_not_leaked(excinfo.value, "279035121518989")


@pytest.mark.parametrize(
    "text",
    [
        "a@b.mssante.fr\r\nBcc: x@y",
        "a@b.mssante.fr\nBcc: x@y",
        "a@b.mssante.fr\rBcc: x@y",
        "a@b.mssante.fr\r\n",
        "a\r\n@b.mssante.fr",
        "a@b.mssante.fr\x00",
        "a@b.mssante.fr\u2028Bcc: x@y",  # LINE SEPARATOR
        "a@b.mssante.fr\x85Bcc: x@y",  # NEXT LINE
        "a@b.mssante.fr\tx",
        " a@b.mssante.fr",
        "a@b.mssante.fr ",
        "a b@b.mssante.fr",
        "jean@médecin.mssante.fr",
    ],
)
def test_header_injection_and_whitespace_are_refused(text):
    """CR, LF, other controls, spaces and non-ASCII characters are refused anywhere."""
    with pytest.raises(InvalidMSSanteAddressError, match="control characters"):
        MSSanteAddress.parse(text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "exactly one '@'"),
        ("dupont.mssante.fr", "exactly one '@'"),
        ("a@b@c.mssante.fr", "exactly one '@'"),
        ('"a@b"@c.mssante.fr', "exactly one '@'"),
        ("@ch.mssante.fr", "local part"),
        ("dupont@", "domain"),
        ("x" * 65 + "@ch.mssante.fr", "at most 64"),
        ("a@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 60 + "." + "e" * 60 + ".mssante.fr", "254"),
        (".dupont@ch.mssante.fr", "dot-atom"),
        ("dupont.@ch.mssante.fr", "dot-atom"),
        ("jean..dupont@ch.mssante.fr", "dot-atom"),
        ('"jean"@ch.mssante.fr', "dot-atom"),
        ("jean(comment)@ch.mssante.fr", "dot-atom"),
        ("jean<x>@ch.mssante.fr", "dot-atom"),
        ("dupont@gmail.com", "mssante.fr domain"),
        ("dupont@evilmssante.fr", "mssante.fr domain"),
        ("dupont@mssante.fr.evil.com", "mssante.fr domain"),
        ("dupont@fr", "mssante.fr domain"),
        ("dupont@ch.mssante.fr.", "host name"),
        ("dupont@ch..mssante.fr", "host name"),
        ("dupont@-ch.mssante.fr", "host name"),
        ("dupont@ch-.mssante.fr", "host name"),
        ("dupont@ch_xyz.mssante.fr", "host name"),
        ("dupont@[127.0.0.1]", "host name"),
        ("279035121518989@x.patient.mssante.fr", "subdomains of patient.mssante.fr"),
    ],
)
def test_malformed_addresses(text, rule):
    """Each broken rule raises InvalidMSSanteAddressError naming it, not the address."""
    with pytest.raises(InvalidMSSanteAddressError, match=rule) as excinfo:
        MSSanteAddress.parse(text)
    if len(text) > 3:
        _assert_not_leaked(excinfo.value, text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("a@b.mssante.fr,c@d.mssante.fr", "exactly one '@'"),
        ("a,c@d.mssante.fr", "dot-atom"),
        ("a;c@d.mssante.fr", "dot-atom"),
        ("Dr<a@b.mssante.fr>", "dot-atom"),
        ("=?utf-8?q?a=0D=0ABcc=3A=20x=40evil=2Eexample?=@ch.mssante.fr", "encoded word"),
        ("=?utf-8?q?abc?=@ch.mssante.fr", "encoded word"),
    ],
)
def test_lists_display_names_and_encoded_words_are_refused(text, rule):
    """One bare address: no second address, no display name, and no RFC 2047 encoded word
    (the email package decodes one even in a local part, into CR LF as the case may be)."""
    with pytest.raises(InvalidMSSanteAddressError, match=rule) as excinfo:
        MSSanteAddress.parse(text)
    _assert_not_leaked(excinfo.value, text)


@pytest.mark.parametrize(
    "text",
    [
        "dr@ch.mssante.fr\r\nBcc: attacker@evil.example",
        "dr@ch.mssante.fr, attacker@evil.example",
        "dr@ch.mssante.fr,attacker@evil.example",
        "=?utf-8?q?dr=0D=0ABcc=3A_x?=@ch.mssante.fr",
        "dr@gmail.com",
        "279035121518989@patient.mssante.fr",
    ],
)
def test_a_professional_of_the_directory_has_a_strict_mssante_address(text):
    """The directory takes the same parser's word: a Professional cannot be built with an
    address that could add a header or a recipient."""
    with pytest.raises(InvalidMSSanteAddressError):
        Professional("10000000017", "10", "Dr Martin", mssante=text)
    assert Professional("10000000017", "10", "Dr Martin", mssante="Dr.Martin@CH.mssante.fr")
    assert Professional("10000000017", "10", "Dr Martin").mssante is None


def test_constructor_validates_like_parse():
    """Building an address from its parts applies the same rules."""
    assert MSSanteAddress("dupont", "CH.mssante.fr").domain == "ch.mssante.fr"
    with pytest.raises(InvalidMSSanteAddressError):
        MSSanteAddress("dupont\r\nBcc: x", "ch.mssante.fr")
    with pytest.raises(InvalidMSSanteAddressError):
        MSSanteAddress("dupont", "ch.mssante.fr\r\nBcc: x")
    # KELVIN SIGN lower-cases to an ASCII "k"; it must be refused, not folded.
    with pytest.raises(InvalidMSSanteAddressError):
        MSSanteAddress("dupont", "\u212a.mssante.fr")
    with pytest.raises(InvalidMSSanteAddressError, match="INS matricule"):
        MSSanteAddress("185052a12345633", PATIENT_MSSANTE_DOMAIN)


@given(st.text(max_size=80))
def test_address_parse_is_total_and_safe(text):
    """parse() raises only InvalidMSSanteAddressError; what it accepts is header-safe."""
    try:
        address = MSSanteAddress.parse(text)
    except InvalidMSSanteAddressError:
        return
    assert all("!" <= char <= "~" for char in address.value)
    assert address.value.count("@") == 1
    assert address.domain == address.domain.lower()
    assert address.domain.endswith("mssante.fr")


@given(
    st.from_regex(r"[a-z0-9]([a-z0-9.+_-]{0,20}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"([a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\.){0,2}", fullmatch=True),
)
def test_generated_professional_addresses_round_trip(local, subdomain):
    """Well-formed local parts under mssante.fr parse back to the same address."""
    assume(".." not in local)
    assume(not subdomain.endswith("patient."))
    text = f"{local}@{subdomain}mssante.fr"
    address = MSSanteAddress.parse(text)
    assert address.value == text
    assert parse_professional_address(text) == address


def test_identity_errors_share_a_base():
    """All four identifier errors are IdentifierError and ValueError."""
    for error in (InvalidNIRError, InvalidINSError, InvalidRPPSError, InvalidMSSanteAddressError):
        assert issubclass(error, IdentifierError)
        assert issubclass(error, ValueError)
