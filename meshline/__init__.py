"""meshline's bottom layer: the generated `meshline.v1` / `meshline.inference` code, typed keys,
the wire vocabulary and process helpers. It imports no other meshline package
(tests/test_layers.py checks it)."""
