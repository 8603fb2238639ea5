"""List answers (API.md "Conventions": `{"items": [...], "total": N}`) under concurrent writes."""

from __future__ import annotations

import threading
import urllib.parse
import uuid
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk

pytestmark = pytest.mark.e2e

USERS = 40


@pytest.mark.parametrize("desk", ["sqlite", "postgresql"], indirect=True)
def test_list_total_agrees_with_items_while_users_are_added(desk: Desk) -> None:
    """A list answer is one consistent reading: with everything on one page, `total` equals
    the number of items, also while matching users are being created (R7 search)."""
    tag = uuid.uuid4().hex[:12]
    query = urllib.parse.urlencode({"q": tag, "limit": 500})
    done = threading.Event()
    errors: list[str] = []

    def add_users() -> None:
        try:
            for i in range(USERS):
                resp = desk.admin.post("/api/v1/users", {"company": f"{tag} {i}"})
                if resp.status != 201:
                    errors.append(str(resp))
        finally:
            done.set()

    writer = threading.Thread(target=add_users)
    writer.start()
    mismatches = []
    readings = 0
    while not done.is_set():
        answer = desk.admin.get(f"/api/v1/users?{query}").json
        readings += 1
        if answer["total"] != len(answer["items"]):
            mismatches.append((answer["total"], len(answer["items"])))
    writer.join()
    assert errors == []
    final = desk.admin.get(f"/api/v1/users?{query}").json
    assert final["total"] == len(final["items"]) == USERS
    assert mismatches == [], f"{len(mismatches)} of {readings} answers: (total, items) {mismatches}"
