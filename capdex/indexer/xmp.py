"""XMP sidecars: read people's captions from them, and write machine captions into them.

Sidecars are untrusted XML: they are parsed with the standard library after refusing any DTD
(no entity expansion, nothing fetched, nothing executed) and with a size cap. Writing replaces
the file atomically and keeps every other field of an existing sidecar; the photo itself is
never opened for writing.

capdex marks what it wrote (`capdex:MachineCaption`), so reading its own caption back is never
mistaken for a person's: a description equal to that mark is a machine caption.
"""

from __future__ import annotations

import errno
import os
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from io import BytesIO

from capdex.atomic import atomic_write_bytes
from capdex.regular_file import read_regular

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
X = "adobe:ns:meta/"
CAPDEX = "https://github.com/capdex/capdex/ns/xmp/1.0/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_SIDECAR_BYTES = 4 << 20
_STANDARD_PREFIXES = {"x": X, "rdf": RDF, "dc": DC, "capdex": CAPDEX}
_PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_PACKET_END = '\n<?xpacket end="w"?>\n'
# ElementTree's prefix registry is process-wide; writers register and serialise under this lock.
_write_lock = threading.Lock()


class XmpError(Exception):
    """A sidecar cannot be read or written; str(error) says why."""


@dataclass(frozen=True)
class SidecarText:
    """The captions a sidecar holds."""

    description: str | None = None
    title: str | None = None
    #: The machine caption capdex last wrote into this sidecar, if any.
    machine_caption: str | None = None

    @property
    def human_caption(self) -> str | None:
        """What a person wrote: the description, else the title; never capdex's own text."""
        for text in (self.description, self.title):
            if text and text != self.machine_caption:
                return text
        return None


def _parse(data: bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    """The XML tree and its namespace declarations, refusing DTDs (entity expansion attacks)."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise XmpError(f"sidecar is larger than {MAX_SIDECAR_BYTES >> 20} MiB")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmpError("sidecar contains a DTD, which XMP never needs; refused")
    namespaces: list[tuple[str, str]] = []
    root = None
    try:
        for event, item in ET.iterparse(BytesIO(data), events=("start-ns", "end")):
            if event == "start-ns":
                namespaces.append(item)
            else:
                root = item
    except ET.ParseError as exc:
        raise XmpError(f"sidecar is not well-formed XML: {exc}") from exc
    assert root is not None
    return root, namespaces


def _descriptions(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{{{RDF}}}Description"))


def _lang_alt_text(element: ET.Element) -> str | None:
    """Text of a dc:description/dc:title: an rdf:Alt (x-default first), Seq/Bag, or plain text."""
    items = element.findall(f"./{{{RDF}}}Alt/{{{RDF}}}li") or element.findall(
        f"./{{{RDF}}}Seq/{{{RDF}}}li") or element.findall(f"./{{{RDF}}}Bag/{{{RDF}}}li")
    if items:
        default = [i for i in items if i.get(XML_LANG, "").lower() == "x-default"]
        for item in default + items:
            text = (item.text or "").strip()
            if text:
                return text
        return None
    text = (element.text or "").strip()
    return text or None


def _field(descriptions: list[ET.Element], name: str) -> str | None:
    tag = f"{{{DC}}}{name}"
    for description in descriptions:
        if description.get(tag, "").strip():
            return description.get(tag, "").strip()
        element = description.find(tag)
        if element is not None:
            text = _lang_alt_text(element)
            if text:
                return text
    return None


def read_sidecar(path: str) -> SidecarText:
    """The captions in the sidecar at OS path `path`. Raises XmpError or OSError."""
    data = read_regular(path, MAX_SIDECAR_BYTES + 1)
    descriptions = _descriptions(_parse(data)[0])
    machine = None
    for description in descriptions:
        machine = machine or (description.get(f"{{{CAPDEX}}}MachineCaption") or None)
    return SidecarText(_field(descriptions, "description"), _field(descriptions, "title"),
                       machine)


def sidecar_path_for(image_path: str) -> str:
    """Where capdex writes a new sidecar for an image: `IMG.jpg.xmp` (darktable's convention,
    specific to one file even when IMG.cr2 sits beside IMG.jpg)."""
    return image_path + ".xmp"


def _set_description(description: ET.Element, caption: str) -> None:
    tag = f"{{{DC}}}description"
    description.attrib.pop(tag, None)
    for old in description.findall(tag):
        description.remove(old)
    element = ET.SubElement(description, tag)
    alt = ET.SubElement(element, f"{{{RDF}}}Alt")
    item = ET.SubElement(alt, f"{{{RDF}}}li", {XML_LANG: "x-default"})
    item.text = caption


def _new_tree() -> ET.Element:
    root = ET.Element(f"{{{X}}}xmpmeta")
    rdf = ET.SubElement(root, f"{{{RDF}}}RDF")
    ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    return root


def render_sidecar(existing: bytes | None, caption: str, captioner: str,
                   version: str) -> bytes | None:
    """The sidecar bytes with `caption` as dc:description; None if a person's caption is there.

    Every other element and attribute of `existing` is kept.
    """
    namespaces: list[tuple[str, str]]
    if existing is None:
        root, namespaces = _new_tree(), []
    else:
        root, namespaces = _parse(existing)
    descriptions = _descriptions(root)
    if existing is not None:
        current = SidecarText(_field(descriptions, "description"), _field(descriptions, "title"),
                              next((d.get(f"{{{CAPDEX}}}MachineCaption") for d in descriptions
                                    if d.get(f"{{{CAPDEX}}}MachineCaption")), None))
        if current.description and current.description != current.machine_caption:
            return None  # a person's description: theirs to keep
    if not descriptions:
        rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f".//{{{RDF}}}RDF")
        if rdf is None:
            raise XmpError("sidecar has no rdf:RDF element")
        descriptions = [ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})]
    # The caption goes where a description already is, else into the first rdf:Description.
    target = next((d for d in descriptions if d.find(f"{{{DC}}}description") is not None
                   or d.get(f"{{{DC}}}description")), descriptions[0])
    _set_description(target, caption)
    for description in descriptions:
        for name in ("MachineCaption", "Captioner", "CaptionerVersion"):
            description.attrib.pop(f"{{{CAPDEX}}}{name}", None)
    target.set(f"{{{CAPDEX}}}MachineCaption", caption)
    target.set(f"{{{CAPDEX}}}Captioner", captioner)
    target.set(f"{{{CAPDEX}}}CaptionerVersion", version)
    with _write_lock:
        for prefix, uri in [*namespaces, *_STANDARD_PREFIXES.items()]:
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:  # a reserved prefix like ns0: ElementTree picks one itself
                pass
        body = ET.tostring(root, encoding="unicode")
    return (_PACKET_BEGIN + body + _PACKET_END).encode("utf-8")


def write_sidecar(image_path: str, existing_sidecar: str | None, caption: str, captioner: str,
                  version: str) -> str | None:
    """Write `caption` into the image's sidecar (OS paths); return the sidecar's path.

    Uses the existing sidecar if there is one, else `IMG.jpg.xmp` (or `IMG.xmp` when the longer
    name would be too long for the file system). Returns None, changing nothing, when the
    sidecar holds a person's description. Raises XmpError or OSError.
    """
    existing = None
    if existing_sidecar is not None:
        existing = read_regular(existing_sidecar, MAX_SIDECAR_BYTES + 1)
    data = render_sidecar(existing, caption, captioner, version)
    if data is None:
        return None
    target = existing_sidecar or sidecar_path_for(image_path)
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG or existing_sidecar is not None:
            raise
        target = os.path.splitext(image_path)[0] + ".xmp"
        atomic_write_bytes(target, data)
    return target
