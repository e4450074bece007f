"""Serving: the Flask API under gunicorn, its metrics, and the verified model's hand-off to workers.

Imported by the gunicorn master (app.serving.gunicorn_conf), so nothing heavy at package level.
"""
