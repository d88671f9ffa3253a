"""Server commands: they run processes (`controlplane`, `agent`, `up`), so they import the control
plane and the workers; the client commands never do."""
