"""The reporting layer: redaction, Allure files and CLI, and the conformance matrix.

Everything here is pure logic or local tooling: nothing talks to a cluster.
"""
