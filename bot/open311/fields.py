"""What Open311 GeoReport v2 clients read: the discovery document, a service per label of the taxonomy,
and a service request per work order, field by field as the spec lists them.

Times are W3C datetimes in China time with their offset (2026-12-03T09:30:00+08:00). Privacy: a
request never carries an openid, a person's name or a phone number — not the resident's, not the
assignee's; who handles it is the grid's Party branch or the department, and phone numbers written in
the description are masked.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from handlers.context import Services
from handlers.rates import CHINA
from handlers.views import place_label
from handlers.workflow import OPEN_STATES, STATE_NAMES, describe_duration
from storage.models import WorkOrder

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-03T00:00:00+08:00"  # of this API: the services and fields it offers
FORMATS = ["application/json"]
CLOSED_STATES = frozenset({"resolved", "closed", "cancelled"})  # 办结 (awaiting a rating) counts as closed
GROUPS = {"grid": "网格党支部办理", "department": "部门办理", "community": "社区办理"}
KEYWORDS = 8  # of each label's keywords, strongest first
SERVICE_FIELDS = ("service_code", "service_name", "description", "metadata", "type", "keywords", "group")
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
POSTED_FIELDS = ("service_request_id", "token", "service_notice", "account_id")
# Mobile numbers, and landlines with an area code, wherever they stand in a resident's words.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")
PHONE_MASK = "[电话已隐去]"


def w3c(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(CHINA).isoformat(timespec="seconds")


def discovery(url: str, contact: str, key_service: str) -> dict[str, Any]:
    return {
        "changeset": CHANGESET,
        "contact": contact or "请联系运营本服务的社区或街道",
        "key_service": key_service or "接入密钥由运营方在 config.toml [open311] api_keys 中分配",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": FORMATS,
            }
        ],
    }


def services(services: Services) -> list[dict[str, Any]]:
    """One service per label of the taxonomy (the classifier's rules): code and name are the label."""
    classifier, limits = services.classifier, services.limits
    listed = []
    for label in classifier.labels:
        rule = classifier.rule(label)
        words = sorted(rule.keywords.items(), key=lambda item: (-item[1], item[0]))[:KEYWORDS]
        within = describe_duration(limits.seconds("accept", label, False))
        group = GROUPS.get(rule.responder, "网格党支部办理")
        listed.append(
            {
                "service_code": label,
                "service_name": label,
                "description": f"{label}：{group}，受理后 {within} 内响应。",
                "metadata": False,
                "type": "realtime",
                "keywords": ",".join(word for word, _ in words),
                "group": group,
            }
        )
    return listed


def status(order: WorkOrder) -> str:
    return "open" if order.state in OPEN_STATES else "closed"


def agency(order: WorkOrder, services: Services) -> str:
    """Who handles it, as a body: the department, or the grid's Party branch (never a person)."""
    directory = services.directory
    department = next((d for d in directory.departments if d.id == order.department_id), None)
    return department.name if department else directory.branch_name(order.unit_id)


def expected(order: WorkOrder) -> datetime | None:
    """The deadline of the phase it is in: resolving once accepted, else accepting."""
    return order.resolve_due or order.accept_due


def mask_phones(text: str) -> str:
    return _PHONE.sub(PHONE_MASK, text)


def service_request(order: WorkOrder, services: Services, updated: datetime | None) -> dict[str, Any]:
    photos = [m.get("pic_url") for m in order.media or [] if isinstance(m, dict) and m.get("pic_url")]
    return {
        "service_request_id": str(order.id),
        "status": status(order),
        "status_notes": STATE_NAMES.get(order.state, order.state),
        "service_name": order.category,
        "service_code": order.category,
        "description": mask_phones(order.text),
        "agency_responsible": agency(order, services),
        "service_notice": None,
        "requested_datetime": w3c(order.created_at),
        "updated_datetime": w3c(updated or order.created_at),
        "expected_datetime": w3c(expected(order)),
        "address": place_label(order, services.directory),
        "address_id": None,
        "zipcode": None,
        "lat": order.lat,
        "long": order.lng,
        "media_url": photos[0] if photos else None,
    }


def posted(order: WorkOrder, sender: str, services: Services) -> dict[str, Any]:
    """The answer to a POST: the order's number, and what happens next."""
    if order.resident_openid != sender:
        notice = f"同一问题已在办理中，已并入工单 {order.id}。"
    else:
        notice = f"已受理，由{agency(order, services)}办理，{w3c(order.accept_due)} 前响应。"
    return {"service_request_id": str(order.id), "token": None, "service_notice": notice, "account_id": None}
