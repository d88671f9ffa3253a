"""Reconciliation: pure planning and decisions (`plan`, `agents`, `wakes`) and the I/O shell
that runs them on every change (`reconciler`). `state.NetworkState` is what the last pass
decided, read by status and the API."""

from controlplane.reconcile.plan import NetworkPlan, plan_network, workload_revision
from controlplane.reconcile.reconciler import Reconciler
from controlplane.reconcile.state import NetworkState

__all__ = ["NetworkPlan", "NetworkState", "Reconciler", "plan_network", "workload_revision"]
