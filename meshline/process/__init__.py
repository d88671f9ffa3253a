"""Process helpers shared by the control plane, the agent and `meshline up`: children that die
with their parent, free ports chosen at run time, one process per state directory."""
