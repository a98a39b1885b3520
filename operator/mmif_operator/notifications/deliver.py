"""One attempt at one delivery: read the target's Secrets, POST the CloudEvent or send the mail.

Every wait is bounded (`WEBHOOK_TIMEOUT_SECONDS`, `SMTP_TIMEOUT_SECONDS`), every failure comes
back as an `Outcome` with a message for `status.notifications[].lastError`, never an exception.

Secrets: only of the run's namespace, and only those labelled `mmif.dev/notifications: "true"`
(whoever may write Secrets opts one in; see notifications/model.py). Anything else fails the
attempt with a reason saying so (retried: labelling the Secret fixes it).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import aiosmtplib

from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.notifications import messages
from mmif_operator.notifications.model import (
    SECRET_LABEL,
    SECRET_LABEL_VALUE,
    SMTP_TIMEOUT_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
    Delivery,
    EmailTarget,
    NotificationTarget,
    SmtpTls,
    WebhookTarget,
)
from mmif_operator.notifications.outbox import Outcome

log = logging.getLogger(__name__)
USER_AGENT = "mmif-operator"


class SecretProblem(Exception):
    """A Secret a target names cannot be used (missing, not opted in, key missing)."""


async def secret_data(kube: Kube, namespace: str, name: str) -> dict[str, bytes]:
    """The decoded data of the Secret `name` of `namespace`, if it is opted in."""
    try:
        secret = await kube.get("Secret", namespace, name)
    except KubeError as e:
        raise SecretProblem(f"cannot read Secret {name!r} in namespace {namespace!r}: {e}") from e
    if secret is None:
        raise SecretProblem(f"Secret {name!r} not found in namespace {namespace!r}")
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(SECRET_LABEL) != SECRET_LABEL_VALUE:
        raise SecretProblem(
            f"Secret {name!r} is not labelled {SECRET_LABEL}={SECRET_LABEL_VALUE!r}: the operator uses "
            "only Secrets opted in for notifications (label it to allow it)"
        )
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


async def secret_value(kube: Kube, namespace: str, name: str, key: str) -> bytes:
    data = await secret_data(kube, namespace, name)
    if key not in data:
        raise SecretProblem(f"Secret {name!r} has no key {key!r}")
    return data[key]


class Sender:
    """Sends deliveries; holds the HTTP session (one per process, opened on first use)."""

    def __init__(self, kube: Kube):
        self.kube = kube
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def attempt(
        self, target: NotificationTarget, run: Mapping[str, Any], delivery: Delivery
    ) -> Outcome:
        """One attempt; never raises (but for cancellation)."""
        namespace = messages.secrets_namespace(run)
        try:
            if target.webhook is not None:
                return await self._webhook(target.webhook, namespace, run, delivery)
            if target.email is not None:
                return await self._email(target.email, namespace, run, delivery)
            return Outcome(False, permanent=True, error="the target has neither webhook nor email")
        except SecretProblem as e:
            return Outcome(False, error=str(e))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - reported in the status, retried
            log.debug("delivery %s: %s", delivery.id, e, exc_info=True)
            return Outcome(False, error=f"{type(e).__name__}: {e}")

    async def _webhook(
        self, hook: WebhookTarget, namespace: str, run: Mapping[str, Any], delivery: Delivery
    ) -> Outcome:
        token = key = None
        if hook.bearer_token_secret_ref is not None:
            ref = hook.bearer_token_secret_ref
            token = (await secret_value(self.kube, namespace, ref.name, ref.key)).decode().strip()
        if hook.hmac_secret_ref is not None:
            ref = hook.hmac_secret_ref
            key = await secret_value(self.kube, namespace, ref.name, ref.key)
        headers, body = messages.http_request(
            messages.cloud_event(run, delivery), hook.mode, bearer_token=token, hmac_key=key
        )
        try:
            async with self._http().post(hook.url, data=body, headers=headers, allow_redirects=False) as resp:
                text = await resp.content.read(512)
                return messages.http_outcome(resp.status, text.decode(errors="replace"))
        except TimeoutError:
            return Outcome(False, error=f"no answer from {hook.url} within {WEBHOOK_TIMEOUT_SECONDS:g} s")
        except aiohttp.ClientError as e:
            return Outcome(False, error=f"POST {hook.url}: {type(e).__name__}: {e}")

    async def _email(
        self, mail: EmailTarget, namespace: str, run: Mapping[str, Any], delivery: Delivery
    ) -> Outcome:
        username = password = None
        if mail.credentials_secret_ref is not None:
            name = mail.credentials_secret_ref.name
            data = await secret_data(self.kube, namespace, name)
            missing = [k for k in ("username", "password") if k not in data]
            if missing:
                raise SecretProblem(f"Secret {name!r} has no key {missing[0]!r}")
            username, password = data["username"].decode(), data["password"].decode()
        msg = messages.email_message(mail, run, delivery)
        smtp = mail.smtp
        try:
            await aiosmtplib.send(
                msg,
                hostname=smtp.host.strip("[]"),
                port=smtp.port,
                username=username,
                password=password,
                use_tls=smtp.tls is SmtpTls.TLS,
                start_tls=smtp.tls is SmtpTls.START_TLS,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPResponseException as e:
            # 5xx: the server refuses for good (bad login, unknown recipient); 4xx: later.
            return Outcome(False, permanent=e.code >= 500, error=f"SMTP {e.code}: {e.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            return Outcome(False, error=f"SMTP {smtp.host}:{smtp.port}: {type(e).__name__}: {e}")
        return Outcome(True)
