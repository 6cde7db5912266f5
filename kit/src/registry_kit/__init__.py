"""The platform kit of the AI lifecycle risk registry.

    AsyncSender / Sender     sign and send events, retrying with the same webhook-id
    NoticeReceiver           verify and de-duplicate the registry's notices
    run_conformance          check a notice receiver (also ``registry-kit conformance``)
    send_test_notice         have the registry send a test notice (``registry-kit test-notice``)
    push_catalogue(_async)   send the platform's whole catalogue (``registry-kit catalogue push``)
    sign / verify            the Standard Webhooks scheme underneath

Errors: ``SendError`` (the registry refused an event, or every attempt failed),
``CatalogueError`` (a ``SendError``: the registry refused a catalogue),
``VerificationError`` (a notice not signed with the receiver's secret, or not recently) and
``NoticeError`` (a signed body that is not a notice).
"""

from registry_kit.catalogue import (
    CatalogueError,
    CatalogueSummary,
    RejectedLine,
    push_catalogue,
    push_catalogue_async,
)
from registry_kit.conformance import CHECKS, CheckResult, run_conformance
from registry_kit.probe import ProbeError, TestNoticeResult, send_test_notice
from registry_kit.receiver import MemorySeenStore, Notice, NoticeError, NoticeReceiver, SeenStore
from registry_kit.sender import (
    AsyncSender,
    Delivery,
    RetryPolicy,
    Sender,
    SendError,
    encode_event,
    new_msg_id,
)
from registry_kit.signing import VerificationError, sign, signed_headers, verify

__all__ = [
    "CHECKS",
    "AsyncSender",
    "CatalogueError",
    "CatalogueSummary",
    "CheckResult",
    "Delivery",
    "MemorySeenStore",
    "Notice",
    "NoticeError",
    "NoticeReceiver",
    "ProbeError",
    "RejectedLine",
    "RetryPolicy",
    "SeenStore",
    "SendError",
    "Sender",
    "TestNoticeResult",
    "VerificationError",
    "encode_event",
    "new_msg_id",
    "push_catalogue",
    "push_catalogue_async",
    "run_conformance",
    "send_test_notice",
    "sign",
    "signed_headers",
    "verify",
]
__version__ = "0.1.0"
