"""``python -m dlnd`` (and ``torchrun -m dlnd``) runs the command line."""

from dlnd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
