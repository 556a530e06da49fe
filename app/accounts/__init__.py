"""Accounts and progress: learners, sessions, tokens, quiz attempts, instructor analytics."""
