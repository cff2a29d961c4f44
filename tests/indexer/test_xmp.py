"""XMP sidecars: parsing people's captions safely, writing machine captions without harm."""

from __future__ import annotations

from pathlib import Path

import pytest

from capdex.indexer.xmp import SidecarText, XmpError, read_sidecar, render_sidecar, write_sidecar

LIGHTROOM = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 5.6-c140">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    crs:Exposure2012="+0.50">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour</rdf:li></rdf:Alt></dc:title>
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="de-DE">Fischerboote im Hafen</rdf:li>
     <rdf:li xml:lang="x-default">Fishing boats in the harbour at dawn</rdf:li>
    </rdf:Alt>
   </dc:description>
   <dc:subject><rdf:Bag><rdf:li>boats</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


def sidecar(tmp_path: Path, data: bytes, name: str = "IMG.jpg.xmp") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_reads_the_default_language_description(tmp_path: Path) -> None:
    text = read_sidecar(sidecar(tmp_path, LIGHTROOM))
    assert text == SidecarText("Fishing boats in the harbour at dawn", "Harbour", None)
    assert text.human_caption == "Fishing boats in the harbour at dawn"


@pytest.mark.parametrize("body, expected", [
    (b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:description="attr form"/>',
     "attr form"),
    (b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>plain'
     b"</dc:description></rdf:Description>", "plain"),
    (b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
     b'<rdf:li xml:lang="en">only a title</rdf:li></rdf:Alt></dc:title></rdf:Description>',
     "only a title"),
    (b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description><rdf:Alt>'
     b'<rdf:li xml:lang="x-default">  </rdf:li></rdf:Alt></dc:description></rdf:Description>', None),
])
def test_other_shapes_tools_write(tmp_path: Path, body: bytes, expected: str | None) -> None:
    data = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + body + b"</rdf:RDF></x:xmpmeta>")
    assert read_sidecar(sidecar(tmp_path, data)).human_caption == expected


@pytest.mark.parametrize("data, reason", [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b"<x>&b;</x>", "DTD"),
    (b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed>", "not well-formed"),
    (b"\x00\xff garbage", "not well-formed"),
])
def test_hostile_sidecars_are_refused(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(XmpError, match=reason):
        read_sidecar(sidecar(tmp_path, data))


def test_writing_keeps_every_other_field_and_marks_the_text_as_machine(tmp_path: Path) -> None:
    no_description = LIGHTROOM.replace(b"<dc:description>", b"<!--").replace(b"</dc:description>", b"-->")
    path = sidecar(tmp_path, no_description)
    assert write_sidecar(str(tmp_path / "IMG.jpg"), path, "a boat", "tagger", "3") == path
    text = read_sidecar(path)
    assert text.description == "a boat" and text.machine_caption == "a boat"
    assert text.human_caption == "Harbour"  # the person's title is still theirs
    data = Path(path).read_bytes()
    assert b'crs:Exposure2012="+0.50"' in data and b"<rdf:li>boats</rdf:li>" in data
    assert b"Harbour" in data


def test_a_persons_description_is_never_overwritten(tmp_path: Path) -> None:
    path = sidecar(tmp_path, LIGHTROOM)
    assert render_sidecar(LIGHTROOM, "machine words", "tagger", "1") is None
    assert write_sidecar(str(tmp_path / "IMG.jpg"), path, "machine words", "tagger", "1") is None
    assert Path(path).read_bytes() == LIGHTROOM


def test_a_new_sidecar_is_named_after_the_whole_file_name(tmp_path: Path) -> None:
    image = tmp_path / "IMG_1.JPG"
    written = write_sidecar(str(image), None, "a cat", "tagger", "1")
    assert written == str(image) + ".xmp"
    again = write_sidecar(str(image), written, "a black cat", "tagger", "2")  # our own text: replaced
    assert again == written and read_sidecar(written).description == "a black cat"
    assert read_sidecar(written).human_caption is None


def test_a_too_long_name_falls_back_to_the_short_sidecar_name(tmp_path: Path) -> None:
    image = tmp_path / ("n" * 248 + ".jpg")  # 252 bytes: "+.xmp" would pass the 255 limit
    written = write_sidecar(str(image), None, "a dog", "tagger", "1")
    assert written == str(tmp_path / ("n" * 248 + ".xmp"))
