"""`python -m cli`: the `meshline` command, as `meshline up` and the tests start it."""

from cli.main import app

app()
