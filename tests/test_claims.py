"""```claim blocks: validated at load with file:line errors, shown as a box on the lesson page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.content import load_course
from app.content.claims import SLOT
from app.training.figures import RunStore, measure, run_key, run_validator, runs_cache_dir
from app.training.runner import DEFAULTS

FRONT = "---\nid: {id}\ntitle: Claims\nduration: 5 min\nsection: s\n---\n"
VALIDATE = run_validator(1.0e11)
XOR = {"dataset": "xor", "hidden_layers": [8], "learning_rate": 0.5, "epochs": 8}


def lesson(folder: Path, body: str, name: str = "c") -> Path:
    path = folder / f"{name}.md"
    path.write_text(FRONT.format(id=name) + body)
    return path


def claim(run: str, expect: str, *extra: str) -> str:
    return "\n".join(["```claim", f"run: {run}", f"expect: {expect}", *extra, "```", ""])


def only_error(folder: Path) -> str:
    course = load_course(folder, validate_run=VALIDATE)
    (problem,) = course.problems
    assert course.lessons == []
    return problem.format()


def test_a_claim_is_read_with_its_line_run_and_expectation(content_dir):
    lesson(content_dir, "Intro.\n\n" + claim("{dataset: xor, epochs: 8}", "test_accuracy > 0.8"))
    course = load_course(content_dir, validate_run=VALIDATE)
    assert course.problems == []
    (found,) = course.get("c").claims
    assert found.line == 9  # the opening fence: 6 lines of front matter, "Intro.", a blank line
    assert found.run == {"dataset": "xor", "epochs": 8}
    # every /train default filled in; a built-in set's configuration carries no `data` key
    built_in = {key: value for key, value in DEFAULTS.items() if key != "data"}
    assert found.config == {**built_in, "dataset": "xor", "epochs": 8}
    assert found.expect.text == "test_accuracy > 0.8"
    html = course.get("c").html
    assert html.count(SLOT) == 1
    assert "expect" not in html and "claim" not in html.replace(SLOT, "")


def test_claims_after_a_knowledge_check_keep_their_file_lines(content_dir):
    body = (
        claim("{dataset: xor}", "test_accuracy > 0.5")
        + "\n## Knowledge Check\n\n1. Q?\n   - [x] a\n   - [ ] b\n\n## After\n\n"
        + claim("{dataset: circles}", "test_acc > 0.5")
    )
    lesson(content_dir, body)
    assert only_error(content_dir) == (
        "c.md:22: error: claim expectation: unknown metric 'test_acc' (at column 1) "
        "(hint: did you mean test_accuracy?)"
    )
    lesson(content_dir, body.replace("test_acc >", "test_accuracy >"))
    course = load_course(content_dir, validate_run=VALIDATE)
    assert [c.line for c in course.get("c").claims] == [7, 20]
    assert course.get("c").quiz.questions[0].line == 14


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "```claim\nrun: {dataset: xor\nexpect: test_accuracy > 0.5\n```\n",
            "c.md:9: error: invalid YAML in claim block: expected ',' or '}', but got ':'",
        ),
        (
            claim("{dataset: xor, lr: 5}", "test_accuracy > 0.5"),
            "c.md:8: error: claim run: unknown /train field 'lr'",
        ),
        (
            claim("{hidden_layers: [0]}", "test_accuracy > 0.5"),
            "c.md:8: error: claim run: hidden_layers.0: Input should be greater than or equal to 1",
        ),
        (
            claim("{dataset: digits, noise: 0.2}", "test_accuracy > 0.5"),
            "c.md:8: error: claim run: noise: only the 2-D datasets",
        ),
        (
            claim("{hidden_layers: [1024, 1024, 1024], epochs: 1000}", "test_accuracy > 0.5"),
            "c.md:8: error: claim run: too much work: about",
        ),
        (
            claim("[xor]", "test_accuracy > 0.5"),
            "c.md:8: error: claim 'run' must map /train fields to values",
        ),
        (
            claim("{dataset: xor}", "test_accuracy >= 90"),
            "c.md:9: error: claim expectation: test_accuracy is a fraction between 0 and 1, "
            "not 90 (at column 18) (hint: write 0.9 for 90%)",
        ),
        (
            claim("{dataset: xor}", "0.5"),
            "c.md:9: error: claim expectation: a goal is text such as 'test_accuracy >= 0.9'",
        ),
        (
            "```claim\nrun: {dataset: xor}\n```\n",
            "c.md:7: error: claim block has no 'expect'",
        ),
        (
            claim("{dataset: xor}", "test_accuracy > 0.5", "say: it learns"),
            "c.md:10: error: unknown key 'say' in claim block",
        ),
        (
            claim("{dataset: xor}", "test_accuracy > 0.5", "text: [1, 2]"),
            "c.md:10: error: claim 'text' must be a sentence",
        ),
        ("```claim\n- run\n```\n", "c.md:7: error: claim block must be a YAML mapping"),
        ("```claim\n```\n", "c.md:7: error: claim block must be a YAML mapping"),
        (
            claim("{dataset: xor}", "test_accuracy > 0.5").replace("run:", "run:\nrun:", 1),
            "c.md:9: error: invalid YAML in claim block: duplicate key 'run'",
        ),
        (
            claim("{dataset: xor}", 'test_accuracy > 0.5\ntext: "a \\0 b"'),
            "c.md:10: error: control character U+0000",
        ),
        (
            "## Knowledge Check\n\n1. Q?\n   - [x] a\n   - [ ] b\n\n"
            + claim("{dataset: xor}", "test_accuracy > 0.5"),
            "c.md:13: error: claim block inside the Knowledge Check section",
        ),
        (
            'Text.\n\n<div class="backprop-claim-slot"></div>\n',
            "c.md:9: error: 'backprop-claim-slot' is reserved for claim boxes",
        ),
    ],
)
def test_a_bad_claim_is_an_error_at_its_file_and_line(content_dir, body, expected):
    lesson(content_dir, body)
    assert only_error(content_dir).startswith(expected)


def test_without_a_validator_only_the_shape_of_run_is_checked(content_dir):
    lesson(content_dir, claim("{dataset: xor, lr: 5}", "test_accuracy > 0.5"))
    (found,) = load_course(content_dir).get("c").claims
    assert found.config == found.run == {"dataset": "xor", "lr": 5}


def test_a_claim_fence_inside_other_code_is_just_code(content_dir):
    body = "````markdown\n" + claim("{dataset: xor}", "test_acc") + "````\n\n~~~claim\n"
    body += "run: {dataset: circles}\nexpect: status == completed\n~~~\n"
    lesson(content_dir, body)
    course = load_course(content_dir, validate_run=VALIDATE)
    assert course.problems == []
    (found,) = course.get("c").claims
    assert found.run == {"dataset": "circles"}
    assert "test_acc" in course.get("c").html  # shown as the code it is


# The page


@pytest.fixture
def claim_site(make_app, content_dir, tmp_path):
    """A site with one lesson holding one xor claim; yields (client, store)."""
    lesson(
        content_dir,
        "Intro.\n\n"
        + claim(
            "{dataset: xor, hidden_layers: [8], learning_rate: 0.5, epochs: 8}",
            "test_accuracy >= 0.9 and epochs_to(0.9) <= 8",
            "text: Eight units learn **XOR**.",
        ),
    )
    app = make_app(content_dir=content_dir)
    store = RunStore(runs_cache_dir(tmp_path / "data"))
    with TestClient(app) as client:
        yield client, store


def test_an_unverified_claim_says_so_and_links_to_the_playground(claim_site):
    client, _ = claim_site
    page = client.get("/lessons/c")
    assert page.status_code == 200
    assert SLOT not in page.text
    assert '<div class="claim claim-unverified" role="note"' in page.text
    assert "Not yet verified: no run of this configuration has been recorded." in page.text
    assert '<p class="claim-text">Eight units learn <strong>XOR</strong>.</p>' in page.text
    assert "<dt>hidden layers</dt><dd>8</dd>" in page.text
    assert "<dt>learning rate</dt><dd>0.5</dd>" in page.text
    assert "<code>test_accuracy &gt;= 0.9 and epochs_to(0.9) &lt;= 8</code>" in page.text
    assert (
        'href="/playground?dataset=xor&amp;hidden_layers=8&amp;activation=relu&amp;epochs=8'
        '&amp;learning_rate=0.5&amp;batch_size=64&amp;momentum=0&amp;init=he&amp;seed=0"'
    ) in page.text
    assert "Measured" not in page.text


def test_a_verified_claim_shows_the_measured_figures_and_when(claim_site):
    client, store = claim_site
    config = VALIDATE(XOR)
    figures = measure(config)
    store.put(run_key(config), figures)
    stamp = json.loads((store.folder / f"{run_key(config)}.json").read_text())["verified_at"]
    reached = next(r["epoch"] for r in figures["history"] if r["test_accuracy"] >= 0.9)
    page = client.get("/lessons/c").text
    assert '<div class="claim claim-holds"' in page
    assert (
        f"Measured: <code>test_accuracy {figures['test_accuracy']:.4g} &gt;= 0.9</code>, "
        f"<code>epochs_to(0.9) {reached} &lt;= 8</code>; holds. "
        f'Verified <time datetime="{stamp}">{stamp[:10]}</time>.'
    ) in page
    assert "Not yet verified" not in page
    api = client.get("/api/lessons/c").json()["html"]
    assert SLOT not in api and "claim-holds" in api and "Verified" in api


def test_figures_that_miss_the_expectation_show_as_not_holding(claim_site):
    client, store = claim_site
    config = VALIDATE(XOR)
    figures = {**measure(config), "test_accuracy": 0.5}
    store.put(run_key(config), figures)
    page = client.get("/lessons/c").text
    assert '<div class="claim claim-fails"' in page
    assert "<code>test_accuracy 0.5 &lt; 0.9</code>" in page and "does not hold" in page


def test_a_damaged_figures_file_reads_as_not_yet_verified(claim_site):
    client, store = claim_site
    store.folder.mkdir(parents=True)
    path = store.folder / f"{run_key(VALIDATE(XOR))}.json"
    for damage in (b"{not json", b'{"status": "completed"}', b"[]"):
        path.write_bytes(damage)
        page = client.get("/lessons/c")
        assert page.status_code == 200
        assert "Not yet verified" in page.text


def test_claim_text_is_sanitised_on_the_page(make_app, content_dir):
    hostile = (
        "text: '<script>alert(1)</script> <img src=x onerror=alert(2)> "
        '[go](javascript:alert(3)) <b onclick="alert(4)">bold</b> **fine**\''
    )
    lesson(content_dir, claim("{dataset: xor}", "test_accuracy > 0.5", hostile))
    with TestClient(make_app(content_dir=content_dir)) as client:
        page = client.get("/lessons/c").text
        api = client.get("/api/lessons/c").json()["html"]
    for html in (page, api):
        box = html[html.index('<div class="claim ') :]
        box = box[: box.index("</div>", box.index("claim-try"))]
        assert "<script" not in box and "alert(1)" not in box
        assert "onerror" not in box and "onclick" not in box and "javascript:" not in box
        assert "<strong>fine</strong>" in box and "<b>bold</b>" in box
