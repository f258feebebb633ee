"""`python -m adapters.broker`: the `pbgm-broker` command."""

from adapters.broker._cli import main

main(prog_name="pbgm-broker")
