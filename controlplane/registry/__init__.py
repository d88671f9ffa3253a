"""The model registry: where a version's bytes come from, and how they are recorded.

Origins (a local path, a HuggingFace repo in the local cache, an upload) all end up as one
content-addressed artifact (`controlplane.store.artifacts`) that workers load; the version
records its sha256, size, framework and creation time. Pure helpers live here:
`huggingface` (the local cache), `framework` (what a file is), `identity` (what a worker
runs); apply-time registration and the push/delete operations are API-stage modules
(`controlplane.api.versions`, `controlplane.api.registry`).
"""
