"""POST /train's contract and the /playground page, through the app (training in real workers)."""

from __future__ import annotations

import json

import pytest

SMALL = {"dataset": "xor", "hidden_layers": [8], "epochs": 3}


def strict_json(text: str):
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_a_small_run_answers_every_documented_field(client):
    response = client.post("/train", json=SMALL)
    assert response.status_code == 200
    body = strict_json(response.text)
    assert body["status"] == "completed" and len(body["run_id"]) == 32
    assert body["config"] == {
        "dataset": "xor",
        "hidden_layers": [8],
        "activation": "relu",
        "epochs": 3,
        "learning_rate": 0.1,
        "batch_size": 64,
        "momentum": 0.0,
        "init": "he",
        "seed": 0,
        "noise": 0.1,
        "layer_sizes": [2, 8, 2],
    }
    assert [row["epoch"] for row in body["history"]] == [1, 2, 3]
    assert set(body["history"][0]) == {"epoch", "loss", "train_accuracy", "test_accuracy"}
    assert body["test_accuracy"] == body["history"][-1]["test_accuracy"]
    assert body["duration_seconds"] > 0 and body["samples_per_second"] > 0
    assert sum(map(sum, body["confusion_matrix"])) == 200
    assert set(body["decision_boundary"]) == {"x_range", "y_range", "grid", "points"}


def test_an_empty_body_trains_the_lessons_network_on_digits(client):
    body = client.post("/train", headers={"Content-Type": "application/json"}).json()
    assert body["config"]["layer_sizes"] == [64, 128, 64, 10]
    assert body["config"]["noise"] is None and "decision_boundary" not in body
    assert len(body["history"]) == 30


def test_a_diverging_run_is_still_a_200_with_strict_json(client):
    response = client.post(
        "/train", json={"learning_rate": 100, "epochs": 20, "init": "xavier", "batch_size": None}
    )
    assert response.status_code == 200
    body = strict_json(response.text)
    assert body["status"] == "diverged" and body["history"][-1]["loss"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hidden_layers": []}, "hidden_layers"),
        ({"hidden_layers": [0]}, "hidden_layers.0"),
        ({"hidden_layers": [8, 1025]}, "hidden_layers.1"),
        ({"hidden_layers": [4] * 9}, "hidden_layers"),
        ({"hidden_layers": "128,64"}, "hidden_layers"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1001}, "epochs"),
        ({"epochs": "many"}, "epochs"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": 100.5}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"momentum": 1}, "momentum"),
        ({"seed": -1}, "seed"),
        ({"dataset": "mnist"}, "dataset"),
        ({"activation": "gelu"}, "activation"),
        ({"init": "zeros"}, "init"),
        ({"dataset": "moons", "noise": 1.5}, "noise"),
        ({"noise": 0.1}, "noise"),
        ({"optimizer": "adam"}, "optimizer"),
        # lax pydantic reads true/false as 1 and 0: a "learning rate" of true trained at 1
        ({"learning_rate": True}, "learning_rate"),
        ({"epochs": True}, "epochs"),
        ({"hidden_layers": [True, 8]}, "hidden_layers.0"),
        ({"seed": False}, "seed"),
        ({"momentum": False}, "momentum"),
        ({"batch_size": True}, "batch_size"),
        ({"dataset": "moons", "noise": False}, "noise"),
    ],
)
def test_out_of_bounds_fields_are_422_naming_the_field(client, body, field):
    response = client.post("/train", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.parametrize(
    "raw", ['{"learning_rate": NaN}', '{"learning_rate": Infinity}', "[1, 2]", "{not json"]
)
def test_malformed_bodies_are_422_not_500(client, raw):
    response = client.post("/train", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_too_much_work_is_422_before_anything_trains(client):
    response = client.post("/train", json={"hidden_layers": [1024] * 8, "epochs": 1000})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("too much work")


def test_the_work_budget_is_a_setting(make_app):
    from fastapi.testclient import TestClient

    with TestClient(make_app(train_work_budget=1e6)) as small:
        assert small.post("/train", json=SMALL).status_code == 422


def test_the_playground_opens_on_the_lessons_network(client):
    page = client.get("/playground")
    assert page.status_code == 200
    html = page.text
    assert 'name="hidden_layers"' in html and 'value="128,64"' in html
    assert '<option value="digits" selected>' in html
    assert "/static/js/playground.js" in html and "/static/vendor/uplot/uPlot.iife.min.js" in html
    assert "<script>" not in html and " style=" not in html  # the CSP allows neither


def test_the_playground_prefills_the_form_from_its_query(client):
    page = client.get(
        "/playground?dataset=moons&hidden_layers=12,6&activation=tanh&batch_size=full"
        "&learning_rate=0.5&epochs=80&noise=0.2&momentum=0.9&init=xavier&seed=3"
    )
    html = page.text
    assert '<option value="moons" selected>' in html and '<option value="tanh" selected>' in html
    for value in ('value="12,6"', 'value="full"', 'value="0.5"', 'value="80"', 'value="0.2"'):
        assert value in html
    bad = client.get("/playground?epochs=-4&hidden_layers=lots")
    assert bad.status_code == 200 and "were reset" in bad.text and 'value="30"' in bad.text
