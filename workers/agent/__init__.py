"""The region agent: runs the region's Envoy and its workers, and talks to the control plane."""
