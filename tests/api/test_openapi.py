"""The OpenAPI document: valid OpenAPI 3 in shape, and it lists every route the app serves."""

from __future__ import annotations

import re
from typing import Any

from tests.api.conftest import PREFIX

OPERATIONS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNDOCUMENTED = {f"{PREFIX}/openapi.json", f"{PREFIX}/docs"}


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def api_rules(app: Any) -> list[Any]:
    return [rule for rule in app.url_map.iter_rules()
            if rule.rule.startswith(PREFIX + "/") and rule.rule not in UNDOCUMENTED]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def walk_refs(node: Any) -> list[str]:
    refs, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("$ref"), str):
                refs.append(item["$ref"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return refs


def test_document_is_openapi_3_in_shape(client):
    response = client.get(f"{PREFIX}/openapi.json")  # public: no key needed
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] == "DropStream" and document["info"]["version"] == "v1"
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert {"bearerAuth": []} in document["security"]
    assert document["paths"]
    for path, item in document["paths"].items():
        assert path.startswith(f"{PREFIX}/"), path
        operations = {key: value for key, value in item.items() if key in OPERATIONS}
        assert operations, path
        assert set(item) <= OPERATIONS | {"parameters", "summary", "description"}, path
        shared = item.get("parameters", [])
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no docstring"
            assert operation["responses"], where
            for status, response in operation["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5][0-9][0-9]", str(status)), where
                assert "$ref" in response or "description" in response, where
            parameters = shared + operation.get("parameters", [])
            for parameter in parameters:
                parameter = resolve(document, parameter["$ref"]) if "$ref" in parameter else parameter
                assert parameter["in"] in {"path", "query", "header", "cookie"}, where
                assert "schema" in parameter or "content" in parameter, where
            declared = {p["name"] for p in parameters if p.get("in") == "path" and p.get("required")}
            assert declared == set(re.findall(r"{([^}]+)}", path)), where
            if "requestBody" in operation:
                assert operation["requestBody"]["content"], where
    for ref in walk_refs(document):
        resolve(document, ref)


def test_document_lists_every_route(app, client):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    missing = []
    for rule in api_rules(app):
        path = openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, missing


def test_login_is_public_in_the_document(client):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    assert document["paths"][f"{PREFIX}/session"]["post"]["security"] == []


def test_docs_page_is_served(client):
    response = client.get(f"{PREFIX}/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.get_data(as_text=True)
