"""The box each ```claim block becomes on the lesson page, with what `check --run` measured.

The rendered (and cached) body holds a placeholder per claim (app/content/claims.py); the boxes
are filled in per request from the run store, so a new verification shows on the next page
load without re-rendering the Markdown. Nothing is trained here: a configuration with no stored
figures is shown as not yet verified.
"""

from __future__ import annotations

from typing import Any

import jinja2

from ..content import Lesson
from ..content.claims import SLOT, Claim
from ..training.figures import RunStore, run_key
from ..training.query import playground_query
from ..training.runner import DEFAULTS

#: How the box names each /train field.
LABELS = {
    "dataset": "dataset",
    "hidden_layers": "hidden layers",
    "activation": "activation",
    "epochs": "epochs",
    "learning_rate": "learning rate",
    "batch_size": "batch size",
    "momentum": "momentum",
    "init": "initialisation",
    "seed": "seed",
    "noise": "noise",
}


def _value(field: str, value: Any) -> str:
    if field == "hidden_layers":
        return ", ".join(str(units) for units in value)
    if field == "batch_size" and value is None:
        return "full batch"
    return "default" if value is None else str(value)


def claim_context(claim: Claim, store: RunStore) -> dict[str, Any]:
    """What the box shows: the claim, its run as written, and the stored figures if any."""
    figures = store.get(run_key(claim.config))
    outcomes = claim.expect.evaluate(figures) if figures else None
    rows = [(LABELS[f], _value(f, claim.run[f])) for f in DEFAULTS if f in claim.run]
    if outcomes is None:
        state = "unverified"
    else:
        state = "holds" if all(o.held for o in outcomes) else "fails"
    return {
        "claim": claim,
        "rows": rows,
        "outcomes": outcomes,
        "state": state,
        "verified_at": figures["verified_at"] if figures else None,
        "query": playground_query(claim.config),
    }


def fill_claims(html: str, lesson: Lesson, store: RunStore, env: jinja2.Environment) -> str:
    """The body HTML with each claim's placeholder replaced by its box."""
    if not lesson.claims:
        return html
    template = env.get_template("_claim.html")
    parts = html.split(SLOT)
    boxes = [template.render(claim_context(claim, store)) for claim in lesson.claims]
    # the loader reserves the placeholder for claims: one per claim, in order
    out = [parts[0]]
    for index, part in enumerate(parts[1:]):
        out += [boxes[index] if index < len(boxes) else "", part]
    return "".join(out)
