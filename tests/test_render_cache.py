"""The render cache: JSON entries keyed by the body and the renderer, pruned, never trusted."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import stat
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from app.content import TocEntry, load_course
from app.content.cache import RenderCache, renderer_fingerprint
from app.content.render import render_body

BODY = "## Setup\n\nSome `code`:\n\n```python\ndef relu(x):\n    return max(0.0, x)\n```\n"


def entries(folder: Path) -> set[str]:
    """The names of the cache's entries in the folder."""
    return {
        path.name
        for path in folder.glob("*.json")
        if re.fullmatch(r"[0-9a-f]{64}\.json", path.name)
    }


def test_an_entry_is_json_holding_the_html_and_toc_and_reads_back_equal(tmp_path):
    cache = RenderCache(tmp_path / "cache")
    rendered = render_body(BODY)
    key = cache.key(BODY)
    assert cache.get(key) is None
    cache.put(key, rendered)
    path = tmp_path / "cache" / f"{key}.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "html": rendered[0],
        "toc": [{"level": 2, "id": "setup", "title": "Setup"}],
    }
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # readable by its owner only
    assert cache.get(key) == rendered
    assert cache.get(key)[1] == (TocEntry(2, "setup", "Setup"),)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary left


@pytest.mark.parametrize(
    "damaged",
    [
        b"",
        b"not json",
        b'{"html": "<p>cut',
        b"[]",
        b'{"toc": []}',
        b'{"html": 1, "toc": []}',
        b'{"html": "x", "toc": [{"level": "two", "id": "a", "title": "A"}]}',
        b'{"html": "x", "toc": "abc"}',
        b"\xff\xfe",
    ],
)
def test_a_damaged_entry_is_a_miss_and_a_warning(tmp_path, caplog, damaged):
    cache = RenderCache(tmp_path)
    key = cache.key(BODY)
    (tmp_path / f"{key}.json").write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="backprop.content"):
        assert cache.get(key) is None
    assert f"ignoring unreadable render cache entry {key}" in caplog.text


def test_a_damaged_entry_is_rendered_again_replaced_and_reported_once(
    fixture_course, tmp_path, caplog
):
    cache = tmp_path / "cache"
    fresh = load_course(fixture_course)
    load_course(fixture_course, cache_dir=cache)
    for entry in cache.glob("*.json"):
        entry.write_bytes(b"not json")
    with caplog.at_level(logging.WARNING, logger="backprop.content"):
        course = load_course(fixture_course, cache_dir=cache)
        assert [(les.html, les.toc) for les in course.lessons] == [
            (les.html, les.toc) for les in fresh.lessons
        ]
        load_course(fixture_course, cache_dir=cache)  # the replaced entries now read fine
    assert caplog.text.count("ignoring unreadable render cache entry") == len(fresh.lessons)


def test_another_renderer_fingerprint_is_another_key_and_misses(tmp_path):
    current = RenderCache(tmp_path)
    current.put(current.key(BODY), render_body(BODY))
    upgraded = RenderCache(tmp_path, fingerprint=renderer_fingerprint() + " pygments upgraded")
    assert upgraded.key(BODY) != current.key(BODY)
    assert upgraded.get(upgraded.key(BODY)) is None
    assert current.get(current.key(BODY)) is not None


def test_the_fingerprint_names_the_library_versions_and_hashes_our_renderer():
    fingerprint = renderer_fingerprint()
    for package in ("markdown", "pygments", "nh3", "pymdown-extensions", "latex2mathml"):
        assert f"{package}={version(package)}" in fingerprint
    for module in ("render.py", "mathml.py"):
        source = (Path(__file__).parent.parent / "app" / "content" / module).read_bytes()
        assert f"{module}={hashlib.sha256(source).hexdigest()[:16]}" in fingerprint


def test_loading_a_course_prunes_entries_no_current_lesson_uses(fixture_course, tmp_path):
    cache = tmp_path / "cache"
    load_course(fixture_course, cache_dir=cache)
    before = entries(cache)
    assert len(before) == 4
    foreign = [cache / "notes.txt", cache / ("ab" * 32 + ".txt"), cache / ("0" * 63 + ".json")]
    for path in foreign:
        path.write_text("not ours")
    edited = fixture_course / "training" / "learning-rates.md"
    edited.write_text(edited.read_text().replace("Warm-up, then decay.", "Cosine decay."))
    (fixture_course / "dl-intro-neural-networks.md").unlink()
    course = load_course(fixture_course, lazy=True, cache_dir=cache)
    keys = {f"{RenderCache(cache).key(les.body.source)}.json" for les in course.lessons}
    # the removed lesson's entry and the edited one's old entry are gone; nothing else is
    assert entries(cache) == keys & before
    assert len(entries(cache)) == 2
    assert all(path.exists() for path in foreign)
    course.get("learning-rates").body.rendered()  # its new entry arrives on first use
    assert entries(cache) == keys


def test_temporary_files_a_crash_left_are_pruned_once_a_minute_old(fixture_course, tmp_path):
    cache = tmp_path / "cache"
    load_course(fixture_course, cache_dir=cache)
    key = next(iter(entries(cache)))[:64]
    # what put() writes before its rename: .<key>.<pid>.<thread>.tmp
    stale = [cache / f".{key}.4242.139872.tmp", cache / f".{'e' * 64}.7.8.tmp"]
    fresh = cache / f".{key}.4243.139873.tmp"  # perhaps being written right now
    not_ours = [cache / ".notes.1.2.tmp", cache / f".{key}.tmp"]
    for path in [*stale, fresh, *not_ours]:
        path.write_text("{half an entr")
    an_hour_ago = time.time() - 3600
    for path in [*stale, *not_ours]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    load_course(fixture_course, lazy=True, cache_dir=cache)
    assert [path.exists() for path in stale] == [False, False]
    assert fresh.exists() and all(path.exists() for path in not_ours)
    assert len(entries(cache)) == 4  # the entries in use stay


class _Trap:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "loaded"))


def test_pickles_left_in_the_cache_folder_are_deleted_and_never_loaded(fixture_course, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    marker = tmp_path / "pickle-was-loaded"
    legacy = cache / f"{'f' * 64}.pickle"
    legacy.write_bytes(pickle.dumps(_Trap(marker)))
    course = load_course(fixture_course, cache_dir=cache)
    assert len(course.lessons) == 4
    assert not legacy.exists()
    assert not marker.exists()
