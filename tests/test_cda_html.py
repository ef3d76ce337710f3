"""CDA documents as HTML: the official examples read as text a person can follow, and hostile
narrative (scripts, ``javascript:`` links, styles, event attributes) stays inert."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import html as lxml_html

from monespace.errors import ValidationError
from monespace.server._cda_html import read_cda

CDA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "cisis" / "cda"
EXAMPLES = sorted(CDA.glob("*.xml")) if CDA.is_dir() else []

#: What HTML may contain once rendered: the allow-list's output elements and attributes.
ALLOWED_TAGS = {
    "section", "h2", "h3", "h4", "h5", "h6", "div", "p", "ul", "ol", "li", "table", "caption",
    "thead", "tbody", "tfoot", "tr", "th", "td", "span", "br", "sub", "sup", "small", "strong",
    "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"class", "colspan", "rowspan", "scope", "href", "rel", "tabindex", "role"}
FIXED_VALUES = {"tabindex": "0", "role": "region", "aria-label": "Tableau"}


def _check_safe(fragment: str) -> None:
    tree = lxml_html.fragment_fromstring(f"<div>{fragment}</div>")
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag in ALLOWED_TAGS | {"div"}, element.tag
        for name, value in element.attrib.items():
            assert name in ALLOWED_ATTRIBUTES | FIXED_VALUES.keys(), name
            if name in FIXED_VALUES:
                assert value == FIXED_VALUES[name]
            if name == "href":
                assert value.startswith(("https://", "http://")), value
            if name == "class":
                assert re.fullmatch(r"[a-z -]+", value), value


def _wrap(narrative: str, title: str = "Consultation") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="javascript:alert(1)"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xhtml="http://www.w3.org/1999/xhtml">
<title>{title}</title>
<component><structuredBody><component><section>
<title>Motif</title>
<text>{narrative}</text>
</section></component></structuredBody></component>
</ClinicalDocument>""".encode()


@pytest.mark.skipif(not EXAMPLES, reason="the CI-SIS examples are not in ../shared/data")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_official_examples_read_as_safe_html(path):
    readable = read_cda(path.read_bytes())
    assert readable is not None
    assert readable.title
    if readable.embedded is not None:
        assert readable.html == ""
        assert readable.embedded.content
        if readable.embedded.media_type == "application/pdf":
            assert readable.embedded.content.startswith(b"%PDF-")
        return
    assert "<section" in readable.html
    _check_safe(readable.html)
    # the narrative's words are there, not the XML around them
    assert "urn:hl7-org:v3" not in readable.html
    assert "templateId" not in readable.html


def test_the_narrative_elements_map_to_html():
    narrative = """<paragraph>Patient vu pour <content styleCode="Bold Italics">toux</content>
        depuis 3 jours.<br/>Pas de fièvre.</paragraph>
        <list listType="ordered"><caption>Conduite</caption><item>Repos</item>
        <item>Paracétamol <sub>1</sub><sup>2</sup></item></list>
        <table><caption>Constantes</caption><thead><tr><th>Mesure</th><th>Valeur</th></tr></thead>
        <tbody><tr><td colspan="2">Pouls 72</td></tr><tr><td rowspan="x">T°</td><td>37</td></tr>
        </tbody></table>
        <linkHtml href="https://www.ameli.fr/">ameli</linkHtml>
        <renderMultiMedia referencedObject="img1"/><footnote>note</footnote>"""
    out = read_cda(_wrap(narrative)).html
    _check_safe(out)
    assert '<span class="cda-bold cda-italics">toux</span>' in out
    assert "<br>Pas de fièvre." in out
    assert "<p><strong>Conduite</strong></p><ol><li>Repos</li>" in out
    assert "<sub>1</sub><sup>2</sup>" in out
    assert "<caption>Constantes</caption>" in out
    assert '<th scope="col">Mesure</th>' in out
    assert '<td colspan="2">Pouls 72</td>' in out
    assert "<td>T°</td>" in out  # a span that is no number is dropped
    assert '<a href="https://www.ameli.fr/" rel="noopener noreferrer nofollow">ameli</a>' in out
    assert "<small>note</small>" in out
    assert "<h3>Motif</h3>" not in out
    assert "<h2>Motif</h2>" in out


HOSTILE = [
    "<script>alert(1)</script>",
    '<paragraph onload="alert(1)" style="background:url(javascript:alert(1))">x</paragraph>',
    '<linkHtml href="javascript:alert(1)">cliquez</linkHtml>',
    '<linkHtml href=" JaVaScRiPt:alert(1)">cliquez</linkHtml>',
    '<linkHtml href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</linkHtml>',
    '<linkHtml href="https://x.example/&quot; onmouseover=&quot;alert(1)">x</linkHtml>',
    '<content styleCode="x&quot; onclick=&quot;alert(1)">x</content>',
    '<xhtml:script>alert(1)</xhtml:script><xhtml:iframe src="https://evil.example"/>',
    "<style>body{display:none}</style>",
    '<table onload="alert(1)"><tr><td ID="a" style="x">1</td></tr></table>',
    "&lt;img src=x onerror=alert(1)&gt;",
    '<renderMultiMedia referencedObject="x"><caption>&lt;svg onload=alert(1)&gt;</caption>'
    "</renderMultiMedia>",
    "<!-- <script>alert(1)</script> --><?php echo 1 ?>",
]


@pytest.mark.parametrize("narrative", HOSTILE)
def test_hostile_narrative_is_inert(narrative):
    out = read_cda(_wrap(narrative)).html
    _check_safe(out)
    lowered = out.lower()
    assert "<script" not in lowered
    assert "<style" not in lowered
    assert "<iframe" not in lowered
    assert "<img" not in lowered
    assert "onload=" not in lowered.replace("&lt;", "")
    assert "onclick=" not in lowered
    assert "onmouseover=" not in lowered.replace("&quot;", "")


def test_a_script_keeps_its_text_escaped_and_a_title_is_escaped():
    out = read_cda(_wrap("<script>alert(1)</script>", title="&lt;b&gt;x&lt;/b&gt;"))
    assert out.title == "<b>x</b>"  # the page escapes it where it prints it
    assert "alert(1)" in out.html
    assert "<script" not in out.html


def test_level_one_body_and_hostile_xml():
    pdf = b"%PDF-1.4 demo"
    document = f"""<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title>
<component><nonXMLBody><text mediaType="application/pdf" representation="B64">
{base64.b64encode(pdf).decode()}
</text></nonXMLBody></component></ClinicalDocument>""".encode()
    readable = read_cda(document)
    assert readable.embedded.media_type == "application/pdf"
    assert readable.embedded.content == pdf
    broken = document.replace(base64.b64encode(pdf), b"!!!not base64!!!")
    assert read_cda(broken).embedded is None
    assert read_cda(b"<notcda/>") is None
    with pytest.raises(ValidationError):
        read_cda(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    with pytest.raises(ValidationError):
        read_cda(b"<ClinicalDocument")


def test_an_auto_presentable_document_is_read_without_its_stylesheet():
    wrapped = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:template match="/"><html><body><script>alert(1)</script></body></html></xsl:template>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Biologie</title><component><structuredBody>
<component><section><title>Hématologie</title><text><paragraph>Hb 14</paragraph></text></section>
</component></structuredBody></component></ClinicalDocument></xsl:stylesheet>""".encode()
    readable = read_cda(wrapped)
    assert readable.title == "Biologie"
    assert "<p>Hb 14</p>" in readable.html
    assert "alert" not in readable.html


# --- any narrative, however hostile, renders as allow-listed HTML ------------------------------

_NAMES = [
    "paragraph", "list", "item", "table", "thead", "tbody", "tr", "th", "td", "content",
    "caption", "linkHtml", "br", "sub", "sup", "footnote", "renderMultiMedia", "script",
    "style", "iframe", "img", "a", "object", "svg", "body", "html", "meta", "form",
]  # fmt: skip
_ATTRIBUTES = ["onload", "onclick", "style", "href", "src", "styleCode", "colspan", "ID", "class"]
#: Characters XML allows (what the hardened parser accepts), markup-significant ones included.
_XML_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xD7FF)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "javascript:alert(1)",
            " JAVASCRIPT:alert(1)",
            "data:text/html,x",
            "vbscript:x",
            "https://ok.example/",
            'https://x.example/" onmouseover="alert(1)',
            "Bold Italics",
            "2",
            "-1",
            "99999999999",
        ]
    ),
    st.text(alphabet=_XML_CHARS, max_size=20),
)
_TEXT = st.text(alphabet=_XML_CHARS, max_size=20)


@st.composite
def _elements(draw, depth=0):
    name = draw(st.sampled_from(_NAMES))
    attributes = draw(st.dictionaries(st.sampled_from(_ATTRIBUTES), _VALUES, max_size=3))
    rendered = " ".join(f'{k}="{html.escape(v, quote=True)}"' for k, v in attributes.items())
    children = draw(st.lists(_elements(depth + 1), max_size=3)) if depth < 3 else []
    inner = html.escape(draw(_TEXT), quote=False) + "".join(children)
    return f"<{name} {rendered}>{inner}</{name}>"


@given(st.lists(_elements(), max_size=4))
@example(['<linkHtml href=" javascript:alert(1)"><script>x</script></linkHtml>'])
def test_any_narrative_renders_as_allow_listed_html(narrative):
    out = read_cda(_wrap("".join(narrative))).html
    _check_safe(out)
    lowered = out.lower()
    for tag in ("<script", "<style", "<iframe", "<img", "<object", "<svg", "<form", "<meta"):
        assert tag not in lowered
