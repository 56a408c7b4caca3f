"""The defaults of `reward-server validate` and of the pytest plugin's options: a module of
their own, so that building the command line or starting pytest (the plugin loads in every
run where the package is installed) imports no client code."""

TRANSPORTS = ("http", "grpc")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONCURRENCY = 8
DEFAULT_RETRIES = 1
