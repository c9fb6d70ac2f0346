"""The read models themselves: complete, frozen, and masked without losing their type."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from catalogsync.ops.readmodels import TaskRow, WorkerView
from catalogsync.redact import mask_value
from catalogsync.service import Catalogsync
from tests.tui.conftest import seed_task_center


@pytest.fixture
def service(tmp_path: Path):
    service = Catalogsync.open(home=str(tmp_path / "home"))
    try:
        seed_task_center(service)
        yield service
    finally:
        service.close()


def test_rows_built_without_init_carry_every_field_and_nothing_else(service) -> None:
    """``assemble`` skips the generated __init__: every field must be given, no other."""
    dashboard = service.dashboard()
    detail = service.job_detail(dashboard.task_rows[0].id)
    models = [*dashboard.task_rows, *dashboard.workers, detail.job, *detail.workers]
    assert {type(m) for m in models} == {TaskRow, WorkerView}
    for model in models:
        assert set(vars(model)) == {f.name for f in dataclasses.fields(model)}
        assert dataclasses.replace(model) == model
        with pytest.raises(dataclasses.FrozenInstanceError):
            model.id = 0  # type: ignore[misc]


def test_masking_keeps_the_type_and_copies_only_what_changed(service) -> None:
    detail = service.job_detail(2)
    assert mask_value(detail) is detail, "nothing secret: the very same object"
    leaky = dataclasses.replace(detail.job, error="GET https://dj:s3cret@lists.example/x.m3u")
    masked = mask_value(dataclasses.replace(detail, job=leaky))
    assert type(masked) is type(detail) and type(masked.job) is TaskRow
    assert masked.job.error == "GET https://dj:***@lists.example/x.m3u"
    assert masked.stages is detail.stages, "untouched parts are shared, not copied"
