"""`python -m pbgm`: the same command line as the `pbgm` console script."""

from pbgm.cli import main

if __name__ == "__main__":
    main(prog_name="pbgm")
