"""The six UIS notifications of the integration guide (seed, step 2): names and templates.

The one copy of them in the product: the admin page shows them to paste into UIS
(`GET /api/v1/integrations/uis/notifications`), and `callrouter.testing.uis_bodies` renders
test bodies from the same templates, so what tests send is what admins are told to set up.

A template maps each JSON key to the UIS variable UIS puts there, nested like the guide
(`contact_info`, `employee_info`, `call_info`, `call_record_file_info`).
"""

from __future__ import annotations

from typing import Any

# kind (domain.notifications.Kind values) -> the name the guide gives the notification.
NAMES: dict[str, str] = {
    "leg_start": "Исходящее плечо",
    "answer": "Поднятие трубки",
    "leg_end": "Завершение плеча",
    "call_end": "Завершение звонка",
    "recording": "Записанный разговор",
    "outgoing_call": "Исходящий звонок",
}

# The order the guide lists them in (а … е), which admins follow while adding them.
GUIDE_ORDER: tuple[str, ...] = (
    "answer",
    "leg_end",
    "call_end",
    "recording",
    "leg_start",
    "outgoing_call",
)


def _same(*names: str) -> dict[str, Any]:
    """Template fragment whose JSON keys equal the UIS variable names."""
    return {name: name for name in names}


def _template(kind: str) -> dict[str, Any]:
    """The guide's template of `kind`: JSON key -> UIS variable name (nested like the guide)."""
    call_info = _same("call_source", "direction", "call_session_id", "scenario_name")
    if kind == "leg_end":
        call_info["is_operator"] = "is_operator"
    call_info |= _same(
        "talk_time_duration", "total_time_duration", "wait_time_duration", "tag_names", "is_lost"
    )
    # The guide maps `call_record_duration` to the variable `{{file_duration}}`.
    record = {"file_link": "file_link", "call_record_duration": "file_duration"}
    if kind == "recording":
        record["record_file_links"] = "record_file_links"
    doc = _same("notification_name", "virtual_phone_number", "notification_time", "external_id")
    doc["contact_info"] = _same(
        "contact_phone_number", "communication_number", "contact_id", "contact_full_name"
    )
    doc["employee_info"] = _same("employee_full_name", "employee_id")
    doc["call_info"] = call_info
    doc["call_record_file_info"] = record
    doc |= _same("leg_id", "leg_ids")
    if kind == "call_end":
        doc |= _same("last_scenario_operation_name", "group_ids")
    return doc


TEMPLATES: dict[str, dict[str, Any]] = {kind: _template(kind) for kind in NAMES}


def template_text(kind: str, indent: int = 2) -> str:
    """The template of `kind` as the text to paste into UIS: JSON with each value a bare
    `{{variable}}` (UIS renders every value as a JSON literal, so no quotes around it).
    Raises KeyError for an unknown kind."""
    return _text(TEMPLATES[kind], indent, 0)


def _text(template: dict[str, Any], indent: int, depth: int) -> str:
    pad = " " * (indent * (depth + 1))
    lines = []
    for key, var in template.items():
        value = _text(var, indent, depth + 1) if isinstance(var, dict) else f"{{{{{var}}}}}"
        lines.append(f'{pad}"{key}": {value}')
    return "{\n" + ",\n".join(lines) + "\n" + " " * (indent * depth) + "}"
