"""Quizzes: server-side grading (pure functions) and the routes that serve and grade them."""
