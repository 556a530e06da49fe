"""Backprop: lessons, server-graded quizzes and a live NumPy training service."""
