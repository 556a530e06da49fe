"""Own data on /train: every refusal is a 422 naming its row, and good data trains and is drawn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.training.custom import MAX_ROWS


def rings(n: int = 120, seed: int = 0, scale: float = 1.0) -> tuple[list, list]:
    """Two rings in the learner's own units: "inner" within radius 1, "outer" beyond 2."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    outer = np.arange(n) % 2 == 1
    radius = np.where(outer, 2.5, 0.8) + rng.normal(0, 0.1, n)
    x = np.column_stack([np.cos(angle), np.sin(angle)]) * radius[:, None] * scale + 500
    return x.tolist(), ["outer" if o else "inner" for o in outer]


X, Y = rings()
GOOD = {"x": X[:12], "y": ["a", "b", "c"] * 4}


def train_custom(client, data, **fields):
    return client.post("/train", json={"dataset": "custom", "data": data, **fields})


KEEP = object()


def with_row(row_index: int, x=KEEP, y=KEEP) -> dict:
    data = {"x": [list(r) for r in GOOD["x"]], "y": list(GOOD["y"])}
    if x is not KEEP:
        data["x"][row_index] = x
    if y is not KEEP:
        data["y"][row_index] = y
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (with_row(4, x=[1.0, "abc"]), "row 5: x2 is 'abc', not a number"),
        (with_row(0, x=["1,5", 2]), "row 1: x1 is '1,5', not a number"),
        (with_row(2, x=[True, 2]), "row 3: x1 is True, not a number"),
        (with_row(6, x=[1.0]), "row 7: x is [1.0]; each row of x is a pair [x1, x2]"),
        (with_row(3, x=[1, 2, 3]), "row 4: x is [1, 2, 3]"),
        (with_row(7, x=["nan", 1]), "row 8: x1 is 'nan'; every value must be a finite number"),
        (with_row(8, x=[1, "-inf"]), "row 9: x2 is '-inf'; every value must be a finite number"),
        (with_row(9, x=[1e300, 1]), "row 10: x1 is 1e+300; values must lie within ±1e+06"),
        (with_row(10, y=""), "row 11: the label is empty"),
        (with_row(11, y=None), "row 12: the label is None"),
        (with_row(1, y="x" * 41), "row 2: the label is longer than 40 characters"),
        # NumPy's str arrays drop a trailing NUL: weights.npz would name a class data.csv lacks
        (with_row(5, y="a\x00"), "row 6: the label holds a control character (U+0000)"),
        (with_row(5, y="a\x1bb"), "row 6: the label holds a control character (U+001B)"),
        ({"x": GOOD["x"], "y": ["same"] * 12}, "one class only ('same')"),
        ({"x": GOOD["x"], "y": [str(k) for k in range(11)] + ["0"]}, "11 classes; at most 10"),
        ({"x": GOOD["x"], "y": GOOD["y"][:-1]}, "x has 12 rows but y has 11 labels"),
        ({"x": [[0, 0]] * 2001, "y": ["a", "b"] * 1000 + ["a"]}, "2,001 rows; at most 2,000"),
        ({"x": GOOD["x"][:9], "y": GOOD["y"][:9]}, "9 rows; at least 10 are needed"),
        (
            {"x": GOOD["x"][:10], "y": list("aabbccddee")},
            "every class has fewer than 3 rows",
        ),
        ({"x": GOOD["x"]}, "give the points as x and y (or as csv)"),
        ({"csv": "1,2,a\n", "x": GOOD["x"], "y": GOOD["y"]}, "give either csv or x and y"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_json_data_is_a_422_that_names_the_row(client, data, expected):
    response = train_custom(client, data, epochs=1)
    assert response.status_code == 422, response.text[:300]
    assert expected in response.json()["detail"]


CSV_GOOD = "x1,x2,label\n" + "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(12))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CSV_GOOD.replace("4,1,a", "4,one,a"), "line 6: x2 is 'one', not a number"),
        (CSV_GOOD.replace("7,1,b", "7,1"), "line 9: 2 cells; each line is x1,x2,label"),
        (CSV_GOOD.replace("3,0,b", "NaN,0,b"), "line 5: x1 is 'NaN'; every value must be"),
        (CSV_GOOD.replace(",b\n", ",a\n"), "one class only ('a')"),
        (CSV_GOOD.replace("5,2,b", "5,2,b\x00"), "line 7: the label holds a control character"),
        ("".join(f"{i},0,{'ab'[i % 2]}\n" for i in range(2001)), "2,001 rows; at most 2,000"),
        (CSV_GOOD.replace("x1,x2,label\n", "x1,x2,label,extra\n") + "1,2,b,9\n", "line 14"),
        # past the csv module's own field limit (131,072 characters), within MAX_CSV_CHARS
        (CSV_GOOD + "1,2," + "b" * 150_000, "line 14: a cell is longer than 131,072 characters"),
    ],
    ids=[
        "non-numeric",
        "short line",
        "nan",
        "one class",
        "nul",
        "too many rows",
        "four cells",
        "huge cell",
    ],
)
def test_bad_csv_data_is_a_422_that_names_the_line(client, text, expected):
    response = train_custom(client, {"csv": text}, epochs=1)
    assert response.status_code == 422, response.text[:300]
    assert expected in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"dataset": "custom"}, "give data with dataset custom"),
        ({"dataset": "xor", "data": GOOD}, "give data with dataset custom"),
        ({"dataset": "custom", "data": GOOD, "noise": 0.1}, "noise: only the 2-D datasets"),
        ({"dataset": "custom", "data": {"x": "1,2", "y": []}}, "data.x"),
    ],
)
def test_data_and_the_dataset_must_agree(client, body, expected):
    response = client.post("/train", json=body)
    assert response.status_code == 422
    assert expected in response.json()["detail"]


def test_a_csv_with_and_without_a_header_trains_the_same_network(client):
    headless = CSV_GOOD.split("\n", 1)[1]
    runs = [train_custom(client, {"csv": text}, epochs=5).json() for text in (CSV_GOOD, headless)]
    assert runs[0]["history"] == runs[1]["history"]
    assert runs[0]["classes"] == ["a", "b"]


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["windows", "classic-mac"])
def test_a_csv_with_any_line_ending_trains_as_one_with_newlines(client, newline):
    responses = [
        train_custom(client, {"csv": text}, epochs=5)
        for text in (CSV_GOOD, CSV_GOOD.replace("\n", newline))
    ]
    assert [r.status_code for r in responses] == [200, 200], responses[1].text[:300]
    assert responses[0].json()["history"] == responses[1].json()["history"]


def test_data_over_the_sites_body_limit_still_fits_the_training_route(client):
    x = [[1234.567890123 + i, -9876.54321098 - i] for i in range(MAX_ROWS)]
    data = {"x": x, "y": [f"class-{i % 10}-long-label" for i in range(MAX_ROWS)]}
    body = json.dumps({"dataset": "custom", "data": data, "epochs": 1})
    assert len(body) > 64 * 1024  # more than any other route takes
    response = client.post("/train", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["classes"]) == 10
    huge = json.dumps({"dataset": "custom", "data": {"csv": "1,2,a\n" * 60_000}})
    response = client.post("/train", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    # other routes keep the site's limit
    response = client.post(
        "/api/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_own_data_splits_80_20_by_seed_and_learns_its_classes(client):
    body = train_custom(
        client, {"x": X, "y": Y}, hidden_layers=[8, 8], epochs=60, batch_size=16, seed=3
    ).json()
    assert body["status"] == "completed"
    assert body["classes"] == ["inner", "outer"]  # in the order they first appear
    assert "data" not in body["config"] and body["config"]["layer_sizes"] == [2, 8, 8, 2]
    assert sum(map(sum, body["confusion_matrix"])) == 24  # 20% of each class of 60
    assert body["test_accuracy"] >= 0.9
    again = train_custom(
        client, {"x": X, "y": Y}, hidden_layers=[8, 8], epochs=60, batch_size=16, seed=3
    ).json()
    assert again["history"] == body["history"]
    other = train_custom(
        client, {"x": X, "y": Y}, hidden_layers=[8, 8], epochs=60, batch_size=16, seed=4
    ).json()
    assert other["history"] != body["history"]


def test_the_boundary_is_drawn_over_every_one_of_the_learners_points_in_their_units(client):
    body = train_custom(client, {"x": X, "y": Y}, hidden_layers=[8, 8], epochs=60).json()
    boundary = body["decision_boundary"]
    xs = np.array(X)
    assert boundary["x_range"][0] < xs[:, 0].min() and boundary["x_range"][1] > xs[:, 0].max()
    assert boundary["y_range"][0] < xs[:, 1].min() and boundary["y_range"][1] > xs[:, 1].max()
    points = sorted((round(x, 3), round(y, 3), c) for x, y, c in boundary["points"])
    given = sorted(
        (round(x, 3), round(y, 3), int(label == "outer"))
        for (x, y), label in zip(X, Y, strict=True)
    )
    assert points == given
    grid = np.array(boundary["grid"])
    assert grid.shape == (48, 48) and set(np.unique(grid)) == {0, 1}
    # the centre of the rings is inner (class 0), the corners outer (class 1)
    assert grid[24, 24] == 0 and grid[0, 0] == grid[-1, -1] == 1


def test_units_far_from_one_train_as_well_as_the_built_in_sets(client):
    # the same rings a thousand times larger: the inputs are standardised, so nothing diverges
    x, y = rings(scale=1000.0)
    body = train_custom(client, {"x": x, "y": y}, hidden_layers=[8, 8], epochs=60).json()
    assert body["status"] == "completed" and body["test_accuracy"] >= 0.9
    assert all(math.isfinite(row["loss"]) for row in body["history"])


def test_own_data_streams_like_a_built_in_set(client):
    with client.stream(
        "POST",
        "/train",
        json={"dataset": "custom", "data": GOOD, "epochs": 4},
        headers={"Accept": "text/event-stream"},
    ) as response:
        text = "".join(response.iter_text())
    assert text.count("event: epoch") == 4 and "event: boundary" in text
    result = json.loads(text.split("event: result")[1].split("data: ", 1)[1].split("\r\n")[0])
    assert result["classes"] == ["a", "b", "c"] and "params" not in result


def test_a_playground_link_to_own_data_opens_it_without_the_points(client):
    page = client.get("/playground?dataset=custom&hidden_layers=8,8&noise=0.2")
    assert page.status_code == 200
    assert 'value="custom" selected' in page.text
    assert "your own data takes no noise level" in page.text
    assert "not in the link" in page.text
