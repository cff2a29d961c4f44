"""The rules that decide what an index run does, on plain data."""

from capdex.indexer.plan import KnownFile, plan_changes, resolve
from capdex.indexer.scan import FileStat


def known(path: str, photo_id: int, size: int = 10, mtime: int = 100, id_: int = 0) -> KnownFile:
    return KnownFile(id_ or photo_id, path, size, mtime, photo_id)


def test_unchanged_files_are_not_hashed() -> None:
    plan = plan_changes([FileStat("/a.jpg", 10, 100)], {"/a.jpg": known("/a.jpg", 1)}, {})
    assert plan.unchanged == 1 and not plan.to_hash and not plan.gone


def test_changed_size_or_mtime_is_hashed() -> None:
    rows = {"/a.jpg": known("/a.jpg", 1), "/b.jpg": known("/b.jpg", 2)}
    plan = plan_changes([FileStat("/a.jpg", 11, 100), FileStat("/b.jpg", 10, 101)], rows, {})
    assert [s.path for s, _ in plan.to_hash] == ["/a.jpg", "/b.jpg"]
    assert all(row is not None for _, row in plan.to_hash)


def test_missing_files_are_gone() -> None:
    plan = plan_changes([], {"/a.jpg": known("/a.jpg", 1)}, {})
    assert [r.path for r in plan.gone] == ["/a.jpg"]


def test_known_failures_are_skipped_until_the_file_changes() -> None:
    failed = {"/bad.jpg": (5, 50)}
    assert plan_changes([FileStat("/bad.jpg", 5, 50)], {}, failed).still_failing
    retried = plan_changes([FileStat("/bad.jpg", 6, 51)], {}, failed)
    assert not retried.still_failing and len(retried.to_hash) == 1


def test_resolve_touch_copy_move_change_and_new() -> None:
    gone = [known("/old/moved.jpg", 7, id_=70)]
    row_touched = known("/t.jpg", 1)
    row_edited = known("/e.jpg", 2)
    hashed = [
        (FileStat("/t.jpg", 10, 999), row_touched, "h1"),  # same bytes, new mtime
        (FileStat("/e.jpg", 12, 999), row_edited, "h3"),  # edited into known photo 3
        (FileStat("/copy.jpg", 10, 1), None, "h1"),  # a copy of photo 1
        (FileStat("/new/moved.jpg", 10, 1), None, "h7"),  # photo 7 lost its file this run
        (FileStat("/n1.jpg", 10, 1), None, "hx"),  # new content ...
        (FileStat("/n2.jpg", 10, 1), None, "hx"),  # ... twice: captioned once
    ]
    result = resolve(hashed, {"h1": 1, "h3": 3, "h7": 7}, gone)
    assert [s.path for s, _ in result.touched] == ["/t.jpg"]
    assert [(s.path, p) for s, _, p in result.relinked] == [("/e.jpg", 3)]
    assert [(s.path, p) for s, p in result.copies] == [("/copy.jpg", 1)]
    assert [(s.path, p) for s, p in result.moves] == [("/new/moved.jpg", 7)]
    assert list(result.new_content) == ["hx"]
    assert [s.path for s, _ in result.new_content["hx"].files] == ["/n1.jpg", "/n2.jpg"]


def test_a_second_copy_of_a_moved_photo_is_a_copy() -> None:
    gone = [known("/old.jpg", 7)]
    hashed = [(FileStat("/a.jpg", 1, 1), None, "h7"), (FileStat("/b.jpg", 1, 1), None, "h7")]
    result = resolve(hashed, {"h7": 7}, gone)
    assert len(result.moves) == 1 and len(result.copies) == 1


def test_a_changed_sidecar_of_an_unchanged_image_is_noticed() -> None:
    from capdex.indexer.scan import SidecarStat

    row = KnownFile(1, "/a.jpg", 10, 100, 1, sidecar_size=5, sidecar_mtime_ns=7)
    same = FileStat("/a.jpg", 10, 100, SidecarStat("/a.jpg.xmp", 5, 7))
    edited = FileStat("/a.jpg", 10, 100, SidecarStat("/a.jpg.xmp", 6, 8))
    gone = FileStat("/a.jpg", 10, 100, None)
    assert not plan_changes([same], {"/a.jpg": row}, {}).sidecar_changed
    for stat in (edited, gone):
        plan = plan_changes([stat], {"/a.jpg": row}, {})
        assert plan.unchanged == 1 and plan.sidecar_changed == [(stat, row)] and not plan.to_hash
