"""The value sets shipped as package data, and the typeCode → classCode correspondence."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monespace.errors import ValidationError
from monespace.record._codes import (
    CLASS_CODE_SYSTEM,
    CODE_SYSTEM_OIDS,
    DIGITAL_SIGNATURE_CLASS_CODE,
    DMP_CLASS_CODES,
    LOINC_OID,
    TRE_A05_OID,
    TRE_A07_OID,
    TYPE_CODE_CLASSES,
    UNMAPPED_TYPE_CODES,
    ValueSet,
    class_code_for,
    class_code_system_for,
    is_member,
    normalise_code_system,
    value_set,
    value_set_names,
)

from .conftest import SHARED_DATA

VALUE_SETS = SHARED_DATA / "cisis" / "value-sets"
HL7_CONFIDENTIALITY = "2.16.840.1.113883.5.25"

# Concept counts given in shared/data/README.md §1.
EXPECTED_SIZES = {
    "J01": 396,
    "J02": 69,
    "J04": 12,
    "J06": 13,  # 12 TRE_A03 codes + the digital-signature URN
    "J07": 114,
    "J08": 6,
    "J10": 89,  # 52 TRE_A06 + 35 TRE_A11 + 1 DICOM + 1 URN
    "J11": 37,
    "J57": 12,  # 11 TRE_A03 + the digital-signature URN (J06 minus 99)
    "J60": 61,  # 46 TRE_A06 + 13 TRE_A11 + 1 DICOM + 1 URN
    "J66": 102,  # 31 TRE_A05 + 70 LOINC + 1 ASTM
    "HL7_CONFIDENTIALITY": 6,
}


def _data_files():
    folder = resources.files("monespace.record").joinpath("data")
    return {item.name: item for item in folder.iterdir() if item.name.endswith((".xml", ".json"))}


class TestPackageData:
    def test_every_value_set_ships_with_its_sources_note(self):
        """The twelve value sets, the two formatCode correspondences (ASS_A11, ASS_A12) and
        SOURCES.md are package data, read through importlib."""
        files = _data_files()
        assert len(files) == 14
        sources = resources.files("monespace.record").joinpath("data", "SOURCES.md")
        text = sources.read_text(encoding="utf-8")
        assert "7cd489b39368809df9bcf2cfef5e5d6354438a02" in text
        for name, item in files.items():
            assert name in text
            assert hashlib.sha256(item.read_bytes()).hexdigest() in text

    def test_shipped_files_are_the_official_ones(self):
        """The package data is byte-identical to the shared copies of the ANS files."""
        if not VALUE_SETS.is_dir():
            pytest.skip(f"shared test data not found at {VALUE_SETS}")
        for name, item in _data_files().items():
            assert item.read_bytes() == (VALUE_SETS / name).read_bytes(), name


class TestValueSets:
    @pytest.mark.parametrize("key", sorted(EXPECTED_SIZES))
    def test_loads_with_its_official_size(self, key):
        vs = value_set(key)
        assert isinstance(vs, ValueSet)
        assert vs.key == key
        assert len(vs) == EXPECTED_SIZES[key]
        assert vs.oid
        assert vs.name.startswith("JDV_")

    def test_names_are_the_shipped_keys(self):
        assert set(value_set_names()) == set(EXPECTED_SIZES)

    def test_loaded_once(self):
        """Value sets are read lazily and cached: the same object every time."""
        assert value_set("J07") is value_set("J07")

    @pytest.mark.parametrize(
        "name", ["J07", "j07", " J07 ", "JDV_J07_XdsTypeCode_CISIS", "1.2.250.1.213.1.1.5.471"]
    )
    def test_found_by_key_name_or_oid(self, name):
        assert value_set(name).key == "J07"

    def test_found_by_urn_oid(self):
        assert value_set("urn:oid:1.2.250.1.213.1.1.5.462").key == "J06"

    def test_unknown_name_is_a_validation_error(self):
        with pytest.raises(ValidationError, match="unknown value set"):
            value_set("J99")

    def test_membership_compares_codes_not_display_names(self):
        j07 = value_set("J07")
        assert ("11502-2", LOINC_OID) in j07
        assert is_member("J07", "18748-4", LOINC_OID)
        # The official example writes "CR d\u2019imagerie médicale" (a typographic
        # apostrophe); J07 has "CR d'imagerie médicale". Only the code decides.
        assert j07.display("18748-4", LOINC_OID) != "CR d\u2019imagerie médicale"
        assert not is_member(j07, "CR d'imagerie médicale", LOINC_OID)
        # Same code, wrong code system.
        assert not is_member(j07, "11502-2", TRE_A05_OID)
        assert not is_member(j07, "11502-2 ", LOINC_OID)
        assert ("11502-2",) not in j07
        assert 42 not in j07

    def test_code_systems_may_be_spelt_as_urn_or_url(self):
        assert is_member("J07", "REMB", f"urn:oid:{TRE_A05_OID}")
        assert is_member("J07", "11502-2", "http://loinc.org")
        url = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
        assert is_member("J06", "10", url)
        assert is_member("J06", "10", CLASS_CODE_SYSTEM)

    def test_fhir_value_sets_use_xds_oids(self):
        """J06 and J10 name code systems by URL; they are loaded with the XDS OIDs."""
        assert value_set("J06").code_systems() == {CLASS_CODE_SYSTEM, "URN"}
        assert value_set("J10").code_systems() == {
            "1.2.250.1.213.1.1.4.2.282",
            "1.3.6.1.4.1.19376.1.2.3",
            "1.2.840.10008.2.6.1",
            "URN",
        }
        assert is_member("J10", "urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3")
        assert is_member("J10", "urn:asip:ci-sis:vac-note:2021", "1.2.250.1.213.1.1.4.2.282")

    def test_confidentiality_value_sets(self):
        j08 = value_set("J08")
        assert j08.codes(HL7_CONFIDENTIALITY) == {"N", "R", "V"}
        assert j08.codes(TRE_A07_OID) == {
            "INVISIBLE_PATIENT",
            "INVISIBLE_REPRESENTANTS_LEGAUX",
            "MASQUE_PS",
        }
        assert value_set("HL7_CONFIDENTIALITY").codes() == {"L", "M", "N", "R", "U", "V"}

    def test_other_metadata_value_sets(self):
        assert is_member("J01", "G15_10/SM26", "1.2.250.1.213.1.1.4.5")
        assert is_member("J02", "SA01", "1.2.250.1.71.4.2.4")
        assert is_member("J04", "ETABLISSEMENT", "1.2.250.1.213.1.1.4.9")
        assert value_set("J11").codes("2.16.840.1.113883.5.111")

    def test_value_sets_are_immutable(self):
        vs = value_set("J08")
        with pytest.raises(TypeError):
            vs.concepts[("X", "Y")] = "x"
        assert "concepts" not in repr(vs)


class TestClassCodes:
    def test_dmp_classes_are_j06_minus_document_technique(self):
        j06 = value_set("J06")
        for code in DMP_CLASS_CODES:
            assert (code, class_code_system_for(code)) in j06
        assert ("99", CLASS_CODE_SYSTEM) in j06
        assert "99" not in DMP_CLASS_CODES
        assert len(DMP_CLASS_CODES) == 12

    @pytest.mark.parametrize(
        ("type_code", "system", "class_code"),
        [
            # The key categories of docs/domain-rules.md §3.3.
            ("34112-3", LOINC_OID, "10"),  # CR hospitalier (séjour)
            ("11490-0", LOINC_OID, "10"),  # lettre de liaison de sortie
            ("57833-6", LOINC_OID, "42"),  # prescription de produits de santé
            ("11502-2", LOINC_OID, "10"),  # biologie
            ("18748-4", LOINC_OID, "31"),  # imagerie
            ("60591-5", LOINC_OID, "11"),  # VSM
            ("87273-9", LOINC_OID, "52"),  # note de vaccination
            ("11369-6", LOINC_OID, "52"),  # historique des vaccinations
            ("96874-3", LOINC_OID, "52"),  # COVID-19 vaccination certificate
            ("REMB", TRE_A05_OID, "60"),  # remboursement
            ("DOCPAT08", TRE_A05_OID, "11"),  # profil médical
            ("EXPPAT_3", TRE_A05_OID, "90"),  # directives anticipées
            ("ATTEST-RESID", TRE_A05_OID, "95"),
            ("80565-5", LOINC_OID, "45"),
            ("60593-1", LOINC_OID, "43"),
            ("PROT_ALD", TRE_A05_OID, "44"),
            ("E1762", "ASTM", DIGITAL_SIGNATURE_CLASS_CODE),
        ],
    )
    def test_correspondence(self, type_code, system, class_code):
        assert class_code_for(type_code, system) == class_code

    def test_unknown_types_have_no_class(self):
        assert class_code_for("11502-2", TRE_A05_OID) is None
        assert class_code_for("00000-0", LOINC_OID) is None
        for type_code, system in UNMAPPED_TYPE_CODES:
            assert class_code_for(type_code, system) is None

    def test_every_class_of_the_map_is_a_dmp_class(self):
        assert set(TYPE_CODE_CLASSES.values()) == set(DMP_CLASS_CODES)

    def test_j07_is_partitioned_into_mapped_and_documented_unmapped(self):
        """Every CI-SIS typeCode either has a DMP class or is listed as having none."""
        j07 = set(value_set("J07"))
        mapped = set(TYPE_CODE_CLASSES)
        assert not (mapped & UNMAPPED_TYPE_CODES)
        assert j07 - mapped == UNMAPPED_TYPE_CODES
        # The DMP map knows one type that the CI-SIS J07 of 2024-09-27 does not list.
        assert mapped - j07 == {("11526-1", LOINC_OID)}

    def test_class_code_systems(self):
        assert class_code_system_for("10") == CLASS_CODE_SYSTEM
        assert class_code_system_for(DIGITAL_SIGNATURE_CLASS_CODE) == "URN"


class TestCodeSystems:
    def test_known_urls(self):
        for url, oid in CODE_SYSTEM_OIDS.items():
            assert normalise_code_system(url) == oid

    @given(st.from_regex(r"[0-9]+(\.[0-9]+){0,8}", fullmatch=True))
    def test_urn_oid_prefix_is_removed_and_idempotent(self, oid):
        assert normalise_code_system(f"urn:oid:{oid}") == oid
        assert normalise_code_system(oid) == oid
        assert normalise_code_system(normalise_code_system(f" urn:oid:{oid} ")) == oid
