"""The Salesforce adapter: REST, Composite, sObject Collections and Bulk API 2.0.

Modules: ``connector`` (the operations), ``settings`` (validated settings), ``auth`` (OAuth
grants from settings and the session auth flow), ``classify`` (error bodies → typed errors),
``limits`` (``Sforce-Limit-Info`` and quota health), ``soql`` (safe parameter binding),
``paging`` (REST query pages, the next one requested as each arrives), ``results``,
``composite``, ``collections``, ``bulk`` and ``csvstream`` (streamed CSV).
"""

from .bulk import BulkIngestResult, BulkJobInfo
from .composite import CompositeResult, Subrequest, SubResponse
from .connector import SalesforceConnector
from .results import Record, SaveResult
from .soql import LikePattern, bind, contains, ends_with, escape_like, like, quote, starts_with

__all__ = [
    "BulkIngestResult",
    "BulkJobInfo",
    "CompositeResult",
    "LikePattern",
    "Record",
    "SalesforceConnector",
    "SaveResult",
    "SubResponse",
    "Subrequest",
    "bind",
    "contains",
    "ends_with",
    "escape_like",
    "like",
    "quote",
    "starts_with",
]
