"""The prediction API: a Flask app factory (run by gunicorn, see app/serving/gunicorn_conf.py).

Endpoints (app/serving/routes.py): POST /predict, POST /invocations (MLflow scoring protocol),
GET /health, /ready, /metrics, /openapi.json and / (a form to try predictions). Every error is
JSON with a reason (app/serving/errors.py).
"""

from __future__ import annotations

from flask import Flask

from app.model.model_source import LoadedModel
from app.serving import model_handoff, routes
from app.serving.errors import register_error_handlers
from app.serving.model_holder import ModelHolder
from app.serving.request_metrics import RequestMetrics, RouteLabeller
from config.app_settings import ApiSettings


def create_app(
    settings: ApiSettings | None = None, model: LoadedModel | None = None, poll_seconds: float | None = None
) -> Flask:
    """Build the app. With no `model`, load one per settings; poll in the background if none exists."""
    settings = settings or ApiSettings()
    app = Flask(__name__)
    # Werkzeug rejects larger bodies with 413 before we read them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["api_settings"] = settings
    app.extensions["model_holder"] = model_holder(settings, model, poll_seconds)
    app.register_blueprint(routes.bp)
    register_error_handlers(app)
    route_of = RouteLabeller(app.url_map)  # every route is registered by now
    app.extensions["route_of"] = route_of
    app.wsgi_app = RequestMetrics(app.wsgi_app, route_of)  # type: ignore[method-assign]
    return app


def model_holder(settings: ApiSettings, model: LoadedModel | None, poll_seconds: float | None) -> ModelHolder:
    """A holder with `model` installed, else the worker's model, else polling for one."""
    holder = ModelHolder(lambda: model_handoff.load_for_worker(settings))
    if model is not None:
        holder.install(model)
    elif not holder.try_load():
        holder.poll_until_loaded(poll_seconds or settings.model_poll_seconds)
    return holder
