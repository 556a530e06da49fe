"""Mathematics: `$...$` and `$$...$$` drawn as MathML on the server, what stays prose, what is
an error (and where), and what the sanitiser keeps of MathML."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.content import load_course
from app.content.mathml import MAX_FORMULA_CHARS, InvalidMath, to_mathml
from app.content.render import render_body, render_inline, sanitize

ROOT = Path(__file__).resolve().parent.parent


def html_of(markdown: str) -> str:
    errors: list = []
    page, _ = render_body(markdown, errors)
    assert errors == []
    return page


class _Elements(HTMLParser):
    """Every start tag with its attributes, in order: what a page's markup amounts to."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, tuple(sorted(attrs))))

    handle_startendtag = handle_starttag


def elements(page: str) -> list[tuple[str, tuple[tuple[str, str | None], ...]]]:
    parser = _Elements()
    parser.feed(page)
    return parser.found


#: A lesson's front matter; the body's first line is line 8 of the file.
HEAD = "---\nid: maths\ntitle: Maths\nduration: 5 min\nsection: basics\n---\n\n"


def lesson(body: str) -> str:
    return HEAD + body


# --- rendering ---------------------------------------------------------------------------


def test_inline_dollars_become_inline_mathml_inside_the_paragraph():
    page = html_of("The square $x^2$ grows.\n")
    assert page.startswith('<p>The square <span class="math-inline"><math display="inline"')
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in page
    assert "$" not in page.replace('alttext="x^2"', "")
    assert page.endswith("</math></span> grows.</p>")


def test_display_dollars_become_a_block_formula_in_a_div_of_its_own():
    page = html_of(
        "Softmax:\n\n$$\n\\mathrm{softmax}(z)_i = \\frac{e^{z_i}}{\\sum_j e^{z_j}}\n$$\n\nDone.\n"
    )
    assert '<p>Softmax:</p>\n<div class="math-display" tabindex="0"><math display="block"' in page
    assert "<mfrac>" in page and "<mo>∑</mo>" in page  # the character, not a reference
    assert page.endswith("</math></div>\n<p>Done.</p>")


def test_the_tex_is_kept_as_the_formulas_alttext_for_screen_readers_and_copying():
    page = html_of("Chain rule: $\\frac{\\partial L}{\\partial w} = \\delta \\, a$.\n")
    assert 'alttext="\\frac{\\partial L}{\\partial w} = \\delta \\, a"' in page


def test_an_escaped_dollar_is_a_dollar_sign_and_starts_no_formula():
    page = html_of("It costs \\$3, or \\$x\\$ if you ask.\n")
    assert page == "<p>It costs $3, or $x$ if you ask.</p>"


@pytest.mark.parametrize(
    "prose",
    [
        "A ticket costs between $5 and $10.",
        "Prices: $5, $10 and $20.",
        "It went from $1.50 to $2 overnight.",
        "Only $ 5 left.",
    ],
)
def test_prose_amounts_stay_text(prose):
    assert html_of(prose + "\n") == f"<p>{prose}</p>"


def test_dollars_in_code_spans_and_code_blocks_are_left_as_code():
    page = html_of("Run `echo $x$` first.\n\n```bash\necho $HOME $x$\n```\n\n    $$y$$ indented\n")
    assert "<math" not in page
    assert "<code>echo $x$</code>" in page
    text = re.sub(r"<[^>]+>", "", page)  # the highlighter's spans split the shell line
    assert "echo $HOME $x$" in text and "$$y$$ indented" in text


def test_markup_characters_in_tex_are_text_in_the_mathml_not_markup():
    page = html_of("$\\text{a <b>bold</b> & c}$ and $x<y$\n")
    assert "<b>" not in page
    assert "<mtext>a&nbsp;&lt;b&gt;bold&lt;/b&gt;&nbsp;&amp;&nbsp;c</mtext>" in page
    assert "<mo>&lt;</mo>" in page


def test_display_math_keeps_less_than_and_ampersand_in_a_matrix():
    page = html_of("$$\n\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix} < M\n$$\n")
    assert page.count("<mtd>") == 4
    assert "<mo>&lt;</mo>" in page


def test_math_in_a_heading_gives_a_plain_text_table_of_contents_entry():
    page, toc = render_body("## The $\\sigma(z)$ function\n")
    assert "<math" in page
    assert [entry.title for entry in toc] == ["The σ(z) function"]


def test_quiz_text_draws_inline_math_too():
    html = render_inline("The gradient $\\nabla_w L$ points uphill")
    assert html.startswith('The gradient <span class="math-inline"><math display="inline"')
    assert "∇" in html


def inner(latex: str) -> str:
    """The MathML inside <math>, for comparing structure."""
    return to_mathml(latex, display=False).split(">", 1)[1].removesuffix("</math>")


THIN = '<mspace width="0.167em" />'


def test_operator_names_are_upright_with_a_thin_space_beside_atoms_and_none_before_a_bracket():
    assert inner("2\\log x") == f"<mrow><mn>2</mn>{THIN}<mi>log</mi>{THIN}<mi>x</mi></mrow>"
    # \operatorname was an <mo> with no dictionary entry: a wide gap before the bracket
    assert inner("\\operatorname{softmax}(z)") == (
        '<mrow><mi>softmax</mi><mo stretchy="false">(</mo><mi>z</mi>'
        '<mo stretchy="false">)</mo></mrow>'
    )
    assert inner("\\sin^2 x") == f"<mrow><msup><mi>sin</mi><mn>2</mn></msup>{THIN}<mi>x</mi></mrow>"


def test_a_prime_sits_beside_its_base_not_in_a_superscript():
    assert inner("\\sigma'(z)").startswith(
        '<mrow><mrow><mi>σ</mi><mo lspace="0" rspace="0">′</mo></mrow><mo stretchy="false">('
    )
    assert "<msup>" not in inner("f''")


def test_a_sign_after_an_operator_or_bracket_is_unary_and_a_sign_between_atoms_binary():
    assert '<mo>=</mo><mo lspace="0" rspace="0">−</mo>' in inner("L = -\\log p")
    assert '(</mo><mo lspace="0" rspace="0">−</mo><mi>z</mi>' in inner("\\exp(-z)")
    assert inner("a - b") == "<mrow><mi>a</mi><mo>−</mo><mi>b</mi></mrow>"
    assert "</mo><mo>−</mo><mn>1</mn>" in inner("|x| - 1")


# --- invalid input -----------------------------------------------------------------------

INVALID = {
    "x^": "missing super script or subscript",
    "\\frac{1}{2": "a '{' is never closed",
    "x}": "a '}' closes no '{'",
    "\\sigmoid(z)": "unknown command \\sigmoid",
    "\\begin{aligned} a &= b \\end{aligned}": "unknown environment {aligned}",
    "a & b": "'&' outside a matrix",
    "a \\\\ b": "breaks lines only inside an environment",
    "\\left( x": "extra left or missing right",
    "\\def\\x{y}\\x": "\\def is not supported",
    "\\href{javascript:alert(1)}{x}": "\\href is not supported",
    "\\style{color:red}{x}": "\\style is not supported",
    "\\color{red}{x}": "\\color is not supported",
    "x" * (MAX_FORMULA_CHARS + 1): f"over {MAX_FORMULA_CHARS} characters",
}


@pytest.mark.parametrize("latex", INVALID)
def test_tex_latex2mathml_cannot_draw_as_written_is_invalid_with_a_reason(latex):
    with pytest.raises(InvalidMath) as caught:
        to_mathml(latex, display=False)
    assert INVALID[latex] in str(caught.value)


def test_deeply_nested_braces_are_invalid_not_a_crash():
    with pytest.raises(InvalidMath):
        to_mathml("{" * 1900 + "x" + "}" * 1900, display=True)


def test_an_invalid_formula_is_shown_as_written_and_reported_with_its_line():
    errors: list = []
    page, _ = render_body("# Title\n\nFine $x^2$.\n\nBroken $x^$ here.\n\n$$\n\\foo\n$$\n", errors)
    assert [(e.line, e.written, e.message) for e in errors] == [
        (5, "$x^$", "missing super script or subscript"),
        (7, "$$\n\\foo\n$$", "unknown command \\foo"),
    ]
    title = 'title="invalid LaTeX: missing super script or subscript"'
    assert f'<span class="math-error" {title}>$x^$</span>' in page
    assert ">$$\n\\foo\n$$</div>" in page
    assert page.count("<math") == 1


def test_backprop_check_reports_invalid_latex_with_file_and_line_and_exits_1(tmp_path):
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "maths.md").write_text(
        lesson("Good $a+b$.\n\nStill good.\n\nBad $\\frac{1}{2$ here.\n"), encoding="utf-8"
    )
    data = tmp_path / "data"
    for _ in range(2):  # a body with a broken formula is not cached: the second check sees it too
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "check", str(folder)],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(ROOT),
                "DATA_DIR": str(data),
                "CONTENT_DIR": str(folder),
            },
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.splitlines()[0] == (
            f"{folder.as_posix()}/maths.md:12: error: invalid LaTeX $\\frac{{1}}{{2$: "
            "a '{' is never closed (hint: fix the TeX (see README, 'Mathematics'), "
            "or write \\$ for a dollar sign)"
        )
        assert "1 lesson(s) OK, 1 error(s)" in result.stdout


def test_a_lesson_with_an_invalid_formula_is_still_served_with_the_formula_as_written(
    content_dir,
):
    (content_dir / "maths.md").write_text(lesson("Bad $x^$.\n"), encoding="utf-8")
    course = load_course(content_dir)
    assert [problem.line for problem in course.errors] == [8]
    assert "$x^$" in course.get("maths").html


def test_a_lazily_loaded_course_reports_nothing_it_has_not_rendered(content_dir):
    (content_dir / "maths.md").write_text(lesson("Bad $x^$.\n"), encoding="utf-8")
    course = load_course(content_dir, lazy=True)
    assert course.errors == []
    assert "math-error" in course.get("maths").html  # the page still shows it as written


def test_invalid_latex_in_a_knowledge_check_question_is_an_error_on_its_line(content_dir):
    quiz = "## Knowledge Check\n\n1. What is $\\frac{1}{$?\n   - [x] One\n   - [ ] Two\n"
    (content_dir / "maths.md").write_text(lesson("Intro.\n\n" + quiz), encoding="utf-8")
    course = load_course(content_dir)
    assert [(p.line, p.message) for p in course.errors] == [
        (12, "invalid LaTeX $\\frac{1}{$: a '{' is never closed")
    ]


def test_invalid_latex_in_a_quiz_option_is_an_error_on_the_options_line(content_dir):
    quiz = "## Knowledge Check\n\n1. Which is a half?\n   - [x] $\\frac12$\n   - [ ] $x^$\n"
    (content_dir / "maths.md").write_text(lesson(quiz), encoding="utf-8")
    course = load_course(content_dir)
    assert [p.line for p in course.errors] == [12]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="$\\{}^_&x1 \n`ab<>", max_size=60))
def test_any_text_with_dollars_renders_without_raising(text):
    errors: list = []
    page, _ = render_body(text, errors)
    assert "<script" not in page
    assert all(error.message for error in errors)


# --- sanitising --------------------------------------------------------------------------

FORMULAS = [
    "\\mathrm{softmax}(z)_i = \\frac{e^{z_i}}{\\sum_{j=1}^{K} e^{z_j}}",
    "L = -\\sum_i y_i \\log \\hat{y}_i",
    "\\frac{\\partial L}{\\partial w} = \\frac{\\partial L}{\\partial a}"
    " \\cdot \\frac{\\partial a}{\\partial w}",
    "w \\leftarrow w - \\eta \\, \\nabla_w L \\quad \\text{(step)}",
    "\\sqrt{x} + \\sqrt[3]{y} + \\overline{z} + \\underbrace{a+b}_{n} + \\vec{v}",
    "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}",
    "f(x) = \\begin{cases} x & x > 0 \\\\ 0 & \\text{otherwise} \\end{cases}",
    "\\begin{split} a &= b \\\\ &= c \\end{split}",
    "\\mathbb{R}^{n \\times m}, \\mathbf{W}, \\mathcal{L}, \\boxed{1}, \\cancel{2}",
    "\\operatorname{ReLU}(z) = \\max(0, z) \\approx \\lim_{k \\to \\infty} z",
    "\\hphantom{x} \\tfrac{1}{2} {}^{a}_{b}X",
]


@pytest.mark.parametrize("latex", FORMULAS)
@pytest.mark.parametrize("display", [False, True])
def test_the_sanitiser_keeps_every_element_and_attribute_latex2mathml_writes(latex, display):
    mathml = to_mathml(latex, display=display)
    assert elements(sanitize(mathml)) == elements(mathml)
    assert elements(sanitize(mathml, inline=True)) == elements(mathml)


def test_script_and_event_handlers_inside_mathml_are_removed():
    page = html_of(
        '<p><math display="block" onclick="alert(1)"><mrow onmouseover="alert(2)">'
        "<mi>x</mi><script>alert(3)</script><mo onfocus=alert(4)>+</mo></mrow></math></p>\n"
    )
    assert "alert" not in page and "script" not in page and " on" not in page
    assert '<math display="block"><mrow><mi>x</mi><mo>+</mo></mrow></math>' in page


def test_javascript_links_inside_mathml_are_removed():
    raw = (
        '<math href="javascript:alert(1)"><mrow xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xlink:href="javascript:alert(2)"><mi href="javascript:alert(3)">x</mi></mrow></math>'
    )
    for cleaned in (html_of(raw + "\n"), render_inline("see " + raw)):
        assert "javascript" not in cleaned and "href" not in cleaned
        assert "<math><mrow><mi>x</mi></mrow></math>" in cleaned


def test_styles_html_islands_and_actions_inside_mathml_are_removed():
    raw = (
        '<math style="color:red"><annotation-xml encoding="text/html"><img src=x '
        'onerror="alert(1)"></annotation-xml><maction actiontype="toggle"><mi>a</mi></maction>'
        "<mtext><table><mglyph><style><img src=x onerror=alert(2)></style></mglyph></table>"
        "</mtext></math>"
    )
    page = html_of(raw + "\n")
    assert "alert" not in page and "style" not in page and "<img" not in page
    assert "annotation-xml" not in page and "maction" not in page
