"""wardcast: a simulation and load-testing harness for a hospital's ZeroMQ
publish/subscribe system, built to test the claim that the design scales."""

__version__ = "0.1.0"
