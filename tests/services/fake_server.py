"""`python -m tests.services.fake_server serve ...`: the real CLI, with the test-only
`test-fake` answer type registered first (its workers inherit the registry)."""

from reward_server import registry
from services.cli import main
from tests.reward_server.fake_verifiers import SPEC

registry.register(SPEC)
main()
