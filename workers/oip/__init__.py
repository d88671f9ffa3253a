"""Open Inference Protocol v2, protocol- and runtime-neutral: what every worker runtime shares.

datatypes (the OIP datatype table), errors (typed errors each adapter maps to a status), signature
(a model's declared tensors and the checks requests pass), codec (wire tensors <-> numpy arrays),
model_file (the start-up check of the model file). The Torch and Triton workers import it; it
imports neither.
"""
