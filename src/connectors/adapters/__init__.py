"""Built-in adapters: ``salesforce``, ``slack``, ``email``, ``webhook`` and ``http`` (declarative).

Adapters import from :mod:`connectors.base` and the layers below it, never from each other.
"""
