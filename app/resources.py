"""Where the files the app runs on live: inside the installed package, or in the repository.

A wheel carries the top-level templates/, static/, alembic/ and content/ folders as
app/_data/templates, app/_data/static, app/_data/migrations and app/_data/course (pyproject's
force-include). A checkout (an editable install, the tests) has no app/_data and uses the
folders beside app/. Never the working directory: `backprop serve` runs from any folder.
"""

from __future__ import annotations

from pathlib import Path

#: The `app` package's own folder, wherever it is installed.
PACKAGE_DIR = Path(__file__).resolve().parent
#: What a wheel bundles; absent in a checkout.
BUNDLED_DIR = PACKAGE_DIR / "_data"
#: A checkout's root, recognised by its pyproject.toml beside app/.
REPO_DIR = PACKAGE_DIR.parent

#: resource name → (folder in a wheel under app/_data, folder in the repository)
LAYOUT: dict[str, tuple[str, str]] = {
    "templates": ("templates", "templates"),
    "static": ("static", "static"),
    "migrations": ("migrations", "alembic"),
    "course": ("course", "content"),
}


class MissingResource(RuntimeError):
    """The package was installed without one of its data folders."""


def resource_dir(name: str) -> Path:
    """The folder of one resource (templates, static, migrations, course), from the package if it
    bundles them, else from the repository checkout app/ sits in."""
    bundled, in_repo = LAYOUT[name]
    if BUNDLED_DIR.is_dir():
        path = BUNDLED_DIR / bundled
    elif (REPO_DIR / "pyproject.toml").is_file():
        path = REPO_DIR / in_repo
    else:
        # e.g. a wheel built without force-include: site-packages/alembic is the Alembic library
        raise MissingResource(
            f"Backprop's {name} folder is missing: {PACKAGE_DIR} has no _data/ folder and is not "
            "in a repository checkout; reinstall from a wheel built with this repository's "
            "pyproject.toml"
        )
    if not path.is_dir():
        raise MissingResource(f"Backprop's {name} folder is missing: {path}")
    return path


def templates_dir() -> Path:
    return resource_dir("templates")


def static_dir() -> Path:
    return resource_dir("static")


def migrations_dir() -> Path:
    return resource_dir("migrations")


def course_dir() -> Path:
    """The bundled course (the seed lesson): what CONTENT_DIR defaults to."""
    return resource_dir("course")
