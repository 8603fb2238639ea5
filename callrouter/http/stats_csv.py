"""The six reports (R25–R30) as CSV for a spreadsheet: `GET /api/v1/stats/<report>.csv`.

Pure: a report's JSON body (API.md "Statistics") and the staff names in, the file's text out.
The file is what a manager opens in Excel, so it follows the reader's language (`lang`):
Russian (the default) has `;` between fields and a decimal comma, as Excel reads CSV in a
Russian locale; English has `,` and a decimal point. Both start with a UTF-8 byte order mark,
without which Excel reads UTF-8 as a legacy code page and garbles Cyrillic. Every file is one
table with one header row; figures the guide says do not apply to calls are written as words
("не применимо к звонкам"), never as an empty cell or a zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Lang = Literal["ru", "en"]

BOM = "\ufeff"
DELIMITER: dict[Lang, str] = {"ru": ";", "en": ","}

_LABELS: dict[str, tuple[str, str]] = {
    # load (R25) and team (R30)
    "new_total": ("Всего новых обращений", "New cases, total"),
    "new_from_users": ("Новых обращений от клиентов", "New cases from users"),
    "reopened": ("Снова открытых обращений", "Reopened cases"),
    "in_work": ("Обращений в работе", "Cases in work"),
    "answered": ("Обращений с ответом", "Answered cases"),
    "closed": ("Закрытых обращений", "Closed cases"),
    "replies": ("Общее количество ответов", "Replies, total"),
    # peak (R26) and channels (R27)
    "new_and_reopened": ("Новых и снова открытых обращений", "New and reopened cases"),
    # response (R28)
    "first_response": ("Скорость первого ответа", "First response time"),
    "any_response": ("Скорость любого ответа", "Any response time"),
    "reply_writing": ("Скорость написания ответа", "Reply writing time"),
    "replies_to_close": ("Количество ответов для закрытия", "Replies to close"),
    "close_time.mean": ("Скорость закрытия, среднее (секунды)", "Close time, mean (seconds)"),
    "close_time.median": ("Скорость закрытия, медиана (секунды)", "Close time, median (seconds)"),
    # sla (R29)
    "first_response_breached": ("Не соблюден SLA первого ответа", "First response SLA breached"),
    "any_response_breached": ("Не соблюден SLA любого ответа", "Any response SLA breached"),
    "close_sla_breached": ("Не соблюден SLA закрытия", "Close SLA breached"),
    # headings and words
    "figure": ("Показатель", "Figure"),
    "value": ("Значение", "Value"),
    "channel": ("Канал", "Channel"),
    "calls": ("Звонки", "Calls"),
    "breakdown": ("Разрез", "Breakdown"),
    "slot": ("Интервал", "Slot"),
    "hour": ("Час", "Hour"),
    "weekday": ("День недели", "Weekday"),
    "staff": ("Сотрудник", "Staff member"),
    "staff_id": ("ID сотрудника", "Staff ID"),
    "not_applicable": ("не применимо к звонкам", "not applicable for calls"),
}

_WEEKDAYS: dict[Lang, tuple[str, ...]] = {
    "ru": ("Понедельник", "Вторник", "Среда", "Четверг", "Пятница", "Суббота", "Воскресенье"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}

_FORMULA = ("=", "+", "-", "@", "\t", "\r")

LOAD_FIGURES = ("new_total", "new_from_users", "reopened", "in_work", "answered", "closed")
TEAM_FIGURES = (*LOAD_FIGURES[:5], "replies", "replies_to_close", "closed")


def label(key: str, lang: Lang) -> str:
    """A heading or word of the file in `lang`."""
    ru, en = _LABELS[key]
    return ru if lang == "ru" else en


def number(value: float | None, lang: Lang) -> str:
    """An integer as it is; a fraction to two places, trailing zeros dropped, with the decimal
    separator of `lang`; None (no cases to average) as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang == "ru" else text


def staff_name(staff_id: int, names: Mapping[int, str]) -> str:
    """The staff member's name, or `#id` for one the directory does not know. A name that a
    spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) is quoted with `'`, as
    OWASP's "CSV injection" advice says: an admin types names, a manager opens the file."""
    name = names.get(staff_id) or f"#{staff_id}"
    return "'" + name if name.startswith(_FORMULA) else name


def render(name: str, body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> str:
    """Report `name`'s body as the CSV file's text (BOM first, CRLF line ends)."""
    rows = _ROWS[name](body, names, lang)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITER[lang], lineterminator="\r\n")
    writer.writerows(rows)
    return BOM + out.getvalue()


Rows = list[Sequence[str]]


def _figures(pairs: Sequence[tuple[str, str]], lang: Lang) -> Rows:
    return [(label("figure", lang), label("value", lang)), *pairs]


def _load(body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> Rows:
    return _figures([(label(k, lang), number(body[k], lang)) for k in LOAD_FIGURES], lang)


def _peak(body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> Rows:
    # One table, the breakdown in its first column: one header row, readable by any tool.
    rows: Rows = [
        (
            label("breakdown", lang),
            label("slot", lang),
            label("new_and_reopened", lang),
            label("in_work", lang),
        )
    ]
    for item in body["by_hour"]:
        hour = int(item["hour"])
        rows.append(
            (
                label("hour", lang),
                f"{hour:02d}:00–{(hour + 1) % 24:02d}:00",
                number(item["new_and_reopened"], lang),
                number(item["in_work"], lang),
            )
        )
    for item in body["by_weekday"]:
        rows.append(
            (
                label("weekday", lang),
                _WEEKDAYS[lang][int(item["weekday"]) - 1],
                number(item["new_and_reopened"], lang),
                number(item["in_work"], lang),
            )
        )
    return rows


def _channels(body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> Rows:
    keys = ("new_and_reopened", "in_work", "closed")
    calls = body["calls"]
    return [
        (label("channel", lang), *(label(k, lang) for k in keys)),
        (label("calls", lang), *(number(calls[k], lang) for k in keys)),
    ]


def _close_time(value: Mapping[str, Any] | None, lang: Lang) -> tuple[str, str]:
    if value is None:
        return "", ""
    return number(value["mean_seconds"], lang), number(value["median_seconds"], lang)


def _response(body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> Rows:
    na = label("not_applicable", lang)
    mean, median = _close_time(body["close_time"], lang)
    return _figures(
        [
            (label("first_response", lang), na),
            (label("any_response", lang), na),
            (label("reply_writing", lang), na),
            (label("replies_to_close", lang), number(body["replies_to_close"], lang)),
            (label("close_time.mean", lang), mean),
            (label("close_time.median", lang), median),
        ],
        lang,
    )


def _sla(body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> Rows:
    na = label("not_applicable", lang)
    return _figures(
        [
            (label("first_response_breached", lang), na),
            (label("any_response_breached", lang), na),
            (label("close_sla_breached", lang), number(body["close_sla_breached"], lang)),
        ],
        lang,
    )


def _team(body: Mapping[str, Any], names: Mapping[int, str], lang: Lang) -> Rows:
    rows: Rows = [
        (
            label("staff", lang),
            label("staff_id", lang),
            *(label(k, lang) for k in TEAM_FIGURES),
            label("close_time.mean", lang),
            label("close_time.median", lang),
            label("close_sla_breached", lang),
        )
    ]
    items = sorted(
        body["items"], key=lambda i: (staff_name(i["staff_id"], names).casefold(), i["staff_id"])
    )
    for item in items:
        rows.append(
            (
                staff_name(item["staff_id"], names),
                str(item["staff_id"]),
                *(number(item[k], lang) for k in TEAM_FIGURES),
                *_close_time(item["close_time"], lang),
                number(item["close_sla_breached"], lang),
            )
        )
    return rows


_ROWS = {
    "load": _load,
    "peak": _peak,
    "channels": _channels,
    "response": _response,
    "sla": _sla,
    "team": _team,
}
