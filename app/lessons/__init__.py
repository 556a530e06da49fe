"""Lesson pages and the lessons JSON API."""
