"""The `meshline` command."""
