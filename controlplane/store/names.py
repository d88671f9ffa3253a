"""Name rules shared by everything that accepts resource names."""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dns1123_label_problem(name: str) -> str | None:
    """Why `name` is not a DNS-1123 label (as Kubernetes names are), or None when it is."""
    if not name:
        return "must not be empty"
    if len(name) > DNS1123_LABEL_MAX:
        return f"'{name}' is longer than {DNS1123_LABEL_MAX} characters"
    if not _DNS1123_LABEL.match(name):
        return (
            f"'{name}' is not a DNS-1123 label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None
