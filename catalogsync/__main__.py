"""`python -m catalogsync` and the `catalogsync` script: the command line, started light.

A start imports about 230 modules and creates some 200,000 objects that live as long as
the process, and almost no garbage. The cyclic garbage collector, run every 700
allocations, walked them again and again: 50 M instructions, a tenth of `catalogsync
status`. So it is off while the command line is imported, and what that import made is
then frozen (``gc.freeze``: moved where later collections never look) before the
collector comes back on for the command itself, which may run for days (`run`, `tui`).
"""

import gc


def main() -> None:
    """Console-script entry point (``[project.scripts]``)."""
    gc.disable()
    try:
        from catalogsync.cli import main as cli_main
    finally:
        gc.enable()
    gc.freeze()
    cli_main()


if __name__ == "__main__":
    main()
