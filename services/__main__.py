"""python -m services: the reward-server CLI."""
from services.cli import main

main()
