"""Management API: validation, YAML documents, apply, and the gRPC servicers."""

from controlplane.api.apply import ApplyPlan, apply_resources, plan_apply
from controlplane.api.dependencies import region_dependents
from controlplane.api.documents import API_VERSION, DocumentError, parse_resource_document
from controlplane.api.errors import (
    FIELD_ERRORS_METADATA_KEY,
    ApplyError,
    FieldError,
    field_errors_from_trailers,
)
from controlplane.api.index import ResourceIndex
from controlplane.api.servicers import add_api_to_server
from controlplane.api.status import StatusProvider
from controlplane.api.validate import validate_resource, validate_resources

__all__ = [
    "API_VERSION",
    "FIELD_ERRORS_METADATA_KEY",
    "ApplyError",
    "ApplyPlan",
    "DocumentError",
    "FieldError",
    "ResourceIndex",
    "StatusProvider",
    "add_api_to_server",
    "apply_resources",
    "field_errors_from_trailers",
    "parse_resource_document",
    "plan_apply",
    "region_dependents",
    "validate_resource",
    "validate_resources",
]
