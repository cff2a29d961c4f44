"""The OCR test set (issue 17): every photo with text to be found offline, to measure the text
gate against a full read of each.

- the sample photos (`capdex.samples`, with the scanned page) and the images that scikit-image,
  scikit-learn and matplotlib ship (a page, a sign, a logo, ...);
- images in installed Debian packages' docs (screenshots, plots, diagrams), where present;
- text drawn with PIL onto real photos: signs, labels and captions of several sizes, colours
  and fonts, some on the photo blown up to 12 MP as a camera would give it, with the text as
  small as 1.5 % of the height.

Which photos show text is not declared here but measured: a photo is a text photo when the
full read (no gate) finds text on it.
"""

from __future__ import annotations

import glob
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from capdex.samples import write_samples

FONTS = "/usr/share/fonts/truetype"
#: Fonts to draw with, where installed (the first is the fallback for the rest).
FONT_FILES = ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSerif-Bold.ttf",
              "liberation/LiberationSans-Bold.ttf", "dejavu/DejaVuSansMono.ttf",
              "dejavu/DejaVuSans-Oblique.ttf")

#: Images shipped in Python packages, beside the samples: module, path inside it.
PACKAGE_IMAGES = (
    ("skimage", "data/page.png"), ("skimage", "data/text.png"), ("skimage", "data/logo.png"),
    ("skimage", "data/horse.png"), ("skimage", "data/phantom.png"),
    ("matplotlib", "mpl-data/sample_data/logo2.png"),
    ("matplotlib", "mpl-data/sample_data/Minduka_Present_Blue_Pack.png"),
    ("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"),
)

#: Screenshots, plots and diagrams in Debian packages' documentation (used where installed).
DOC_IMAGE_GLOBS = ("/usr/share/doc/*/*.png", "/usr/share/doc/*/*.jpg", "/usr/share/doc/*/*/*.png",
                   "/usr/share/doc/*/*/*.gif", "/usr/share/doc/*/*/*/*.png",
                   "/usr/share/doc/*/*/*/*/*.png", "/usr/share/info/*.png")

#: Real photos text is drawn on (module, path).
BASE_PHOTOS = (
    ("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"),
    ("skimage", "data/coffee.png"), ("skimage", "data/chelsea.png"),
    ("skimage", "data/astronaut.png"), ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_right.png"), ("skimage", "data/camera.png"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), ("skimage", "data/brick.png"),
)

#: Lines drawn on photos: signs, labels, notices, captions a phone photo would show.
PHRASES = (
    ("MAIN STREET",), ("Open 9am to 6pm", "Closed Sundays"), ("EXIT",), ("Platform 4",),
    ("Fresh coffee", "Espresso 2.50"), ("No parking", "Tow away zone"), ("Welcome to Lisbon",),
    ("SALE 50% OFF",), ("Room 214",), ("Happy birthday Anna",), ("Gate B22",),
    ("Museum of Modern Art",), ("Keep off the grass",), ("Best before 12 MAR 2026",),
)

#: (photo long side, text height as a share of the photo's height, plate behind the text)
STYLES = ((None, 0.10, True), (None, 0.06, False), (None, 0.045, True), (None, 0.08, False),
          (4000, 0.03, True), (4000, 0.02, False), (4000, 0.015, True), (4000, 0.05, False))


def _package_file(module: str, resource: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / resource
    return path if path.is_file() else None


def _font(index: int, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in (FONT_FILES[index % len(FONT_FILES)], FONT_FILES[0]):
        if Path(FONTS, name).is_file():
            return ImageFont.truetype(str(Path(FONTS, name)), size)
    return ImageFont.load_default(size)


def draw_text(photo: Image.Image, lines: tuple[str, ...], height_share: float, plate: bool,
              seed: int) -> Image.Image:
    """`photo` with `lines` drawn at a random place, each line `height_share` of its height."""
    rng = random.Random(seed)
    photo = photo.convert("RGB")
    draw = ImageDraw.Draw(photo)
    size = max(8, round(photo.height * height_share))
    font = _font(seed, size)
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    width = int(max(b[2] - b[0] for b in boxes))
    step = round(size * 1.3)
    x = rng.randint(size // 2, max(size // 2, photo.width - width - size // 2))
    y = rng.randint(size // 2, max(size // 2, photo.height - step * len(lines) - size // 2))
    light = rng.random() < 0.5
    ink, paper = ((20, 20, 30), (240, 236, 220)) if light else ((250, 250, 245), (25, 60, 140))
    if plate:
        draw.rectangle((x - size // 2, y - size // 3, x + width + size // 2,
                        y + step * len(lines)), fill=paper)
    else:  # straight on the photo, with a thin outline as overlays and signs often have
        ink = (255, 255, 255) if rng.random() < 0.5 else (255, 220, 0)
    for i, line in enumerate(lines):
        draw.text((x, y + i * step), line, fill=ink, font=font,
                  stroke_width=0 if plate else max(1, size // 20), stroke_fill=(0, 0, 0))
    return photo


def build(dest: Path) -> list[Path]:
    """Write the OCR test set into `dest` (created); returns the photos' paths."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = write_samples(dest / "samples")
    for module, resource in PACKAGE_IMAGES:
        source = _package_file(module, resource)
        if source is not None:
            paths.append(Path(shutil.copy(source, dest / f"{module}-{Path(resource).name}")))
    docs = sorted({p for pattern in DOC_IMAGE_GLOBS for p in glob.glob(pattern)})
    for doc in docs:
        target = dest / ("doc-" + doc.removeprefix("/usr/share/").replace("/", "-"))
        paths.append(Path(shutil.copy(doc, target)))
    seed = 0
    for module, resource in BASE_PHOTOS:
        source = _package_file(module, resource)
        if source is None:
            continue
        with Image.open(source) as opened:
            base = opened.convert("RGB")
        for side, share, plate in STYLES:
            photo = base
            if side is not None:  # the photo as a 12-MP camera file
                scale = side / max(base.size)
                photo = base.resize((round(base.width * scale), round(base.height * scale)),
                                    Image.Resampling.BICUBIC)
            lines = PHRASES[seed % len(PHRASES)]
            target = dest / f"drawn-{Path(resource).stem}-{seed:02d}.jpg"
            draw_text(photo, lines, share, plate, seed).save(target, quality=90)
            paths.append(target)
            seed += 1
    return paths
