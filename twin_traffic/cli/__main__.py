"""``python -m twin_traffic.cli``."""

from twin_traffic.cli import main

main()
