"""Lanpya custom actions: one class per action, each calling the web app's
internal API through :mod:`actions.api`. Loaded by ``rasa run actions``
(``python bot/serve.py actions``) from bot/."""
