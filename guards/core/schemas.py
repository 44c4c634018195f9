"""The JSON Schemas shipped in guards/schemas/: loaded once, first error first."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `guards/schemas/<name>.schema.json`."""
    return dict(json.loads(resources.files("guards").joinpath(f"schemas/{name}.schema.json").read_text()))


def first_error(instance: Any, name: str) -> jsonschema.ValidationError | None:
    """The error at the earliest path where `instance` fails schema `name`, or None when it is valid."""
    errors = jsonschema.Draft202012Validator(load_schema(name)).iter_errors(instance)
    return min(errors, key=lambda e: [str(p) for p in e.absolute_path], default=None)


def where(error: jsonschema.ValidationError, sep: str = "/") -> str:
    """The failing location, e.g. `identities/0/id`, or `(top level)`."""
    return sep.join(str(p) for p in error.absolute_path) or "(top level)"
