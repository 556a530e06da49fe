"""The route table: status codes and content types for every public address."""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from .conftest import ROOT

SEED = "dl-intro-neural-networks"


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/", 200, "text/html"),
        (f"/lessons/{SEED}", 200, "text/html"),
        ("/lessons/no-such-lesson", 404, "text/html"),
        ("/lessons/..%2F..%2Fetc%2Fpasswd", 404, "text/html"),
        ("/nowhere", 404, "text/html"),
        ("/api/lessons", 200, "application/json"),
        (f"/api/lessons/{SEED}", 200, "application/json"),
        ("/api/lessons/no-such-lesson", 404, "application/json"),
        ("/api/lessons/" + "x" * 5000, 404, "application/json"),
        ("/api/lessons/%2e%2e", 404, "application/json"),
        ("/api/lessons/NOT_VALID!", 404, "application/json"),
        ("/healthz", 200, "application/json"),
        ("/openapi.json", 200, "application/json"),
        ("/docs", 200, "text/html"),
        ("/static/css/site.css", 200, "text/css"),
        ("/static/css/pygments.css", 200, "text/css"),
        ("/static/vendor/swagger-ui/swagger-ui-bundle.js", 200, "text/javascript"),
        ("/static/nope.css", 404, "text/html"),
    ],
)
def test_route_table(client: TestClient, path, status, content_type):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)


def test_healthz_says_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_lesson_is_a_json_404_with_a_detail(client):
    assert client.get("/api/lessons/nope").json() == {"detail": "no lesson with id 'nope'"}


def test_lesson_list_has_the_documented_fields_in_course_order(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        lessons = client.get("/api/lessons").json()
    assert [les["id"] for les in lessons] == [
        SEED,
        "gradient-descent",
        "learning-rates",
        "regularisation",
    ]
    assert lessons[0] == {
        "id": SEED,
        "title": "Introduction to Neural Networks",
        "type": "lesson",
        "section": "fundamentals",
        "order": 1,
        "duration_minutes": 55,
        "next_lesson_id": "dl-building-networks",
        "question_count": 5,
        "url": f"/lessons/{SEED}",
    }


def test_lesson_detail_adds_the_body_html_without_the_quiz_and_the_toc(client):
    lesson = client.get(f"/api/lessons/{SEED}").json()
    assert '<h2 id="what-is-a-neural-network">' in lesson["html"]
    assert "Knowledge Check" not in lesson["html"]
    assert lesson["toc"][0] == {
        "level": 2,
        "id": "what-is-a-neural-network",
        "title": "What is a Neural Network?",
    }
    assert {"html", "toc", "question_count"} <= lesson.keys()


def test_every_response_carries_the_security_headers(client):
    for path in ("/", "/api/lessons", "/nowhere", "/docs"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_pages_load_nothing_from_outside_and_use_no_inline_script(client):
    for path in ("/", f"/lessons/{SEED}", "/docs", "/nowhere"):
        page = client.get(path).text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page), path


def test_the_course_page_groups_lessons_by_section_with_duration_and_question_count(
    make_app, fixture_course
):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        page = client.get("/").text
    sections = re.findall(r'<h2 id="section-\d+">([^<]+)</h2>', page)
    assert sections == ["Fundamentals", "Training", "Advanced"]
    assert "Gradient Descent in Practice" in page and "70 min" in page and "3 questions" in page


def test_the_lesson_page_has_title_toc_body_and_a_next_link_to_the_next_lesson(client):
    page = client.get(f"/lessons/{SEED}").text
    assert '<h1 id="lesson-title">Introduction to Neural Networks</h1>' in page
    assert 'href="#backpropagation-how-networks-learn"' in page
    assert 'href="/lessons/dl-building-networks" rel="next"' in page
    assert "Coming soon" not in page
    assert '<span class="k">def</span>' in page


def test_a_next_lesson_id_naming_no_lesson_shows_coming_soon(make_app, content_dir):
    shutil.copy(ROOT / "content" / f"{SEED}.md", content_dir / f"{SEED}.md")  # the seed alone
    with TestClient(make_app(content_dir=content_dir)) as client:
        page = client.get(f"/lessons/{SEED}").text
    assert "Coming soon" in page
    assert 'href="/lessons/dl-building-networks"' not in page


def test_next_follows_next_lesson_id_and_previous_follows_course_order(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        first = client.get("/lessons/gradient-descent").text
        middle = client.get("/lessons/learning-rates").text
    assert 'href="/lessons/learning-rates" rel="next"' in first
    assert f'href="/lessons/{SEED}" rel="prev"' in first
    assert 'href="/lessons/regularisation" rel="next"' in middle


def test_a_course_with_broken_files_still_serves_the_good_ones(make_app, content_dir):
    (content_dir / "broken.md").write_text("---\nid: [\n---\n")
    (content_dir / "ok.md").write_text(
        "---\nid: ok\ntitle: OK\nduration: 5 min\nsection: s\n---\nHello\n"
    )
    with TestClient(make_app(content_dir=content_dir)) as client:
        assert [les["id"] for les in client.get("/api/lessons").json()] == ["ok"]
        assert client.get("/lessons/ok").status_code == 200


def test_the_styled_404_page_links_back_to_the_course(client):
    response = client.get("/lessons/missing")
    assert response.status_code == 404
    assert "Page not found" in response.text and 'href="/"' in response.text


def test_openapi_documents_the_lessons_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/lessons", "/api/lessons/{lesson_id}", "/healthz"} <= paths.keys()
    assert "404" in paths["/api/lessons/{lesson_id}"]["get"]["responses"]


def test_train_this_network_opens_the_playground_with_the_lessons_network(client):
    page = client.get(f"/lessons/{SEED}").text
    assert 'href="/playground?dataset=digits&amp;hidden_layers=128,64"' in page


@pytest.mark.parametrize(
    ("path", "sets_cookie"),
    [
        ("/healthz", False),
        ("/api/lessons", False),
        ("/static/css/site.css", False),
        ("/", False),
        (f"/lessons/{SEED}", True),
        (f"/api/lessons/{SEED}/quiz", True),
    ],
)
def test_only_responses_that_use_the_visitor_cookie_set_it(make_app, path, sets_cookie):
    with TestClient(make_app()) as fresh:
        response = fresh.get(path)
    assert response.status_code == 200
    assert ("bp_visitor=" in response.headers.get("set-cookie", "")) is sets_cookie


def test_a_returning_visitor_keeps_their_cookie_and_is_not_issued_another(client):
    first = client.get(f"/lessons/{SEED}")
    assert "bp_visitor=" in first.headers["set-cookie"]
    again = client.get(f"/lessons/{SEED}")
    assert "set-cookie" not in again.headers
    assert again.text == first.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"bp_visitor=abc.def", "abc.def"),
        (b"a=1; bp_visitor=abc.def; b=2", "abc.def"),
        (b'a=1;bp_visitor="abc.def"', "abc.def"),
        (b"xbp_visitor=nope; a=1", None),
        (b"", None),
    ],
)
def test_the_visitor_cookie_is_read_from_any_position_in_the_header(header, expected):
    from app.web.security import read_cookie

    assert read_cookie({"headers": [(b"cookie", header)]}, "bp_visitor") == expected
