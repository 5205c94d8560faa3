"""REST API v1 (flask-smorest): resources, authentication and the error envelope.

Everything lives under ``/api/v1``; the OpenAPI document is ``/api/v1/openapi.json`` and a
browsable Swagger UI page is ``/api/v1/docs``. One module per resource family; each view's
docstring is its entry in the document.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from marshmallow import Schema, fields

from dropstream.api.common import IdConverter, id_converter_schema

#: Swagger UI's scripts and styles, served by DropStream itself from the swagger-ui-bundle
#: package, so the docs page works on a machine with no internet access.
SWAGGER_UI_URL = "/assets/swagger-ui/"


class ErrorDetailSchema(Schema):
    code = fields.String(metadata={"description": "Stable error code, e.g. validation_error"})
    message = fields.String(metadata={"description": "What went wrong and how to fix it"})
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                               data_key="fields",
                               metadata={"description": "Dotted field path → messages"})


class ErrorSchema(Schema):
    """The error envelope every API failure uses."""

    error = fields.Nested(ErrorDetailSchema)


class DropStreamApi(Api):
    ERROR_SCHEMA = ErrorSchema


def init_api(app: Flask) -> DropStreamApi:
    """Mount the API on ``app``: documentation, authentication, errors and every resource.

    The ``Api`` object is built per app (flask-smorest keeps the app on it), so several apps can
    live in one process, as they do in the tests.
    """
    from dropstream.api import (
        alerts,
        auth,
        connectors,
        errors,
        inventory,
        listings,
        merchants,
        orders,
        shipments,
        shipping_rules,
        stores,
        users,
        warehouses,
    )

    app.config.setdefault("API_TITLE", "DropStream")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", SWAGGER_UI_URL)
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "Stores, warehouses, listings, shipping rules, orders, shipments, "
                                "stock and alerts of one fulfillment provider's tenants."},
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "An API key issued to a user."},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                              "description": "Browser session from POST /api/v1/session; "
                                             "unsafe requests also need X-CSRF-Token."},
        }},
    })
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:  # Flask's default is None, not unset
        # Browsers then send the session cookie on no cross-site POST: CSRF's first fence.
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    app.url_map.converters["id"] = IdConverter
    api = DropStreamApi(app)
    api.register_converter(IdConverter, id_converter_schema)
    for module in (auth, merchants, users, connectors, warehouses, stores, listings, shipping_rules,
                   orders, shipments, inventory, alerts):
        api.register_blueprint(module.blp)

    app.add_url_rule(f"{SWAGGER_UI_URL}<path:filename>", "swagger-ui-assets", _swagger_ui_asset)
    app.before_request(auth.before_api_request)
    app.teardown_request(auth.teardown_api_request)
    errors.init_error_handlers(app)  # after Api(), replacing its HTTPException handler
    return api


def _swagger_ui_asset(filename: str):  # type: ignore[no-untyped-def]
    from flask import send_from_directory
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
