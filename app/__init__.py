"""Backprop: lessons, server-graded quizzes and a live NumPy training service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("backprop")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
