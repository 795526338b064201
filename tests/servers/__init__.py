"""Real servers started by the test suite (loopback only), reusable by any test package.

- :mod:`tests.servers.dovecot`: a private Dovecot (IMAP, IMAPS, LMTP, XOAUTH2 through a local
  token-introspection endpoint) in a temporary directory, plus a throw-away test CA.
"""
