"""Real sample photos shipped inside installed packages, for `make run`, demos and tests.

scikit-image, scikit-learn and matplotlib ship a few real photographs as package data; copying
their bytes gives a small, varied folder to index without any download. Licences are as their
packages state them (see `SAMPLES`).

`SHOWN` are the scenes `make run` indexes: things a person photographs, which the default tagger
names and the OCR reads. The rest of `SAMPLES` are texture and test images (gravel, grass, a
retina, blurred clock) that it cannot name: the tests keep them, as hard cases.

    python -m capdex.samples DIR        # writes the shown photos into DIR
    python -m capdex.samples DIR --all  # ... and the hard ones
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "pip install 'capdex[samples]'"


class SamplesUnavailableError(RuntimeError):
    """A package holding sample photos is missing; the message says what to install."""


@dataclass(frozen=True)
class Sample:
    filename: str  # name written in the destination folder
    package: str  # distribution that ships it (what to pip install)
    module: str  # importable package the file lives in
    resource: str  # path inside `module`
    shows: str
    licence: str
    shown: bool = True  # written for `make run`; False: a hard case kept for the tests


_SKIMAGE_NOTE = "as stated in skimage.data.{}'s docstring"

SAMPLES: tuple[Sample, ...] = (
    Sample(
        "astronaut-eileen-collins.png", "scikit-image", "skimage", "data/astronaut.png",
        "NASA portrait of astronaut Eileen Collins in an orange flight suit, with a US flag "
        "and a space shuttle model",
        "public domain, no known copyright restrictions (NASA Great Images); "
        + _SKIMAGE_NOTE.format("astronaut"),
    ),
    Sample(
        "cameraman.png", "scikit-image", "skimage", "data/camera.png",
        "greyscale photo of a man looking through a camera on a tripod, on a lawn",
        "CC0, photographer Lav Varshney; " + _SKIMAGE_NOTE.format("camera"),
    ),
    Sample(
        "chelsea-the-cat.png", "scikit-image", "skimage", "data/chelsea.png",
        "close-up of Chelsea, a tabby cat",
        "CC0, photographer Stefan van der Walt; " + _SKIMAGE_NOTE.format("chelsea"),
    ),
    Sample(
        "wall-clock-motion-blur.png", "scikit-image", "skimage", "data/clock_motion.png",
        "greyscale photo of a wall clock, blurred by moving the camera",
        "public domain, released by the photographer Stefan van der Walt; "
        + _SKIMAGE_NOTE.format("clock"),
        shown=False,
    ),
    Sample(
        "coffee-cup.png", "scikit-image", "skimage", "data/coffee.png",
        "a cup of espresso on a saucer with a spoon, on a wooden table (Pikolo Espresso Bar)",
        "CC0, photographer Rachel Michetti; " + _SKIMAGE_NOTE.format("coffee"),
    ),
    Sample(
        "greek-coins.png", "scikit-image", "skimage", "data/coins.png",
        "greyscale photo of Greek coins from Pompeii on a grey background (Brooklyn Museum)",
        "no known copyright restrictions; " + _SKIMAGE_NOTE.format("coins"),
        shown=False,
    ),
    Sample(
        "hubble-deep-field.jpg", "scikit-image", "skimage", "data/hubble_deep_field.jpg",
        "the Hubble eXtreme Deep Field: hundreds of distant galaxies on black",
        "public domain (NASA, HubbleSite); " + _SKIMAGE_NOTE.format("hubble_deep_field"),
        shown=False,
    ),
    Sample(
        "red-motorcycle.png", "scikit-image", "skimage", "data/motorcycle_left.png",
        "a red motorcycle parked in a workshop with shelves and boxes",
        "no licence stated by scikit-image; from the Middlebury 2014 stereo benchmark "
        "(Scharstein et al., GCPR 2014), see skimage.data.stereo_motorcycle",
    ),
    Sample(
        "falcon9-rocket-launch.jpg", "scikit-image", "skimage", "data/rocket.jpg",
        "SpaceX Falcon 9 carrying DSCOVR on the launch pad at dusk, Cape Canaveral",
        "public domain (released by SpaceX); " + _SKIMAGE_NOTE.format("rocket"),
    ),
    Sample(
        "human-retina.jpg", "scikit-image", "skimage", "data/retina.jpg",
        "fundus photograph of a human retina: orange disc with blood vessels, on black",
        "CC0 1.0 (Wikimedia Commons); " + _SKIMAGE_NOTE.format("retina"),
        shown=False,
    ),
    Sample(
        "brick-wall.png", "scikit-image", "skimage", "data/brick.png",
        "greyscale photo of a brick wall",
        "CC0 (CC0Textures); " + _SKIMAGE_NOTE.format("brick"),
        shown=False,
    ),
    Sample(
        "grass.png", "scikit-image", "skimage", "data/grass.png",
        "greyscale close-up of grass",
        "CC0 (DeviantArt, linolafett); " + _SKIMAGE_NOTE.format("grass"),
        shown=False,
    ),
    Sample(
        "gravel.png", "scikit-image", "skimage", "data/gravel.png",
        "greyscale close-up of gravel",
        "CC0 (CC0Textures); " + _SKIMAGE_NOTE.format("gravel"),
        shown=False,
    ),
    Sample(
        "handwritten-text.png", "scikit-image", "skimage", "data/text.png",
        "greyscale close-up of handwritten maths on lined paper, at an angle",
        "public domain, no known copyright restrictions (Wikipedia File:Corner.png); "
        + _SKIMAGE_NOTE.format("text"),
        shown=False,
    ),
    Sample(
        "page-of-text.png", "scikit-image", "skimage", "data/page.png",
        "greyscale scan of a printed page about region-based segmentation (text to read, OCR)",
        "no licence stated: skimage.data.page's docstring says only \"Scanned page\"; "
        "scikit-image's own test data",
    ),
    Sample(
        "chinese-pagoda.jpg", "scikit-learn", "sklearn", "datasets/images/china.jpg",
        "a Chinese pagoda-style tower among trees on a hill above a lake",
        "CC BY 2.0, attribution: danielbuechele on Flickr; sklearn/datasets/images/README.txt",
    ),
    Sample(
        "orange-flower.jpg", "scikit-learn", "sklearn", "datasets/images/flower.jpg",
        "close-up of an orange dahlia-like flower against dark green",
        "CC BY 2.0; sklearn/datasets/images/README.txt credits danielbuechele but links "
        "Flickr user vultilion as the source",
    ),
    Sample(
        "grace-hopper.jpg", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
        "portrait of Grace Hopper in US Navy uniform, with a US flag behind her",
        "public domain, as described in matplotlib PR #1599 (which added it); the installed "
        "package itself ships no notice for this file",
    ),
)  # fmt: skip


def _source(sample: Sample) -> Path:
    """Where `sample` is on disk. Only locates the package: importing it is not needed."""
    spec = importlib.util.find_spec(sample.module)
    if spec is None or not spec.submodule_search_locations:
        raise SamplesUnavailableError(
            f"sample photos need {sample.package} (module {sample.module!r}): {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / sample.resource
    if not path.is_file():
        raise SamplesUnavailableError(
            f"{sample.package} is installed but has no {sample.resource} (looked at {path}); "
            f"try reinstalling it: {INSTALL_HINT}"
        )
    return path


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


SHOWN: tuple[Sample, ...] = tuple(sample for sample in SAMPLES if sample.shown)


def write_samples(dest: Path, samples: Sequence[Sample] = SAMPLES,
                  changed: list[Path] | None = None) -> list[Path]:
    """Copy sample photos (default: all of them) into `dest` (created if needed) and return
    their paths; those actually (re)written are appended to `changed`.

    Idempotent: files already holding the right bytes are left alone (mtimes unchanged, so an
    indexer sees nothing new); others are replaced atomically.
    """
    dest = Path(dest)
    sources = [(sample, _source(sample)) for sample in samples]  # fail before writing anything
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for sample, source in sources:
        target = dest / sample.filename
        if not (target.is_file() and _same_bytes(source, target)):
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                tmp.write_bytes(source.read_bytes())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            if changed is not None:
                changed.append(target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m capdex.samples",
        description="Write capdex's sample photos (from installed packages) into a folder.",
    )
    parser.add_argument("dest", type=Path, help="folder to write the photos into")
    parser.add_argument("--all", action="store_true",
                        help="also the hard test images (textures, a retina, a blurred clock)")
    parser.add_argument("--list", action="store_true", help="print every photo's path")
    args = parser.parse_args(argv)
    changed: list[Path] = []
    try:
        paths = write_samples(args.dest, SAMPLES if args.all else SHOWN, changed)
    except SamplesUnavailableError as exc:
        parser.exit(1, f"error: {exc}\n")
    if args.list:
        for path in paths:
            print(path)
    else:  # one line, not a path per photo on every `make run`
        news = f"{len(changed)} written" if changed else "all already there"
        print(f"{len(paths)} sample photos in {args.dest} ({news})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
