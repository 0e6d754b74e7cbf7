"""``python -m i2ibench.cli`` (used under ``torchrun``)."""

from i2ibench.cli.main import main

main()
