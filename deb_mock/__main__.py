"""``python -m deb_mock`` runs the command line."""

from deb_mock.cli import run

run()
