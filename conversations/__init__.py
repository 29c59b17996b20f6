"""The conversation worker: stored inbound messages → Rasa → outbox → providers.

It imports only the core (``lanpya``); it meets the web app and the
campaign engine in the database.
"""
