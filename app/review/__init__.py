"""Spaced review: every question a learner answered, scheduled again by FSRS (the `fsrs` package).

schedule.py is the pure core (FSRS, the order questions are served in, how a due time reads);
store.py keeps the cards; service.py presents and grades one question as the quiz does;
routes.py is `/review` and `/api/me/review`.
"""
