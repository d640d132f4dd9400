"""Pulumi.yaml declares every scalar key of the config models, with defaults that mean "unset"."""

from __future__ import annotations

import typing

import yaml
from pydantic import BaseModel

from infra.config import DEFAULT_TTL, SECRET_KEYS, PlatformConfig, SiteConfig
from tests.conftest import REPO

PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())


def _is_object(annotation: typing.Any) -> bool:
    """Object-valued keys cannot be declared in Pulumi.yaml (no object type)."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        for inner in [candidate, *typing.get_args(candidate)]:
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return True
    return False


def _scalar_keys(model: type[BaseModel]) -> dict[str, typing.Any]:
    return {
        (field.alias or name): field
        for name, field in model.model_fields.items()
        if not _is_object(field.annotation)
    }


def test_project_is_python_with_main_infra():
    assert PROJECT["name"] == "twinhost"
    assert PROJECT["runtime"]["name"] == "python" and PROJECT["runtime"]["options"]["virtualenv"] == ".venv"
    assert PROJECT["main"] == "infra/"


def test_every_scalar_key_is_declared_with_type_and_description():
    declared = PROJECT["config"]
    for model in (SiteConfig, PlatformConfig):
        for key in _scalar_keys(model):
            assert key in declared, f"{model.__name__}.{key} missing from Pulumi.yaml"
            assert declared[key].get("type") and declared[key].get("description"), key


def test_every_declared_key_belongs_to_a_model():
    known = set(_scalar_keys(SiteConfig)) | set(_scalar_keys(PlatformConfig)) | set(SECRET_KEYS)
    assert set(PROJECT["config"]) <= known


def test_declared_defaults_match_the_model_or_mean_unset():
    for key, spec in PROJECT["config"].items():
        default = spec.get("default")
        model_defaults = {
            field.default
            for model in (SiteConfig, PlatformConfig)
            for name, field in model.model_fields.items()
            if (field.alias or name) == key
        }
        if key == "ttl":  # the model keeps None to tell "unset" (proxied) from 60; DEFAULT_TTL applies
            model_defaults = {DEFAULT_TTL}
        assert default in ("", []) or default in model_defaults, (key, default, model_defaults)
