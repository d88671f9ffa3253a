"""The control plane's side of the agent stream: live facts about each region.

Like the store, this is an edge of the flow: it records what agents report
(gateways, workers, health) and carries desired state back to them.
"""
