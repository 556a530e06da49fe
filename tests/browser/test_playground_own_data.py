"""The playground with a learner's own points in Chromium: a CSV upload, clicked and typed points,
a run drawn over them, the network's download run as a script, the points' CSV, and Step by
keyboard with its numbers in tables."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def rings_csv(n: int = 80) -> str:
    import math

    lines = ["x1,x2,label"]
    for i in range(n):
        outer = i % 2 == 1
        angle = i * 2.399  # the golden angle: spread round the circle
        radius = 2.5 if outer else 0.8
        lines.append(
            f"{radius * math.cos(angle):.4f},{radius * math.sin(angle):.4f},"
            f"{'outer ring' if outer else 'inner'}"
        )
    return "\n".join(lines) + "\n"


def choose_custom(page: Page) -> None:
    page.goto("/playground?dataset=custom&hidden_layers=8,8&epochs=80&batch_size=16")
    expect(page.locator("#own-data")).to_be_visible()
    expect(page.locator("#own-data")).to_contain_text("not in the link")


def test_an_uploaded_csv_trains_and_its_network_downloads_as_a_script_that_agrees(
    page: Page, tmp_path
):
    choose_custom(page)
    page.locator("#f-csv").set_input_files(
        files=[{"name": "rings.csv", "mimeType": "text/csv", "buffer": rings_csv().encode()}]
    )
    expect(page.locator("#own-count")).to_have_text("80 points in 2 classes.")
    expect(page.locator("#legend")).to_contain_text("outer ring: 40")
    assert "points" not in page.evaluate("location.href")  # the link holds the settings only
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#status")).to_contain_text("Done in", timeout=60_000)
    reported = page.locator("#status").text_content()
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", reported).group(1))
    assert accuracy >= 90

    download = page.get_by_role("link", name="Download network (.zip)")
    expect(download).to_be_visible()
    with page.expect_download() as info:
        download.click()
    archive = info.value.path().read_bytes()
    zipfile.ZipFile(io.BytesIO(archive)).extractall(tmp_path)
    printed = subprocess.run(
        [sys.executable, "-I", "network.py"], cwd=tmp_path, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    script_accuracy = float(re.search(r"test accuracy: (\S+)", printed).group(1))
    assert f"{script_accuracy * 100:.1f}" == f"{accuracy:.1f}"


def test_a_bad_csv_is_refused_naming_its_line(page: Page):
    choose_custom(page)
    bad = "x1,x2,label\n1,2,a\n3,four,b\n"
    page.locator("#f-csv").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}]
    )
    expect(page.locator("#own-error")).to_have_text(
        'bad.csv: line 3: x2 is "four", not a finite number'
    )
    expect(page.locator("#own-count")).to_have_text("No points yet.")


def test_clicked_and_typed_points_train_and_download_as_csv(page: Page):
    choose_custom(page)
    canvas = page.locator("#boundary")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    page.locator("#f-point-class").fill("left")
    for k in range(8):
        canvas.click(position={"x": box["width"] * 0.2, "y": box["height"] * (0.1 + 0.1 * k)})
    page.locator("#f-point-class").fill("right")
    for k in range(7):
        canvas.click(position={"x": box["width"] * 0.8, "y": box["height"] * (0.1 + 0.1 * k)})
    # the last point typed, with the keyboard only
    page.locator("#f-point-x1").fill("1.2")
    page.locator("#f-point-x2").fill("0")
    page.locator("#f-point-x2").press("Enter")  # adds the point, does not start training
    expect(page.locator("#own-count")).to_have_text("16 points in 2 classes.")
    expect(page.locator("#status")).to_have_text("Ready: press Start training.")

    with page.expect_download() as info:
        page.get_by_role("button", name="Download points (CSV)").click()
    rows = info.value.path().read_text().splitlines()
    assert rows[0] == "x1,x2,label" and len(rows) == 17 and rows[-1] == "1.2,0,right"
    assert all(row.endswith(",left") for row in rows[1:9])

    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#status")).to_contain_text("Done in", timeout=60_000)
    expect(page.locator("#confusion tbody tr")).to_have_count(2)
    expect(page.locator("#confusion thead th")).to_have_text(["", "left", "right"])
    # the left of the plot is predicted "left" (class 0): its tint is class 0's colour
    tint = canvas.evaluate(
        """c => { const d = c.getContext('2d').getImageData(5, c.height / 2, 1, 1).data;
        return [d[0], d[1], d[2]]; }"""
    )
    assert tint[2] > tint[0]  # blue-ish (class 0), not orange (class 1)


def test_step_by_step_works_with_the_keyboard_and_shows_its_numbers_in_tables(page: Page):
    page.goto("/playground?dataset=xor&hidden_layers=3&batch_size=20&learning_rate=0.5")
    step = page.get_by_role("button", name="Step", exact=True)
    step.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#step-summary")).to_contain_text(
        "Step 1, epoch 1: trained on training rows 1 to 20"
    )
    assert page.locator("#step-summary").get_attribute("aria-live") == "polite"
    tables = page.locator("#step-layers table")
    # the batch's inputs, then per layer its activations and its parameters
    expect(tables).to_have_count(5)
    weights = page.locator("#step-layers table").nth(2)
    expect(weights.locator("caption")).to_contain_text("Layer 1 weights and biases")
    headers = weights.locator("thead th").all_text_contents()
    assert headers == ["Parameter", "Before", "Gradient ∂L/∂w", "Update −η·∂L/∂w"]
    expect(weights.locator("tbody tr")).to_have_count(2 * 3 + 3)
    first = weights.locator("tbody tr").first
    expect(first.locator("th")).to_have_text("w input 1 → unit 1")
    before, gradient, update = (float(t) for t in first.locator("td").all_text_contents())
    assert update == pytest.approx(-0.5 * gradient, rel=1e-2, abs=2e-4)
    region = page.locator("#step-layers .pg-table-wrap").first
    assert region.get_attribute("role") == "region" and region.get_attribute("tabindex") == "0"

    page.keyboard.press("Space")  # focus stayed on Step: the next mini-batch
    expect(page.locator("#step-summary")).to_contain_text(
        "Step 2, epoch 1: trained on training rows 21 to 40"
    )
    after = float(weights.locator("tbody tr").first.locator("td").first.text_content())
    assert after == pytest.approx(before + update, abs=2e-4)
    expect(page.locator("#boundary-card")).to_be_visible()

    # a network too large to show is refused before asking
    page.locator("#f-hidden").fill("16")
    expect(step).to_be_disabled()
    page.locator("#f-hidden").fill("3")
    expect(step).to_be_enabled()
    expect(page.get_by_role("button", name="Reset steps")).to_be_disabled()  # a new network
