from meshline.cli.main import app

app()
