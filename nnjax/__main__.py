"""``python -m nnjax``: the same as the ``nnjax`` command."""

from nnjax.cli import run

if __name__ == "__main__":
    run()
