"""`python -m emo.cli` is the `emo` command."""

from emo.cli.main import main

main()
