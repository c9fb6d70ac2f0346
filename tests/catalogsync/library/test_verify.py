"""`library verify` and the `library_verify` job: records against files."""

from __future__ import annotations

import json

from catalogsync.ops.jobdefs import JOB_TYPES
from tests.catalogsync.library.library_support import build_library, run_cli, song_files


def test_a_clean_library_verifies_and_exits_0(tmp_path, http_server):
    home = tmp_path / "home"
    build_library(home, http_server, 3).close()
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 0, out
    assert out.strip().splitlines()[-1] == (
        "verify: 3 files checked, 3 ok, 0 missing, 0 mismatched, 0 unrecorded audio files (left alone)"
    )


def test_missing_mismatched_and_unrecorded_files(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 4)
    root = service.settings.library_root
    files = song_files(root)
    service.close()
    (root / files[0]).unlink()  # missing
    with open(root / files[1], "ab") as handle:  # size differs
        handle.write(b"x")
    changed = (root / files[2]).read_bytes()
    (root / files[2]).write_bytes(changed[:-1] + bytes([changed[-1] ^ 1]))  # same size, other bytes
    stray = root / "Somebody" / "Else.flac"
    stray.parent.mkdir()
    stray.write_bytes(b"fLaC not ours")

    code, out, _ = run_cli(home, "library", "verify", "--json")
    assert code == 3
    report = json.loads(out)
    assert [m["path"] for m in report["missing"]] == [files[0]]
    reasons = {m["path"]: m["reason"] for m in report["mismatched"]}
    assert "bytes on disk" in reasons[files[1]] and "SHA-256" in reasons[files[2]]
    assert report["unrecorded"] == ["library:Somebody/Else.flac"]
    assert (report["checked"], report["ok"]) == (4, 1)
    assert stray.read_bytes() == b"fLaC not ours", "never touched"

    # the missing song is marked: it is what the next download fetches
    code, out, _ = run_cli(home, "jobs", "submit", "download_only", "--wait", "--json")
    assert code == 0, out
    assert (root / files[0]).is_file()

    # --fix moves the mismatched files to the trash and downloads them again
    code, out, _ = run_cli(home, "library", "verify", "--fix")
    assert code == 3 and "queued to download them again" in out
    trash = sorted(p.name for p in (root / ".catalogsync-trash").rglob("*.mp3"))
    assert trash == sorted([files[1].rsplit("/", 1)[1], files[2].rsplit("/", 1)[1]])
    code, out, _ = run_cli(home, "run", "--until-idle")
    assert code == 0
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 0, out
    assert "4 files checked, 4 ok" in out and "1 unrecorded" in out


def test_library_verify_is_a_job_type_offered_by_the_new_job_dialog(tmp_path, http_server):
    assert "library_verify" in JOB_TYPES  # tui/screens/new_job.py lists JOB_TYPES
    home = tmp_path / "home"
    service = build_library(home, http_server, 2)
    root = service.settings.library_root
    (root / song_files(root)[0]).unlink()
    job = service.submit_job("library_verify")
    assert job.display_name == "Verify Library"
    service.run_headless(until_idle=True)
    detail = service.job_detail(job.id)
    assert detail.job.status == "completed"
    messages = [e.message for e in detail.events]
    assert any(m.startswith("verify: 2 files checked, 1 ok, 1 missing") for m in messages)
    assert len(service.catalog.songs_to_download([1])) == 1
    service.close()


def test_an_unmounted_library_is_not_forgotten(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 3)
    root = service.settings.library_root
    service.close()
    (root.parent / "library-away").mkdir()
    root.rename(root.parent / "library-away" / "x")
    root.mkdir()  # the empty mount point of a share that is not mounted
    code, out, _ = run_cli(home, "library", "verify")
    assert code == 3
    assert "none of its 3 recorded files is under" in out and "nothing was changed" in out
    code, out, _ = run_cli(home, "status", "--json")
    assert json.loads(out)["download_stats"]["downloaded_songs"] == 3


def test_a_file_being_downloaded_is_skipped_not_forgotten(tmp_path, http_server):
    """Recorded before its rename and not yet flushed: verify leaves the record alone."""
    home = tmp_path / "home"
    service = build_library(home, http_server, 2)
    root = service.settings.library_root
    first = song_files(root)[0]
    service.catalog._conn().execute(
        "UPDATE local_files SET flushed_at = NULL WHERE relative_path = ?", (first,)
    )
    (root / first).rename(root / (first + ".cs1.ready"))  # the rename has not happened yet
    service.close()
    code, out, _ = run_cli(home, "library", "verify", "--json")
    report = json.loads(out)
    assert code == 0, out
    assert (report["in_flight"], report["missing"], report["unrecorded"]) == (1, [], [])
    assert "1 files being downloaded right now skipped" in report["summary"]


def test_a_record_that_leaves_the_root_is_reported_not_followed(tmp_path, http_server):
    home = tmp_path / "home"
    service = build_library(home, http_server, 2)
    service.catalog._conn().execute(
        "UPDATE local_files SET relative_path = '../../outside.mp3' WHERE id = 1"
    )
    service.close()
    code, out, _ = run_cli(home, "library", "verify", "--json")
    report = json.loads(out)
    assert code == 3
    assert [m["path"] for m in report["mismatched"]] == ["../../outside.mp3"]
    assert "leaves the library root" in report["mismatched"][0]["reason"]


def test_python_dash_m_catalogsync_cli_sees_the_home(tmp_path, http_server):
    """`python -m catalogsync.cli` runs the module as __main__: the options must reach us."""
    import subprocess
    import sys

    home = tmp_path / "home"
    build_library(home, http_server, 2).close()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "catalogsync.cli",
            "--home",
            str(home),
            "library",
            "verify",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checked"] == 2
