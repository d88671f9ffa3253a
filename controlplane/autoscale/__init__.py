"""The autoscaler: desired workers per deployment track and region, from what the data plane
reports (Envoy's in-flight counters via the agents, requests held by the activator)."""

from controlplane.autoscale.autoscaler import Autoscaler, RegionScale
from controlplane.autoscale.cold_starts import ColdStart, ColdStartLedger
from controlplane.autoscale.decide import desired_replicas
from controlplane.autoscale.failures import CRASH_LOOP_RESTARTS, CrashLoop, FailedWake
from controlplane.autoscale.signals import LoadSignal, load_signals
from controlplane.autoscale.window import LoadWindow

__all__ = [
    "CRASH_LOOP_RESTARTS",
    "Autoscaler",
    "ColdStart",
    "ColdStartLedger",
    "CrashLoop",
    "FailedWake",
    "LoadSignal",
    "LoadWindow",
    "RegionScale",
    "desired_replicas",
    "load_signals",
]
