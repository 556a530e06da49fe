"""Web plumbing every domain shares: dependencies, security middleware, pages and error schemas.

Nothing here imports a domain package (accounts, lessons, quizzes, training): domains plug in
through `app.state` (context processors, page hooks), set up by `app.main`.
"""
