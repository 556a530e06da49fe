"""Training: the lesson's network in NumPy, its datasets, the /train service and the playground."""

from .query import playground_query

__all__ = ["playground_query"]
