"""`python -m catalogsync`: the same command line as the `catalogsync` script."""

from catalogsync.cli import main

if __name__ == "__main__":
    main()
