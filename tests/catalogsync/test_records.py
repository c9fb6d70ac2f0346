"""``@record``: a dataclass without generated code behaves as ``@dataclass`` would."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from catalogsync.ops.models import ItemStatus, JobItem, JobRun, JobStage, StageStatus
from catalogsync.records import record


@record(frozen=True)
class Point:
    x: int
    label: str = "origin"
    tags: list[str] = dataclasses.field(default_factory=list)


@record(frozen=True)
class Pair:
    left: int
    right: tuple[int, ...] = ()


@record
class Counter:
    name: str
    hits: int = 0


def test_a_record_is_a_dataclass_with_the_same_fields_and_helpers() -> None:
    point = Point(1, tags=["a"])
    assert dataclasses.is_dataclass(point)
    assert [f.name for f in dataclasses.fields(point)] == ["x", "label", "tags"]
    assert dataclasses.asdict(point) == {"x": 1, "label": "origin", "tags": ["a"]}
    assert dataclasses.replace(point, x=2) == Point(2, "origin", ["a"])
    assert Point.__match_args__ == ("x", "label", "tags")
    assert repr(point) == "Point(x=1, label='origin', tags=['a'])"
    assert list(vars(point)) == ["x", "label", "tags"]


def test_defaults_and_factories_as_a_dataclass_gives_them() -> None:
    assert Point(x=1) == Point(1, "origin", []) and Point(x=1).tags is not Point(x=1).tags
    assert Point(x=1, tags=["a"]).tags == ["a"]
    assert Point(1).label == "origin"
    assert Point(1).tags == [] and Point(1).tags is not Point(1).tags
    assert Point.label == "origin"  # a default stays on the class, as with @dataclass


def test_equality_and_hash_go_by_class_and_field_values() -> None:
    assert Pair(1, (2,)) == Pair(1, (2,)) and Pair(1) != Pair(2)
    assert Pair(1) != (1, ())
    assert {Pair(1, (2,)): "x"}[Pair(1, (2,))] == "x"
    assert Counter("a") == Counter("a", 0)
    with pytest.raises(TypeError):
        hash(Counter("a"))  # mutable and compared by value: unhashable, like @dataclass


def test_frozen_refuses_assignment_and_deletion_mutable_allows_it() -> None:
    pair = Pair(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.left = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del pair.left  # type: ignore[misc]
    counter = Counter("a")
    counter.hits += 1
    assert counter == Counter("a", 1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: Point(), "missing required argument: 'x'"),
        (lambda: Point(1, x=2), "multiple values for argument 'x'"),
        (lambda: Point(1, colour="red"), "unexpected keyword argument 'colour'"),
        (lambda: Point(1, "a", [], 4), "takes 3 positional arguments but 4 were given"),
        (lambda: Point(label="a"), "missing required argument: 'x'"),
        (lambda: Point(x=1, colour="red"), "unexpected keyword argument 'colour'"),
    ],
)
def test_wrong_arguments_raise_type_error_as_a_dataclass_does(call, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


def test_copies_and_pickles_round_trip() -> None:
    point = Point(1, tags=["a"])
    assert pickle.loads(pickle.dumps(point)) == point
    assert copy.deepcopy(point) == point and copy.copy(point) == point


def test_what_a_record_does_not_do_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @record
        class WithPostInit:
            x: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="takes part in everything"):

        @record
        class WithoutInit:
            x: int = dataclasses.field(default=0, init=False)


def test_job_records_read_from_rows_carry_every_field_and_nothing_else(repo) -> None:
    """``from_row`` builds JobRun, JobStage and JobItem with ``assemble``, field by field."""
    job_id = repo.create_job(job_type="download_only", config_snapshot={"a": 1})
    stage_id = repo.create_stage(
        job_id=job_id, stage_type="download", seq_no=1, status=StageStatus.RUNNING
    )
    repo.create_item(
        job_stage_id=stage_id,
        item_type="song_download",
        item_key="song:1",
        song_id=1,
        status=ItemStatus.PENDING,
        payload={"row": {"id": 1}},
    )
    job = repo.get_job(job_id)
    stage = repo.get_stage(stage_id)
    item = repo.claim_next_item(stage_id, "download-1")
    assert (type(job), type(stage), type(item)) == (JobRun, JobStage, JobItem)
    for model in (job, stage, item):
        assert set(vars(model)) == {f.name for f in dataclasses.fields(model)}
        assert dataclasses.replace(model) == model
    assert job.config_snapshot == {"a": 1} and item.payload == {"row": {"id": 1}}
    assert item.status == ItemStatus.RUNNING and stage.job_id == job_id
