# The two commands of the quick start: `make up` and `make test`.
# Each creates .venv and installs what it needs first.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp

.PHONY: up test install protos lint typecheck bench bench-failover bench-serving bench-serverless bench-scale bench-packing clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/meshline up

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/buf lint

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/pytest -q

# Regenerate meshline/inference and meshline/v1 from protos/ (tests fail when stale).
protos: $(STAMP)
	$(PY) scripts/generate_protos.py

# Every benchmark; each rewrites only its own section of docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench.mesh_overhead
	$(PY) -m bench.failover
	$(PY) -m bench.serving
	$(PY) -m bench.serverless

# A killed worker, a saturated region, a lost region, under steady load (~2 minutes).
bench-failover: $(STAMP)
	$(PY) -m bench.failover

# Direct vs gateways, batched vs not, Torch vs Triton, gRPC vs REST; table + plots (~6 minutes).
bench-serving: $(STAMP)
	$(PY) -m bench.serving

# Cold start vs a bare worker start, scale-up reaction, failed requests in a rollout (~2 min).
bench-serverless: $(STAMP)
	$(PY) -m bench.serverless

# 1,000 and 10,000 deployments x 3 regions: apply, translate, a change ACKed everywhere (SotW
# and Delta), memory, get deployments (~1 hour; 10,000 with ADS-only stand-ins for Envoy).
bench-scale: $(STAMP)
	$(PY) -m bench.scale

# 1,000 packed deployments (shared workers) against 50 dedicated, one region: how many answer
# their first call, cold-start latency, memory per deployment, warm calls (~15 minutes).
bench-packing: $(STAMP)
	$(PY) -m bench.packing

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
