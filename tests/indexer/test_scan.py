"""Walking folders: extensions, hidden folders, symlinks and cycles."""

import os
from pathlib import Path

from capdex.indexer.scan import LINK_OUT, scan


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_picks_images_by_extension_case_insensitively(tmp_path: Path) -> None:
    for name in ["a.jpg", "b.JPEG", "c.Png", "d.webp", "e.gif", "f.bmp", "g.TIFF", "h.tif",
                 "notes.txt", "raw.cr2", "noext"]:
        touch(tmp_path / name)
    found = sorted(Path(f.path).name for f in scan([tmp_path]).files)
    assert found == ["a.jpg", "b.JPEG", "c.Png", "d.webp", "e.gif", "f.bmp", "g.TIFF", "h.tif"]


def test_skips_hidden_folders_and_reports_broken_links(tmp_path: Path) -> None:
    touch(tmp_path / ".cache" / "x.jpg")
    touch(tmp_path / "keep" / "y.jpg")
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "broken.jpg")
    result = scan([tmp_path])
    assert [Path(f.path).name for f in result.files] == ["y.jpg"]
    assert [(Path(p.path).name, p.reason) for p in result.problems] == [
        ("broken.jpg", "broken symbolic link")
    ]


def test_directory_cycles_are_walked_once(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "p.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # a/loop -> root -> a -> ...
    os.symlink(tmp_path / "a", tmp_path / "alias")  # a second way into a/
    files = [f.path for f in scan([tmp_path]).files]
    assert files == [str(tmp_path / "a" / "p.jpg")]


def test_symlinks_out_of_the_root_are_not_followed_unless_allowed(tmp_path: Path) -> None:
    """Issue 20, point 8: `root/link-out/out.jpg` (really outside the root) was indexed."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    touch(root / "a" / "in.jpg")
    touch(outside / "out.jpg")
    touch(outside / "secret.jpg")
    os.symlink(outside, root / "link-out")  # a folder out of the root
    os.symlink(outside / "secret.jpg", root / "a" / "secret.jpg")  # a file out of the root
    os.symlink(root / "a" / "in.jpg", root / "alias.jpg")  # inside: followed
    result = scan([root])
    assert sorted(Path(f.path).name for f in result.files) == ["alias.jpg", "in.jpg"]
    assert sorted((Path(p.path).name, p.reason) for p in result.problems) == [
        ("link-out", LINK_OUT), ("secret.jpg", LINK_OUT)]
    allowed = scan([root], follow_links_out=True)
    assert sorted(Path(f.path).name for f in allowed.files) == [
        "alias.jpg", "in.jpg", "out.jpg", "secret.jpg", "secret.jpg"]
    assert not allowed.problems


def test_a_changed_path_is_bounded_by_the_watched_roots(tmp_path: Path) -> None:
    """Watch mode scans changed paths with the roots it watches as the bounds."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    touch(root / "sub" / "in.jpg")
    touch(outside / "out.jpg")
    os.symlink(outside / "out.jpg", root / "sub" / "link.jpg")
    os.symlink(root / "sub" / "in.jpg", root / "sub" / "alias.jpg")
    found = scan([root / "sub"], within=[root])
    assert sorted(Path(f.path).name for f in found.files) == ["alias.jpg", "in.jpg"]
    single = scan([root / "sub" / "link.jpg", root / "sub" / "alias.jpg"], within=[root])
    assert [Path(f.path).name for f in single.files] == ["alias.jpg"]
    assert [p.reason for p in single.problems] == [LINK_OUT]


def test_a_symlinked_root_is_walked(tmp_path: Path) -> None:
    touch(tmp_path / "real" / "p.jpg")
    os.symlink(tmp_path / "real", tmp_path / "photos")
    assert [Path(f.path).name for f in scan([tmp_path / "photos"]).files] == ["p.jpg"]


def test_a_single_file_root_is_indexed(tmp_path: Path) -> None:
    photo = touch(tmp_path / "one.jpg", b"12345")
    [stat] = scan([photo]).files
    assert stat.path == str(photo) and stat.size == 5


def test_sidecars_are_found_beside_their_images(tmp_path: Path) -> None:
    touch(tmp_path / "IMG_1.JPG")
    touch(tmp_path / "IMG_1.xmp", b"<x/>")  # the short form...
    touch(tmp_path / "IMG_2.jpg")
    touch(tmp_path / "IMG_2.xmp")
    touch(tmp_path / "IMG_2.jpg.XMP", b"<xx/>")  # ...loses to the file's own sidecar
    touch(tmp_path / "IMG_3.png")
    for result in (scan([tmp_path]), scan([tmp_path / n for n in ("IMG_1.JPG", "IMG_2.jpg", "IMG_3.png")])):
        found = {Path(f.path).name: f.sidecar for f in result.files}
        assert Path(found["IMG_1.JPG"].path).name == "IMG_1.xmp" and found["IMG_1.JPG"].size == 4
        assert Path(found["IMG_2.jpg"].path).name == "IMG_2.jpg.XMP"
        assert found["IMG_3.png"] is None


def test_names_that_are_not_utf8_are_found_in_stored_form(tmp_path: Path) -> None:
    touch(Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.jpg")))
    [stat] = scan([tmp_path]).files
    assert stat.path.endswith("/caf\\xe9.jpg") and os.path.exists(stat.fs_path)


def test_fifos_and_excluded_folders(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    touch(tmp_path / "data" / "thumb.webp")
    result = scan([tmp_path], exclude=[tmp_path / "data"])
    assert not result.files
    assert [(Path(p.path).name, p.reason) for p in result.problems] == [("pipe.jpg", "not a regular file")]


def test_overlapping_roots_report_each_file_once(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "p.jpg")
    assert len(scan([tmp_path, tmp_path / "a", tmp_path / "a" / "p.jpg"]).files) == 1
