"""The two requests Hub makes to SNS: fetching a signing certificate (once per URL, then kept)
and confirming a subscription by GET on its SubscribeURL.

Both go only to URLs `sns.check_origin` accepted. Neither follows redirects; both have a
timeout and read at most a few kilobytes, so a slow or huge answer costs a worker thread
seconds, not minutes. A certificate is believed only when it is valid now, holds an RSA key and
is issued to sns.amazonaws.com (the subject of SNS's signing certificates in every region). A
URL whose fetch failed is not fetched again for FAILED_FOR: anyone can post an envelope naming
one, and each post must not make Hub fetch it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hub.services.esp_feedback.problems import FeedbackProblem, Refused, Unavailable

log = logging.getLogger(__name__)

MAX_CERTIFICATE_BYTES = 64 * 1024  # SNS's are about 2 KB
MAX_ANSWER_BYTES = 64 * 1024
TIMEOUT = httpx.Timeout(5.0)
KEPT = 16  # SNS signs with one certificate per region at a time; a few rotations fit
SNS_COMMON_NAME = "sns.amazonaws.com"
FAILED_FOR = dt.timedelta(minutes=5)  # SNS retries for an hour: a blip costs one retry or two
KEPT_FAILED = 256


class SnsClient:
    """Certificates by URL, and subscription confirmations. One per app; thread-safe."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport
        # url -> the key and when its certificate expires (checked on every use)
        self._keys: OrderedDict[str, tuple[rsa.RSAPublicKey, dt.datetime]] = OrderedDict()
        # url -> why its fetch failed, and until when that answer stands
        self._failed: OrderedDict[str, tuple[FeedbackProblem, dt.datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def public_key(self, url: str, *, now: dt.datetime) -> rsa.RSAPublicKey:
        """The RSA key of the certificate at `url`. Raises Refused when the URL holds no valid
        RSA certificate of SNS's, Unavailable when it cannot be reached now (SNS will retry);
        either again, without a fetch, for FAILED_FOR after a fetch of that URL failed."""
        with self._lock:
            kept = self._keys.get(url)
            if kept is not None and now <= kept[1]:
                self._keys.move_to_end(url)
                return kept[0]
            failed = self._failed.get(url)
            if failed is not None and now < failed[1]:
                problem = failed[0]
                message = f"{problem.message} (not fetched again until {failed[1]:%H:%M:%S} UTC)"
                raise type(problem)(problem.field, message)
        try:
            key, expires = self._certificate_key(url, now=now)
        except (Refused, Unavailable) as problem:
            with self._lock:
                self._failed[url] = (problem, now + FAILED_FOR)
                self._failed.move_to_end(url)
                while len(self._failed) > KEPT_FAILED:
                    self._failed.popitem(last=False)
            raise
        with self._lock:
            self._failed.pop(url, None)
            self._keys[url] = (key, expires)
            while len(self._keys) > KEPT:
                self._keys.popitem(last=False)
        return key

    def _certificate_key(
        self, url: str, *, now: dt.datetime
    ) -> tuple[rsa.RSAPublicKey, dt.datetime]:
        """Fetch and check the certificate: its key, and when it expires."""
        pem = self._get(url, MAX_CERTIFICATE_BYTES, what="SigningCertURL")
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise Refused("SigningCertURL", "does not hold a PEM certificate") from None
        names = [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
        if names != [SNS_COMMON_NAME]:
            issued_to = ", ".join(names) or "no common name"
            raise Refused(
                "SigningCertURL",
                f"holds a certificate issued to {issued_to[:100]}, not {SNS_COMMON_NAME}",
            )
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise Refused("SigningCertURL", "holds a certificate that is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Refused("SigningCertURL", "holds a certificate whose key is not RSA")
        return key, certificate.not_valid_after_utc

    def confirm(self, url: str) -> None:
        """GET the SubscribeURL, as SNS asks. Raises Unavailable if SNS did not take it."""
        self._get(url, MAX_ANSWER_BYTES, what="SubscribeURL")

    def _get(self, url: str, limit: int, *, what: str) -> bytes:
        try:
            with (
                httpx.Client(
                    transport=self._transport, timeout=TIMEOUT, follow_redirects=False
                ) as client,
                client.stream("GET", url) as answer,
            ):
                if answer.status_code >= 500 or answer.status_code == 429:
                    raise Unavailable(what, f"answered {answer.status_code}; try again later")
                if answer.status_code != 200:
                    raise Refused(what, f"answered {answer.status_code}")
                body = b""
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise Refused(what, f"answered more than {limit} bytes")
                return body
        except httpx.HTTPError as exc:
            # The URL carries SNS's token for a SubscribeURL: name the failure, not the URL.
            log.warning("SNS %s could not be fetched: %s", what, type(exc).__name__)
            raise Unavailable(what, f"could not be fetched ({type(exc).__name__})") from None
