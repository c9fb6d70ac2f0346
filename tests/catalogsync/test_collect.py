"""Collect: `[[sources]]` in config.toml become playlists, upserted, never duplicated."""

from __future__ import annotations

import pytest

from catalogsync.errors import ConfigError
from catalogsync.ops.models import ItemStatus
from tests.catalogsync.pipeline_support import open_service, write_m3u


def _config(home, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_manual_file_and_directory_sources_collect_playlists_once(tmp_path):
    home = tmp_path / "home"
    lists = tmp_path / "lists"
    lists.mkdir()
    write_m3u(lists / "one.m3u", [("A", "S", "http://127.0.0.1:9/1.mp3")], name="One")
    write_m3u(lists / "two.m3u", [("A", "S", "http://127.0.0.1:9/2.mp3")], name="Two")
    (lists / "notes.txt").write_text("not a playlist")
    folder = tmp_path / "folder"
    folder.mkdir()
    write_m3u(folder / "three.m3u", [("A", "S", "http://127.0.0.1:9/3.mp3")], name="Three")
    (tmp_path / "list.txt").write_text("# my playlists\nlists/one.m3u\n\n" + str(lists / "two.m3u"))
    _config(
        home,
        f"""
[[sources]]
name = "mine"
kind = "manual_file"
path = "{tmp_path / "list.txt"}"

[[sources]]
name = "folder"
kind = "directory"
path = "{folder}"
""",
    )
    service = open_service(home)
    for _ in range(2):
        job = service.submit_job("collect_only").id
        service.run_headless(until_idle=True)
        assert service.job_row(job).status == "completed"
    rows = service.playlists()
    assert sorted(r.name for r in rows) == ["One", "Three", "Two"]
    assert {r.source_name for r in rows} == {"mine", "folder"}
    assert all(r.hint == "0 songs, sync recommended" for r in rows)
    service.close()


def test_a_bad_line_in_a_source_list_names_file_and_line(tmp_path):
    home = tmp_path / "home"
    good = write_m3u(tmp_path / "good.m3u", [("A", "S", "http://127.0.0.1:9/1.mp3")], name="Good")
    (tmp_path / "list.txt").write_text(f"{good}\nmissing.m3u\n")
    _config(
        home,
        f'[[sources]]\nname = "mine"\nkind = "manual_file"\npath = "{tmp_path / "list.txt"}"\n',
    )
    service = open_service(home)
    job = service.submit_job("collect_only", sources=["mine"]).id
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == "failed"
    stage = service.job_detail(job).stages[0]
    item = service.repository.list_stage_items(stage.id)[0]
    assert item.status == ItemStatus.FAILED
    assert f"{tmp_path / 'list.txt'}:2" in item.last_error
    assert [r.name for r in service.playlists()] == ["Good"], "the good line still counts"
    service.close()


def test_collect_with_no_sources_is_a_no_op_with_an_event(tmp_path):
    service = open_service(tmp_path / "home")
    job = service.submit_job("collect_only").id
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == "completed"
    assert any("no [[sources]]" in e.message for e in service.job_detail(job).events)
    service.close()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[sources]]\nname = "x"\nkind = "ftp"\n', "kind must be one of"),
        ('[[sources]]\nname = "x"\nkind = "directory"\n', "needs path"),
        (
            '[[sources]]\nname = "x"\nkind = "directory"\npath = "a"\n'
            '[[sources]]\nname = "x"\nkind = "directory"\npath = "b"\n',
            "duplicate source name",
        ),
        ("[runner]\ndownload_lane_concurrency = 0\n", "download_lane_concurrency"),
    ],
)
def test_bad_source_config_is_one_line_naming_the_file(tmp_path, text, needle):
    home = tmp_path / "home"
    _config(home, text)
    with pytest.raises(ConfigError) as info:
        open_service(home)
    assert needle in str(info.value)
    assert str(home / "config.toml") in str(info.value)
    assert "\n" not in str(info.value)
