"""The bundled seed lesson is the seed as written, byte for byte, and parses into its quiz."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.content import load_course

ROOT = Path(__file__).resolve().parent.parent
SEED_FILE = ROOT / "content" / "dl-intro-neural-networks.md"
# The SHA-256 of the seed as delivered; a formatter once rewrote its code blocks unnoticed.
SEED_SHA256 = "52221f508b18cb7f8533706168a485a45a8fa272c012a398ab458d6cc98e3066"
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")

SEED_QUIZ = [
    (
        "qc473fa9d3f",
        "What is the purpose of an activation function?",
        [
            "To introduce non-linearity so the network can learn complex patterns",
            "To speed up training",
            "To reduce the number of parameters",
            "To normalize inputs",
        ],
    ),
    (
        "q3020bfb631",
        "In backpropagation, what mathematical rule is used to compute gradients?",
        ["The chain rule", "The product rule", "L'Hôpital's rule", "The quotient rule"],
    ),
    (
        "qc0e2b0e5cf",
        "What does ReLU output for negative inputs?",
        ["Zero", "The input value itself", "One", "Negative infinity"],
    ),
    (
        "qf9830a7019",
        "What is the purpose of the softmax function in the output layer?",
        [
            "To convert outputs to probabilities that sum to 1",
            "To speed up training",
            "To prevent overfitting",
            "To reduce memory usage",
        ],
    ),
    (
        "q90886527ae",
        "Why do we need multiple hidden layers in deep learning?",
        [
            "To learn hierarchical features of increasing abstraction",
            "Because one layer is too slow",
            "To use more memory",
            "To make the code more complex",
        ],
    ),
]


def test_the_bundled_seed_lesson_is_the_seed_byte_for_byte():
    assert hashlib.sha256(SEED_FILE.read_bytes()).hexdigest() == SEED_SHA256


def test_the_seed_keeps_its_own_code_style_not_a_formatters():
    text = SEED_FILE.read_text(encoding="utf-8")
    assert "    'input_size': 784,      # e.g., 28x28 image flattened\n" in text
    assert "np.random.randn(layer_sizes[i], layer_sizes[i+1]) * 0.01" in text


def test_the_seed_parses_into_its_five_questions_with_the_first_option_right():
    course = load_course(SEED_FILE.parent)
    assert course.errors == []
    quiz = course.get("dl-intro-neural-networks").quiz
    assert [(q.id, q.prompt_html, [o.html for o in q.options]) for q in quiz.questions] == SEED_QUIZ
    assert all(
        q.options[0].correct and sum(o.correct for o in q.options) == 1 for q in quiz.questions
    )


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (it is in the test extra)")
def test_ruff_leaves_the_content_folder_alone_even_when_given_the_file_by_name():
    for args in (["format", "--check"], ["format", "--diff"]):
        result = subprocess.run(
            [RUFF, *args, str(SEED_FILE.relative_to(ROOT))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "would be reformatted" not in result.stdout + result.stderr
