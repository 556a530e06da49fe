"""Content fuzzing: arbitrary bytes and malformed front matter never make the loader raise
anything but a ContentError, and a course with such a file still loads (the file becomes a
Problem with its path)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from app.content import load_course
from app.content.loader import KNOWN_FIELDS, ContentError, load_lesson

from .conftest import SEED

SEED_TEXT = (SEED / "dl-intro-neural-networks.md").read_text(encoding="utf-8")
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def check(folder: Path, raw: bytes) -> None:
    """The one contract: load_lesson returns or raises ContentError; load_course never raises
    and either serves the file or reports it."""
    path = folder / "lesson.md"
    path.write_bytes(raw)
    try:
        lesson, warnings = load_lesson(path, "lesson.md")
    except ContentError as exc:
        assert exc.message
        served = False
    else:
        assert lesson.id and lesson.title and lesson.section
        assert all(w.severity == "warning" for w in warnings)
        served = True
    course = load_course(folder)
    assert [le.path for le in course.lessons] == (["lesson.md"] if served else [])
    assert served or any(p.path == "lesson.md" and p.severity == "error" for p in course.problems)


# --- arbitrary bytes --------------------------------------------------------------------------


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_are_a_content_error_or_a_lesson(folder, raw):
    check(folder, raw)


@FUZZ
@given(
    cut=st.integers(0, len(SEED_TEXT.encode())),
    junk=st.binary(min_size=1, max_size=40),
    where=st.integers(0, len(SEED_TEXT.encode())),
)
def test_the_seed_lesson_cut_short_or_spliced_with_junk_bytes_never_crashes(
    folder, cut, junk, where
):
    raw = SEED_TEXT.encode()
    check(folder, raw[:cut])
    check(folder, raw[:where] + junk + raw[where:])


# --- malformed front matter --------------------------------------------------------------------

keys = st.sampled_from([*KNOWN_FIELDS, "ID", "next_lesson_id", "", "? complex", "- item", "<<"])
scalars = st.one_of(
    st.sampled_from(
        ["", "~", "null", "true", "no", "0", "-1", "1e309", ".nan", "0x1F", "55 mins",
         "1 hr 10 mins", "1h 30m", "90 minutes", "two hours", "2024-01-01", "12:30:00",
         "'quoted'", '"unterminated', "[1, 2", "{a: 1}", "&anchor x", "*anchor", "*missing",
         "!!python/object:os.system", "!!binary aGk=", "!custom tag", "|", ">", "- a", ": :",
         "x\ty", "a #comment", "%TAG", "dl-intro", "Ünïcödé ∂Σ", "\u2028", "\x85"]
    ),
    st.text(max_size=20),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)  # fmt: skip
lines = st.one_of(
    st.tuples(keys, scalars).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    st.tuples(keys, st.lists(scalars, max_size=3)).map(
        lambda kv: f"{kv[0]}:\n" + "".join(f"  - {v}\n" for v in kv[1]).rstrip("\n")
    ),
    st.tuples(keys, keys, scalars).map(lambda kv: f"{kv[0]}:\n  {kv[1]}: {kv[2]}"),
    st.sampled_from(["---", "...", "\t- tab", "  indented: wrong", "key", "[", "{", "&a {}"]),
    st.text(max_size=30),
)
valid_fields = st.fixed_dictionaries(
    # The four required fields are always written and usually valid, so the fuzzer reaches
    # both outcomes: a served lesson and a content error.
    {
        "id": st.sampled_from(["id: fuzzed"] * 4 + ["id: Bad Id", "id: 7", "id:"]),
        "title": st.sampled_from(["title: Fuzzed"] * 4 + ["title: [a]", "title:"]),
        "section": st.sampled_from(["section: basics"] * 4 + ["section: 3", "section: {a: b}"]),
        "duration": st.sampled_from(["duration: 5 mins"] * 4 + ["duration: soon", "duration: -3"]),
    },
).map(lambda fields: list(fields.values()))
bodies = st.one_of(
    st.just(""),
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            ["## Knowledge Check", "## knowledge check", "1. Question?", "2) Another",
             "   - [x] right", "   - [X] Right too", "   - [ ] wrong", "   - plain option",
             "   > why", "> orphan explanation", "```", "```python", "# Title", "### Deeper",
             "<script>alert(1)</script>", "<iframe src=x>", "[link](javascript:alert(1))",
             "| a | b |", "| --- | --- |", "", "    indented code", "- [x] [x] twice",
             "   = 0.5 +- 2%", "   = 3", "   = x", "   1. an item", "   2. another item",
             "   ```train", "   epochs: 3", "   hidden_layers: [2]", "   ```", "     > feedback",
             "1. Pick all (select all that apply)"]
        ),
        max_size=25,
    ).map("\n".join),
)  # fmt: skip


front_matter_files = st.builds(
    lambda fields, junk, order, closing, body, newline: _compose(
        fields, junk, order, closing, body, newline
    ),
    fields=valid_fields,
    junk=st.lists(lines, max_size=8),
    order=st.randoms(use_true_random=False),
    closing=st.sampled_from(["---", "--- ", "----", "...", ""]),
    body=bodies,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)


def _compose(fields, junk, order, closing, body, newline) -> bytes:
    meta = fields + junk
    order.shuffle(meta)
    return "\n".join(["---", *meta, closing, body]).replace("\n", newline).encode()


@FUZZ
@given(raw=front_matter_files)
def test_malformed_front_matter_is_a_content_error_or_a_lesson(folder, raw):
    check(folder, raw)


def _serves(folder: Path, raw: bytes) -> bool:
    path = folder / "probe.md"
    path.write_bytes(raw)
    try:
        load_lesson(path, "probe.md")
    except ContentError:
        return False
    return True


@pytest.mark.parametrize("outcome", [True, False], ids=["a lesson", "a content error"])
def test_the_front_matter_fuzzer_reaches_both_outcomes(folder, outcome):
    found = find(
        front_matter_files,
        lambda raw: _serves(folder, raw) is outcome,
        settings=settings(max_examples=500, database=None, derandomize=True, deadline=None),
    )
    assert _serves(folder, found) is outcome


@pytest.mark.parametrize("key", ["? [a, b]\n: value", "{a: 1}: value", "[1]: value"])
def test_a_list_or_mapping_as_a_front_matter_key_is_a_content_error_with_its_line(folder, key):
    path = folder / "lesson.md"
    path.write_text(f"---\nid: ok\n{key}\n---\nBody\n", encoding="utf-8")
    with pytest.raises(ContentError, match="a list or mapping cannot be a key") as error:
        load_lesson(path, "lesson.md")
    assert error.value.line == 3


@pytest.mark.parametrize(
    "value", ["2024-13-01", "!!int", "!!float", "!!bool", "!!timestamp 2024-02-30"]
)
def test_a_value_yaml_parses_but_cannot_build_is_a_content_error_not_a_crash(folder, value):
    raw = SEED_TEXT.replace("order: 1\n", f"order: 1\ncreated: {value}\n").encode()
    path = folder / "lesson.md"
    path.write_bytes(raw)
    with pytest.raises(ContentError) as caught:
        load_lesson(path, "lesson.md")
    assert caught.value.message.startswith("invalid value in front matter")
    check(folder, raw)
