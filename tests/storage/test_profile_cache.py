"""The writer's popup profile cache (issue 8): a staff action that changes no user, phone or
popup field keeps it; every other unit of work empties it (a popup is never stale)."""

from __future__ import annotations

from ray import cloudpickle

from callrouter.storage import access, case_store, dials, directory
from callrouter.storage.live import keeps_profiles
from callrouter.storage.snapshots import save_snapshot


def test_what_staff_do_all_day_keeps_the_cache() -> None:
    for fn in (
        case_store.save_draft,
        case_store.attach_call,
        case_store.patch_case,
        case_store.post_message,
        dials.start_dial,
        dials.dial_started,
        access.open_session,
        save_snapshot,
    ):
        assert keeps_profiles(fn), fn
        # The function reaches the writer through Ray: recognised all the same.
        assert keeps_profiles(cloudpickle.loads(cloudpickle.dumps(fn))), fn  # type: ignore[no-untyped-call]


def test_a_unit_that_may_change_a_profile_empties_it() -> None:
    for fn in (
        directory.add_user,
        directory.change_user,
        directory.link_phone,
        case_store.create_case_from_call,  # may make the caller's user
    ):
        assert not keeps_profiles(fn), fn

    async def unknown(session: object) -> None: ...

    assert not keeps_profiles(unknown)  # not named: forgotten, at worst a database read
