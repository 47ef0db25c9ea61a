"""Helpers shared by the Python test suites (tests/e2e, tests/faults).

Standard library only: tests/e2e runs under Debian's /usr/bin/python3 (for
python3-libtorrent), tests/faults under the provisioned python3 (for
confluent-kafka). Each suite's conftest.py puts tests/ on sys.path, so both
import `support.common` and `support.ports`; nothing here is duplicated in
the suites.
"""
